#!/usr/bin/env bash
# `make demo`: a collector on SQLite, one agent report from this machine, the local
# findings table, the score and where the metrics are. Everything stays under ./var/demo
# and on 127.0.0.1; `make demo-stop` stops the collector.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DEMO=var/demo
LISTEN=${CANHGAC_DEMO_LISTEN:-127.0.0.1:8450}
URL="http://$LISTEN"
PIDFILE=$DEMO/server.pid

stop() {
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill "$(cat "$PIDFILE")" && echo "demo collector stopped"
    fi
    rm -f "$PIDFILE"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

mkdir -p "$DEMO"
stop
# every demo starts from scratch: a new database and a new agent state
rm -rf "$DEMO"/canhgac.db* "$DEMO/agent" "$DEMO/enrol.secret"
DB="sqlite:///$PWD/$DEMO/canhgac.db"

echo "==> starting the collector on $URL (database $DEMO/canhgac.db, log $DEMO/server.log)"
"$BIN/canhgac-server" serve --listen "$LISTEN" --db "$DB" >"$DEMO/server.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 50); do
    if "$BIN/python" - "$URL/healthz" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
PY
    sleep 0.2
done

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
