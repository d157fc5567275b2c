#!/usr/bin/env bash
# Several instances on one PostgreSQL (issue 17): what a SIGKILL of the
# leader costs, and what a follower serves.
#
# Three `lookout serve --cluster` (release build) on a throwaway PostgreSQL
# (.ci/postgres.sh), one probe that always fails (connection refused), its
# incident reminding a loopback webhook receiver every 2 s. Each round waits
# for a page, SIGKILLs the leader at once and times: the kill → a survivor's
# /readyz saying `leader`, → the new leader's first scheduled run (stored),
# → the next page at the receiver, and how late that page is against when it
# was due (previous page + `remind_every`). The killed instance is started
# again as a follower before the next round. Then wrk floods `/` and
# `/api/v2/summary.json` on a follower, on the leader and on a lone instance
# (the same probes.yaml on its own SQLite file), each beside nginx serving
# the follower's bytes, so the three stand side by side in one run.
#
# Needs: PostgreSQL (Debian's postgresql), wrk and nginx (apt-get install -y
# wrk nginx-light), python3.
# Usage: bench/takeover.sh [rounds, default 5] [seconds per wrk load, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-8}
LEASE=10s
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
pids=()
cleanup() {
  # nginx's master first, gently: killed with -9 it leaves its workers.
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null && sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${LOOKOUT_TEST_POSTGRES_DATA:-}" ]; then
    bin_pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    su postgres -s /bin/sh -c "$bin_pg/pg_ctl -D '$LOOKOUT_TEST_POSTGRES_DATA/db' stop -m immediate" >/dev/null 2>&1 || true
    rm -rf "$LOOKOUT_TEST_POSTGRES_DATA"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet
bin=target/release/lookout
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }

eval "$(.ci/postgres.sh)"
db="takeover_$$"
psql "$LOOKOUT_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
url="${LOOKOUT_TEST_POSTGRES_URL%/*}/$db"

# The receiver: one line per page, "<arrival ms> <type> <webhook-id>".
hook=$(port)
cat >"$work/receiver.py" <<'PY'
import http.server, json, sys, time
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        kind = json.loads(body or b"{}").get("type", "?")
        log.write(f"{int(time.time()*1000)} {kind} {self.headers.get('webhook-id')}\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
touch "$work/pages.log"
python3 "$work/receiver.py" "$hook" "$work/pages.log" &
pids+=($!)

cat >"$work/probes.yaml" <<YAML
version: 1
page: { title: Takeover Bench }
components: [{ id: api, name: API }]
probes:
  - { name: refused, component: api, every: 1s, alert: { after: 1 failures, escalation: on-call },
      steps: [ { get: "http://127.0.0.1:9/" } ] }
notifiers:
  hook: { type: webhook, url: "http://127.0.0.1:$hook/hook" }
escalation:
  on-call:
    levels: [ { notify: [hook] } ]
    remind_every: 2s
YAML

declare -A ports
start() { # $1 = instance name
  local p; p=$(port)
  ports[$1]=$p
  "$bin" serve --cluster --lease $LEASE --instance "$1" --listen 127.0.0.1:$p \
    --config "$work/probes.yaml" --database "$url" >>"$work/$1.log" 2>&1 &
  eval "pid_$1=$!"
  pids+=($!)
}
role() { curl -s --max-time 1 "http://127.0.0.1:${ports[$1]}/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["role"])' 2>/dev/null || echo down; }
leader() { for n in a b c; do [ "$(role $n)" = leader ] && { echo $n; return; }; done; echo none; }
pages() { wc -l <"$work/pages.log"; }
latest_run_ms() {
  psql "$url" -tAc "SELECT COALESCE(MAX(started_at), 0) FROM runs" 2>/dev/null || echo 0
}

for n in a b c; do start $n; done
until [ "$(leader)" != none ]; do sleep 0.2; done
until [ "$(pages)" -ge 2 ]; do sleep 0.2; done

echo "| round | kill → leader | kill → first run | kill → next page | next page late by |" >"$work/takeover.md"
echo "|---|---|---|---|---|" >>"$work/takeover.md"
for r in $(seq "$ROUNDS"); do
  l=$(leader)
  n0=$(pages)
  until [ "$(pages)" -gt "$n0" ]; do sleep 0.01; done
  last_page=$(tail -1 "$work/pages.log" | cut -d' ' -f1)
  pid_var="pid_$l"
  kill -9 "${!pid_var}"
  killed=$(now_ms)
  n1=$(pages)
  took_lead=""; took_run=""; took_page=""
  while [ -z "$took_lead" ] || [ -z "$took_run" ] || [ -z "$took_page" ]; do
    t=$(now_ms)
    if [ -z "$took_lead" ]; then
      for n in a b c; do [ $n != "$l" ] && [ "$(role $n)" = leader ] && took_lead=$((t - killed)); done
    fi
    if [ -z "$took_run" ] && [ "$(latest_run_ms)" -gt "$killed" ]; then took_run=$((t - killed)); fi
    if [ -z "$took_page" ] && [ "$(pages)" -gt "$n1" ]; then
      arrived=$(sed -n "$((n1 + 1))p" "$work/pages.log" | cut -d' ' -f1)
      took_page=$((arrived - killed))
      late=$((arrived - last_page - 2000))
    fi
    if [ $((t - killed)) -gt 60000 ]; then echo "round $r: no takeover within 60 s" >&2; exit 1; fi
    sleep 0.02
  done
  echo "| $r | ${took_lead} ms | ${took_run} ms | ${took_page} ms | ${late} ms |" >>"$work/takeover.md"
  start "$l"
  until [ "$(role "$l")" = follower ]; do sleep 0.2; done
done

# The page under a flood: a follower, the leader and a lone instance (the
# same probes.yaml on its own SQLite file, issue 5's setup) one after the
# other, each beside nginx serving the follower's bytes, in the same run.
l=$(leader)
f=$(for n in a b c; do [ $n != "$l" ] && { echo $n; break; }; done)
fp=${ports[$f]}
lone=$(port)
"$bin" serve --listen 127.0.0.1:$lone --config "$work/probes.yaml" \
  --database "$work/lone.sqlite" >>"$work/lone.log" 2>&1 &
pids+=($!)
until curl -sf "http://127.0.0.1:$lone/api/v2/incidents/unresolved.json" | grep -q '"id"'; do sleep 0.2; done
mkdir -p "$work/site" && chmod 755 "$work/site"
curl -sf "http://127.0.0.1:$fp/" -o "$work/site/index.html"
curl -sf "http://127.0.0.1:$fp/api/v2/summary.json" -o "$work/site/summary.json"
np=$(port)
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { text/html html; application/json json; }
  server { listen 127.0.0.1:$np; root $work/site; }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$np/index.html" >/dev/null && break; sleep 0.2; done
rate() { wrk -t2 -c64 -d${SECS}s --latency "$1" 2>/dev/null | awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, p}'; }
echo "| document | server | size | req/s | p99 | nginx req/s | nginx p99 | ÷ nginx |" >"$work/follower.md"
echo "|---|---|---|---|---|---|---|---|" >>"$work/follower.md"
for doc in "/:index.html" "/api/v2/summary.json:summary.json"; do
  path=${doc%%:*}; file=${doc##*:}
  for who in "follower:$fp" "leader:${ports[$l]}" "lone:$lone"; do
    name=${who%%:*}; p=${who##*:}
    size=$(curl -sf "http://127.0.0.1:$p$path" | wc -c)
    read -r fr fpp < <(rate "http://127.0.0.1:$p$path")
    read -r nr npp < <(rate "http://127.0.0.1:$np/$file")
    ratio=$(python3 -c "print(f'{$fr/$nr:.2f}')")
    echo "| \`$path\` | $name | $size B | $fr | $fpp | $nr | $npp | $ratio |" >>"$work/follower.md"
  done
done
cat "$work/takeover.md"
echo
cat "$work/follower.md"
