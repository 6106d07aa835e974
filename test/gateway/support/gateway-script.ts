/**
 * The bound on `scripts/openclaw-gateway.sh restart` in tests: the script's own worst case with
 * its defaults, so a restart that fails does so with the script's message, not killed by this
 * bound first. Stop: SIGTERM grace (OPENCLAW_STOP_GRACE, 20 s) + up to 15 s for the run's
 * processes to go; up to 15 s for the port; then each start attempt waits for state leases a
 * killed gateway left (OPENCLAW_LEASE_WAIT, at most 90 s + 1) and for readiness
 * (OPENCLAW_READY_TIMEOUT, 90 s); a gateway that exited before it was ready is reaped (up to
 * 15 s) and started once more, with its own lease wait and readiness wait. 35 + 15 + 181 + 15 +
 * 181 = 427 s, plus process start-up. It is an upper bound, not an expectation: a restart takes
 * about 15-35 s here.
 */
export const RESTART_TIMEOUT_MS = 450_000;
