#!/usr/bin/env bash
# Issue 6's benchmark suite, on loopback, every load bounded in time:
#
#   capacity  the highest rate of HTTP steps/s with every step stored, no
#             failed write and schedule lag p99 < 100 ms, with 1,000 and
#             10,000 probes (rate = probes × steps ÷ every, stepped up until
#             it breaks); Lookout's CPU per stored step at each rate
#   memory    VmRSS / VmHWM with 10, 1,000 and 10,000 probes after warm-up
#   restart   1,000 probes: process start → every probe has run once
#   page      detection to page: a fault injected into the sample platform,
#             time until the webhook POST reaches a local receiver, against
#             every × alert.after
#   storage   bytes per run and per step; database size over 35 simulated
#             days of 100 probes every minute, 30 days kept (examples/storage_sim.rs)
#
# The target of capacity, memory and restart is nginx (one worker) serving
# a 3-byte static file: it costs less CPU than the sample platform, and the
# machine has 2 cores for everything. `page` needs the sample platform's
# fault API. Lag is read from `lookout_schedule_lag_seconds` as the delta
# between two /metrics scrapes (start-up excluded); CPU from
# /proc/PID/stat (utime + stime) over the same window; steps stored from the
# runs counted stored (lookout_runs_total) × steps per run, checked against `SELECT count(*) FROM steps`.
#
# Needs: nginx (Debian nginx-light), python3, curl, sqlite3; perf for PERF=.
# Usage: bench/capacity.sh [PHASE...]   (default: all five, ~15 minutes)
# Env:   WINDOW=15 (seconds measured per capacity level)
#        RESULTS=FILE (JSON lines, one per measurement; default in /tmp)
#        PERF=DIR (record each capacity window with perf into DIR; profiling
#        costs Lookout CPU, so CPU figures of such a run are not the ones)
#        LEVELS="1000:1:1 10000:1:10" (probes:steps:every, instead of the ramp)
set -euo pipefail
cd "$(dirname "$0")/.."
PHASES=${*:-capacity memory restart page storage}
WINDOW=${WINDOW:-15}
RESULTS=${RESULTS:-/tmp/lookout-bench-$(date -u +%Y%m%dT%H%M%S).jsonl}
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
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
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # comm "lookout" has no spaces
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
record() { echo "$1" >>"$RESULTS"; echo "$1"; }
ran() { # distinct probes with a stored run since $2 (ms)
  sqlite3 "$1" "SELECT count(DISTINCT probe) FROM runs WHERE started_at >= ${2:-0}" 2>/dev/null || echo 0
}

echo "== machine"
echo "date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "cpu: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "kernel: $(uname -r); $(rustc --version); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $RESULTS"

# --- the target: nginx, one worker, a 3-byte file ---------------------------
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
target="http://127.0.0.1:$nport/ok"
for _ in $(seq 50); do curl -sf "$target" >/dev/null && break; sleep 0.1; done

lpid= lport=
start_lookout() { # $1 config, $2 database, $3 log
  lport=$(port)
  lstart=$(now_ms)
  "$bin" serve --config "$1" --listen "127.0.0.1:$lport" --database "$2" >"$3" 2>&1 &
  lpid=$!
  pids+=($lpid)
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$lport/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "lookout did not start; see $3" >&2
  tail -5 "$3" >&2
  return 1
}
stop_lookout() {
  kill -TERM "$lpid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$lpid" 2>/dev/null || true
  wait "$lpid" 2>/dev/null || true
}
wait_all_ran() { # $1 db, $2 probes, $3 seconds at most
  local until=$((SECONDS + $3))
  while [ "$(ran "$1")" -lt "$2" ] && [ $SECONDS -lt $until ]; do sleep 0.5; done
}

# One capacity level: N probes of K steps every E seconds. Prints JSON and
# returns 0 when the level holds (lag p99 < 100 ms, no failed write, at
# least 95 % of the offered steps stored).
level() { # $1 probes, $2 steps, $3 every (seconds), $4 label
  local n=$1 k=$2 e=$3 tag="$4-$1x$2-${3}s"
  local cfg="$work/$tag.yaml" db="$work/$tag.db" log="$work/$tag.log"
  python3 bench/probes.py --probes "$n" --steps "$k" --every "${e}s" --url "$target" >"$cfg"
  start_lookout "$cfg" "$db" "$log" || return 1
  wait_all_ran "$db" "$n" $((e + 60))
  sleep 2
  curl -sf "http://127.0.0.1:$lport/metrics" -o "$work/s1"
  local t1 w1 t2
  t1=$(ticks "$lpid")
  w1=$(date +%s.%N)
  if [ -n "${PERF:-}" ]; then # profile the window (costs Lookout some CPU)
    perf record -q -F 499 -g -p "$lpid" -o "$PERF/perf-$tag.data" -- sleep "$WINDOW" 2>/dev/null
    perf report -i "$PERF/perf-$tag.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9]' | head -40 >"$PERF/perf-$tag.txt"
  else
    sleep "$WINDOW"
  fi
  t2=$(ticks "$lpid")
  local secs
  secs=$(python3 -c "import time; print(round(time.time() - $w1, 3))")
  curl -sf "http://127.0.0.1:$lport/metrics" -o "$work/s2"
  local rss hwm failed
  rss=$(kb "$lpid" VmRSS) hwm=$(kb "$lpid" VmHWM)
  failed=$(grep -c "could not record run" "$log" || true)
  stop_lookout
  local steps_db runs_db
  runs_db=$(sqlite3 "$db" "SELECT count(*) FROM runs")
  steps_db=$(sqlite3 "$db" "SELECT count(*) FROM steps")
  local w
  w=$(python3 bench/report.py window "$work/s1" "$work/s2" "$secs" "$k" $((t2 - t1)))
  local offered=$((n * k / e))
  record "$(python3 - "$w" <<PY
import json, sys
w = json.loads(sys.argv[1])
w.update(phase="capacity", probes=$n, steps_per_probe=$k, every_s=$e, offered_steps_per_s=$offered,
         window_s=$secs, failed_writes=$failed, rss_kb=$rss, hwm_kb=$hwm,
         runs_in_db=$runs_db, steps_in_db=$steps_db,
         holds=bool(w["within_100ms"] is not None and w["within_100ms"] >= 0.99 and $failed == 0
                    and w["steps_per_s"] >= 0.95 * $offered))
print(json.dumps(w))
PY
)"
  tail -1 "$RESULTS" | grep -q '"holds": true'
}

if [[ " $PHASES " == *" capacity "* ]]; then
  echo "== capacity (window ${WINDOW}s a level; a level is kept when lag p99 < 100 ms, 0 failed writes, >= 95 % stored)"
  if [ -n "${LEVELS:-}" ]; then
    for l in $LEVELS; do IFS=: read -r n k e <<<"$l"; level "$n" "$k" "$e" cap || true; done
  else
    for k in 1 2 5 8 10; do level 1000 "$k" 1 cap || break; done
    for e in 10 4 2 1; do level 10000 1 "$e" cap || break; done
  fi
fi

if [[ " $PHASES " == *" memory "* ]]; then
  echo "== memory (1-step probes every 10s; read 10 s after every probe has run)"
  for n in 10 1000 10000; do
    cfg="$work/mem-$n.yaml" db="$work/mem-$n.db"
    python3 bench/probes.py --probes "$n" --every 10s --url "$target" >"$cfg"
    start_lookout "$cfg" "$db" "$work/mem-$n.log"
    wait_all_ran "$db" "$n" 70
    sleep 10
    record "{\"phase\": \"memory\", \"probes\": $n, \"rss_kb\": $(kb "$lpid" VmRSS), \"hwm_kb\": $(kb "$lpid" VmHWM), \"probes_ran\": $(ran "$db")}"
    stop_lookout
  done
fi

if [[ " $PHASES " == *" restart "* ]]; then
  echo "== restart (1,000 probes every 10s; the database of a first run kept)"
  cfg="$work/restart.yaml" db="$work/restart.db"
  python3 bench/probes.py --probes 1000 --every 10s --url "$target" >"$cfg"
  start_lookout "$cfg" "$db" "$work/restart-1.log"
  wait_all_ran "$db" 1000 70
  stop_lookout
  start_lookout "$cfg" "$db" "$work/restart-2.log"
  t0=$lstart # the launch itself, not the free-port lookup before it
  up=$(($(now_ms) - t0))
  until=$((SECONDS + 40))
  while [ "$(ran "$db" "$t0")" -lt 1000 ] && [ $SECONDS -lt $until ]; do sleep 0.2; done
  all=$(python3 bench/report.py restart "$db" "$t0" 1000)
  record "{\"phase\": \"restart\", \"probes\": 1000, \"every_s\": 10, \"healthz_after_s\": $(python3 -c "print($up/1000)"), \"all_ran_after_s\": $all, \"probes_ran\": $(ran "$db" "$t0")}"
  stop_lookout
fi

if [[ " $PHASES " == *" page "* ]]; then
  echo "== page (40 probes, one component each, GET /apps every 2s, alert after 2 failures; list=error:500 injected)"
  plat=$(port) hook=$(port)
  LOOKOUT_SAMPLE_PASSWORD=bench "$bin" platform --listen 127.0.0.1:$plat --deploy-delay 0s >"$work/platform.log" 2>&1 &
  pids+=($!)
  python3 bench/receiver.py "$hook" "$work/hooks.jsonl" &
  pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$plat/healthz" >/dev/null && break; sleep 0.1; done
  cfg="$work/page.yaml" db="$work/page.db"
  python3 bench/probes.py --probes 40 --every 2s --url "http://127.0.0.1:$plat/apps" \
    --hook "http://127.0.0.1:$hook/hook" --after 2 >"$cfg"
  start_lookout "$cfg" "$db" "$work/page.log"
  wait_all_ran "$db" 40 30
  sleep 3 # every probe has passed at least once more
  touch "$work/hooks.jsonl"
  fault_at=$(date +%s.%N)
  curl -sf -X POST "http://127.0.0.1:$plat/_faults" -H 'content-type: application/json' \
    -d '{"endpoint":"list","mode":"error","status":500}' >/dev/null
  until=$((SECONDS + 30))
  while [ "$(grep -c incident.trigger "$work/hooks.jsonl" || true)" -lt 40 ] && [ $SECONDS -lt $until ]; do sleep 0.2; done
  sleep 1 # the last run rows are committed before the analysis reads them
  p=$(python3 bench/report.py pages "$work/hooks.jsonl" "$db" "$fault_at" 2 2)
  record "$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); d.update(phase='page', probes=40, every_s=2, after=2); print(json.dumps(d))" "$p")"
  stop_lookout
fi

if [[ " $PHASES " == *" storage "* ]]; then
  echo "== storage (100 probes every minute for ${DAYS:-35} simulated days through the real Store, retention.runs ${RETENTION_DAYS:-30}d)"
  cargo build --release --quiet --example storage_sim
  target/release/examples/storage_sim "$work/storage.db" | tee -a "$RESULTS"
fi

echo "== results in $RESULTS"
