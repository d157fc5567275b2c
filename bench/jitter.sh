#!/usr/bin/env bash
# Issue 12's benchmark: jitter never costs a start.
#
#   fast      N probes every 10 s with `jitter: 5s`, all against one fast
#             host (nginx, one worker, a 3-byte file), default limits
#             (journeys 256, per_host 32): starts made and skipped (by
#             reason) over a window, for N = 300, 1,000 and 10,000, with
#             this build and with a reference binary (REF=path, a build of
#             the commit before the fix) in the same run.
#   overload  real overload: 300 probes every 10 s against the sample
#             platform with `list=slow:1s` (each request takes a second),
#             `per_host: 8`: at most 80 starts fit in 10 s, so most are
#             skipped, and the reasons say why.
#
# Starts and skips are read from /metrics (lookout_runs_total and
# lookout_starts_skipped_total{reason}) as the delta between two scrapes
# after every probe has run once, so start-up is excluded.
#
# Needs: nginx (Debian nginx-light), python3, curl, sqlite3.
# Usage: REF=/path/to/old/lookout bench/jitter.sh [fast] [overload]
# Env:   WINDOW=30 (seconds measured), SIZES="300 1000 10000"
set -euo pipefail
cd "$(dirname "$0")/.."
PHASES=${*:-fast overload}
WINDOW=${WINDOW:-30}
SIZES=${SIZES:-300 1000 10000}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin lookout
bin=target/release/lookout
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ran() { sqlite3 "$1" "SELECT count(DISTINCT probe) FROM runs" 2>/dev/null || echo 0; }
metric() { # $1 file, $2 metric name, $3 label filter (optional): sum of matching samples
  awk -v m="$2" -v f="${3:-}" '$1 ~ "^"m"({|$)" && index($1, f) { s += $2 } END { printf "%d\n", s }' "$1"
}

echo "== machine"
echo "date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "cpu: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reference: ${REF:-(none)}"

mkdir -p "$work/www" && chmod 755 "$work/www" && printf 'ok\n' >"$work/www/ok"
nport=$(port)
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server { listen 127.0.0.1:$nport; root $work/www; }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
fast_target="http://127.0.0.1:$nport/ok"
for _ in $(seq 50); do curl -sf "$fast_target" >/dev/null && break; sleep 0.1; done

# One measurement: $1 binary, $2 config, $3 probes that must have run before
# the window opens, $4 label, $5 probes in the file (default $3).
measure() {
  local b=$1 cfg=$2 n=$3 tag=$4 total=${5:-$3}
  local db="$work/$tag.db" log="$work/$tag.log" lport
  lport=$(port)
  "$b" serve --config "$cfg" --listen "127.0.0.1:$lport" --database "$db" >"$log" 2>&1 &
  local lpid=$!
  pids+=($lpid)
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$lport/healthz" >/dev/null && break; sleep 0.1; done
  local until=$((SECONDS + 90))
  while [ "$(ran "$db")" -lt "$n" ] && [ $SECONDS -lt $until ]; do sleep 0.5; done
  curl -sf "http://127.0.0.1:$lport/metrics" -o "$work/a"
  sleep "$WINDOW"
  curl -sf "http://127.0.0.1:$lport/metrics" -o "$work/b"
  kill -TERM "$lpid" 2>/dev/null || true
  wait "$lpid" 2>/dev/null || true
  local runs skipped still room behind planned
  runs=$(($(metric "$work/b" lookout_runs_total) - $(metric "$work/a" lookout_runs_total)))
  still=$(($(metric "$work/b" lookout_starts_skipped_total still_running) - $(metric "$work/a" lookout_starts_skipped_total still_running)))
  room=$(($(metric "$work/b" lookout_starts_skipped_total no_room) - $(metric "$work/a" lookout_starts_skipped_total no_room)))
  behind=$(($(metric "$work/b" lookout_starts_skipped_total fell_behind) - $(metric "$work/a" lookout_starts_skipped_total fell_behind)))
  skipped=$((still + room + behind))
  planned=$((total * WINDOW / 10))
  printf '%-34s planned %6d  runs stored %6d  skipped %6d (still_running %d, no_room %d, fell_behind %d)\n' \
    "$tag" "$planned" "$runs" "$skipped" "$still" "$room" "$behind"
}

if [[ " $PHASES " == *" fast "* ]]; then
  echo "== fast: N probes every 10s, jitter 5s, one nginx host, limits default (per_host 32), window ${WINDOW}s"
  for n in $SIZES; do
    cfg="$work/fast-$n.yaml"
    python3 bench/probes.py --probes "$n" --every 10s --jitter 5s --url "$fast_target" >"$cfg"
    if [ -n "${REF:-}" ]; then measure "$REF" "$cfg" "$n" "reference $n probes"; fi
    measure "$bin" "$cfg" "$n" "this build $n probes"
  done
fi

if [[ " $PHASES " == *" overload "* ]]; then
  echo "== overload: 300 probes every 10s, jitter 5s, per_host 8, each request takes 1s"
  pport=$(port)
  "$bin" platform --listen "127.0.0.1:$pport" --fault list=slow:1s >"$work/platform.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$pport/healthz" >/dev/null && break; sleep 0.1; done
  cfg="$work/overload.yaml"
  python3 bench/probes.py --probes 300 --every 10s --jitter 5s --per-host 8 \
    --url "http://127.0.0.1:$pport/apps" >"$cfg"
  if [ -n "${REF:-}" ]; then measure "$REF" "$cfg" 60 "reference overload" 300; fi
  measure "$bin" "$cfg" 60 "this build overload" 300
fi
