/**
 * The bound on `scripts/openclaw-gateway.sh restart` in tests: a SIGTERM grace
 * (OPENCLAW_STOP_GRACE, 20 s), a wait for state leases a killed gateway left behind
 * (OPENCLAW_LEASE_WAIT, at most 90 s; the lease that matters is 60 s), then a start
 * (OPENCLAW_READY_TIMEOUT, 90 s) and, for a gateway that exited before it was ready, one more.
 * It is an upper bound, not an expectation: a restart takes about 15-25 s here.
 */
export const RESTART_TIMEOUT_MS = 300_000;
