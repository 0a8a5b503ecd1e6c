#!/usr/bin/env bash
# `make demo`: a collector on SQLite, one agent report from this machine, the local
# findings table, the score and where the metrics are. Everything stays under ./var/demo
# (or $CANHGAC_DEMO_DIR) and on 127.0.0.1 (port: $CANHGAC_DEMO_LISTEN, default
# 127.0.0.1:8450); `make demo-stop` stops the collector.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DEMO=${CANHGAC_DEMO_DIR:-var/demo}
LISTEN=${CANHGAC_DEMO_LISTEN:-127.0.0.1:8450}
URL="http://$LISTEN"
PIDFILE=$DEMO/server.pid

stop() {
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill "$(cat "$PIDFILE")" && echo "demo collector stopped"
        # wait for it to exit, so that its port is free for the next demo
        for _ in $(seq 1 50); do
            kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
            sleep 0.2
        done
    fi
    rm -f "$PIDFILE"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

mkdir -p "$DEMO"
stop
# A port already taken (often a collector left running) must be told as such: the demo
# would otherwise enrol against that other collector and fail on its secret.
if ! "$BIN/python" - "$LISTEN" <<'PY'; then
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
host = host.strip("[]")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family, socket.SOCK_STREAM) as sock:
    try:
        sock.bind((host, int(port)))
    except OSError as e:
        print(f"make demo: cannot listen on {sys.argv[1]}: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)
PY
    echo "make demo: the port is taken, perhaps by a collector still running: stop it" \
        "(make demo-stop, or the program holding the port), or choose another port:" \
        "CANHGAC_DEMO_LISTEN=127.0.0.1:8451 make demo" >&2
    exit 1
fi

# every demo starts from scratch: a new database and a new agent state
rm -rf "$DEMO"/canhgac.db* "$DEMO/agent" "$DEMO/enrol.secret"
DB="sqlite:///$(cd "$DEMO" && pwd)/canhgac.db"

echo "==> starting the collector on $URL (database $DEMO/canhgac.db, log $DEMO/server.log)"
"$BIN/canhgac-server" serve --listen "$LISTEN" --db "$DB" >"$DEMO/server.log" 2>&1 &
echo $! >"$PIDFILE"
# Ready when *our* collector prints its banner (it does so only once it serves) and
# answers /healthz; if it exits instead (the port was taken meanwhile...), say why.
ready=
for _ in $(seq 1 100); do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "make demo: the collector stopped at start; its log ($DEMO/server.log):" >&2
        sed 's/^/    /' "$DEMO/server.log" >&2
        rm -f "$PIDFILE"
        exit 1
    fi
    if grep -q "listening on $URL" "$DEMO/server.log" &&
        "$BIN/python" - "$URL/healthz" <<'PY' 2>/dev/null; then ready=1; break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
PY
    sleep 0.2
done
if [ -z "$ready" ]; then
    echo "make demo: the collector did not become ready on $URL; see $DEMO/server.log" >&2
    stop
    exit 1
fi

echo "==> enrolling this host: agency 'demo', its enrolment secret, canhgac-agent enroll"
"$BIN/canhgac-server" agency add demo --name "Cơ quan thử nghiệm (demo)" --db "$DB" >/dev/null
# umask first: the secret file must never exist with group/other access, even briefly
(umask 077; "$BIN/canhgac-server" agency enrol-secret demo --db "$DB" 2>/dev/null | tail -n 1 >"$DEMO/enrol.secret")
"$BIN/canhgac-agent" enroll --server "$URL" --secret-file "$DEMO/enrol.secret" --state-dir "$DEMO/agent"

echo "==> running the agent once against the collector"
"$BIN/canhgac-agent" run --once --server "$URL" --state-dir "$DEMO/agent"

echo "==> local findings on this machine (canhgac-agent check)"
"$BIN/canhgac-agent" check --fail-on critical || true

echo "==> what Prometheus scrapes from $URL/metrics:"
"$BIN/python" - "$URL/metrics" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith("canhgac_host_"):
        print("   ", line)
PY
echo
echo "The collector keeps running: metrics at $URL/metrics, health at $URL/healthz."
echo "Stop it with: make demo-stop"
