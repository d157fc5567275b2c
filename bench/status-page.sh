#!/usr/bin/env bash
# Status page under a flood: wrk against Lookout's `/` and
# `/api/v2/summary.json`, and against nginx serving byte-identical static
# copies, with 10 and with 1,000 probes configured and running (against the
# sample platform, in its own process), on loopback, every load bounded in
# time. Meanwhile the probes keep running; their schedule lag comes from
# Lookout's /metrics when it has them, and failed writes from its log.
#
# Needs: wrk and nginx (Debian: apt-get install -y wrk nginx-light).
# Usage: bench/status-page.sh [seconds per load, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=64
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet
bin=target/release/lookout
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

plat=$(port)
LOOKOUT_SAMPLE_PASSWORD=bench "$bin" platform --listen 127.0.0.1:$plat --deploy-delay 0s >"$work/platform.log" 2>&1 &
pids+=($!)

config() { # $1 = probe count
  {
    echo "version: 1"
    echo "page: { title: Bench Cloud }"
    echo "components:"
    for c in api web data deploys dns; do echo "  - { id: $c, name: \"Component $c\" }"; done
    echo "probes:"
    i=0
    while [ $i -lt "$1" ]; do
      comps=(api web data deploys dns); c=${comps[$((i % 5))]}
      echo "  - { name: p$i, component: $c, every: 10s, steps: [ { id: health, get: \"http://127.0.0.1:$plat/healthz\", expect: { status: 200 } } ] }"
      i=$((i + 1))
    done
  } >"$work/probes-$1.yaml"
}

nginx_conf() { # $1 = root, $2 = port
  cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { text/html html; application/json json; }
  server { listen 127.0.0.1:$2; root $1; }
}
CONF
}

rate() { wrk -t2 -c$CONNS -d${SECS}s --latency "$1" 2>/dev/null | awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, p}'; }

results="$work/results.md"
echo "| probes | document | size | Lookout req/s | Lookout p99 | nginx req/s | nginx p99 | ratio |" >"$results"
echo "|---|---|---|---|---|---|---|---|" >>"$results"
for n in 10 1000; do
  config $n
  lp=$(port)
  "$bin" serve --config "$work/probes-$n.yaml" --listen 127.0.0.1:$lp --database "$work/l-$n.db" >"$work/lookout-$n.log" 2>&1 &
  lpid=$!
  pids+=($lpid)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lp/healthz" >/dev/null && break; sleep 0.2; done
  sleep 12 # every probe has run at least once
  mkdir -p "$work/site-$n" && chmod 755 "$work/site-$n"
  curl -sf "http://127.0.0.1:$lp/" -o "$work/site-$n/index.html"
  curl -sf "http://127.0.0.1:$lp/api/v2/summary.json" -o "$work/site-$n/summary.json"
  np=$(port)
  nginx_conf "$work/site-$n" $np
  nginx -c "$work/nginx.conf" -g 'daemon off;' &
  npid=$!
  pids+=($npid)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$np/index.html" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$lp/metrics" >"$work/metrics-before-$n.txt"
  for doc in "/:index.html" "/api/v2/summary.json:summary.json"; do
    path=${doc%%:*}; file=${doc##*:}
    size=$(stat -c %s "$work/site-$n/$file")
    read -r lr lpp < <(rate "http://127.0.0.1:$lp$path")
    read -r nr npp < <(rate "http://127.0.0.1:$np/$file")
    ratio=$(python3 -c "print(f'{$lr/$nr:.2f}')")
    echo "| $n | \`$path\` | $size B | $lr | $lpp | $nr | $npp | $ratio |" >>"$results"
  done
  kill $npid; wait $npid 2>/dev/null || true
  curl -sf "http://127.0.0.1:$lp/metrics" >"$work/metrics-after-$n.txt"
  failed=$(grep -ci "could not record run" "$work/lookout-$n.log" || true)
  # Schedule lag of the starts made while the floods ran: the difference of
  # the lag histogram between a scrape before the first flood and one after
  # the last, so start-up is not counted.
  python3 - "$work/metrics-before-$n.txt" "$work/metrics-after-$n.txt" "$n" "$failed" >>"$work/notes.txt" <<'PY'
import re, sys
def buckets(path):
    b = {}
    for line in open(path):
        m = re.match(r'lookout_schedule_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[m.group(1)] = int(m.group(2))
    return b
before, after = buckets(sys.argv[1]), buckets(sys.argv[2])
d = {k: after[k] - before.get(k, 0) for k in after}
total = d.get("+Inf", 0)
share = lambda le: 100.0 * d.get(le, 0) / total if total else 0.0
print(f"probes={sys.argv[3]}: {total} starts during the floods, failed writes: {sys.argv[4]}; "
      f"started within 10 ms: {share('0.01'):.2f} %, 50 ms: {share('0.05'):.2f} %, "
      f"100 ms: {share('0.1'):.2f} %, 250 ms: {share('0.25'):.2f} %")
PY
  kill $lpid; wait $lpid 2>/dev/null || true
done
cat "$results"
echo
cat "$work/notes.txt"
