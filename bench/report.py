#!/usr/bin/env python3
"""Small analyses for bench/capacity.sh.

  report.py window SCRAPE1 SCRAPE2 SECONDS STEPS_PER_RUN CPU_TICKS
      Between two /metrics scrapes: runs stored (lookout_runs_total), steps
      stored, schedule lag (share of starts within 100 ms and the p99
      bucket), outcomes, and CPU per stored step. Prints one JSON object.
  report.py pages EVENTS DB FAULT_AT AFTER EVERY_S
      Detection to page: per probe, fault → page and (threshold crossed →
      page), where the threshold is crossed when the AFTER-th failed run
      since the fault finishes. Prints one JSON object.
  report.py restart DB START_MS PROBES
      Seconds from START_MS until every probe has a run started after it
      (null until then).
"""

import json
import re
import sqlite3
import sys

LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")


def scrape(path: str) -> list[tuple[str, dict, float]]:
    rows = []
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            rows.append((m.group(1), labels, float(m.group(4))))
    return rows


def total(rows, name, **want) -> float:
    return sum(
        v
        for n, l, v in rows
        if n == name and all(l.get(k) == w for k, w in want.items())
    )


def lag_buckets(rows) -> dict[float, float]:
    return {
        float(l["le"]): v
        for n, l, v in rows
        if n == "lookout_schedule_lag_seconds_bucket"
    }


def window(s1, s2, secs, steps_per_run, ticks) -> dict:
    a, b = scrape(s1), scrape(s2)
    # Counted once a run is stored (whatever the write path batches).
    runs = total(b, "lookout_runs_total") - total(a, "lookout_runs_total")
    skipped = {
        l["reason"]: v - total(a, "lookout_starts_skipped_total", reason=l["reason"])
        for n, l, v in b
        if n == "lookout_starts_skipped_total"
    }
    starts = total(b, "lookout_schedule_lag_seconds_count") - total(
        a, "lookout_schedule_lag_seconds_count"
    )
    ba, bb = lag_buckets(a), lag_buckets(b)
    within = {le: bb[le] - ba.get(le, 0) for le in sorted(bb)}
    p99 = next((le for le, n in within.items() if starts and n / starts >= 0.99), None)
    outcomes = {}
    for o in ("pass", "degraded", "fail", "error"):
        outcomes[o] = total(b, "lookout_runs_total", outcome=o) - total(
            a, "lookout_runs_total", outcome=o
        )
    steps = runs * steps_per_run
    cpu_s = ticks / 100.0
    return {
        "runs_stored": int(runs),
        "steps_stored": int(steps),
        "steps_per_s": round(steps / secs, 1),
        "starts": int(starts),
        "within_100ms": round(within.get(0.1, 0) / starts, 4) if starts else None,
        "within_250ms": round(within.get(0.25, 0) / starts, 4) if starts else None,
        "lag_p99_le_s": p99,
        "outcomes": {k: int(v) for k, v in outcomes.items()},
        "starts_skipped": {k: int(v) for k, v in skipped.items() if v},
        "cpu_s": cpu_s,
        "cpu_cores": round(cpu_s / secs, 3),
        "cpu_ms_per_step": round(cpu_s * 1000 / steps, 4) if steps else None,
    }


def pct(xs: list[float], p: float):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3)


def pages(events, db, fault_at, after, every_s) -> dict:
    fault_at = float(fault_at)
    first = {}
    with open(events) as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == "incident.trigger" and e["at"] >= fault_at:
                first.setdefault(e["component"], e["at"])
    con = sqlite3.connect(db)
    to_page, pipeline = [], []
    for comp, at in first.items():
        probe = "p" + comp[1:]
        rows = con.execute(
            "SELECT finished_at FROM runs WHERE probe = ? AND started_at >= ? "
            "AND outcome = 'fail' ORDER BY started_at",
            (probe, int(fault_at * 1000)),
        ).fetchall()
        to_page.append(at - fault_at)
        if len(rows) >= int(after):
            pipeline.append(at - rows[int(after) - 1][0] / 1000)
    threshold = int(after) * float(every_s)
    return {
        "pages": len(first),
        "threshold_s": threshold,
        "fault_to_page_p50_s": pct(to_page, 50),
        "fault_to_page_p99_s": pct(to_page, 99),
        "fault_to_page_max_s": pct(to_page, 100),
        "crossed_to_page_p50_s": pct(pipeline, 50),
        "crossed_to_page_p99_s": pct(pipeline, 99),
        "crossed_to_page_max_s": pct(pipeline, 100),
    }


def restart(db, start_ms, probes):
    con = sqlite3.connect(db)
    (n, last) = con.execute(
        "SELECT count(DISTINCT probe), max(first) FROM "
        "(SELECT probe, min(started_at) AS first FROM runs WHERE started_at >= ? GROUP BY probe)",
        (int(start_ms),),
    ).fetchone()
    if n < int(probes):
        return None
    return round((last - int(start_ms)) / 1000, 3)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "window":
        s1, s2, secs, spr, ticks = args
        print(json.dumps(window(s1, s2, float(secs), int(spr), int(ticks))))
    elif cmd == "pages":
        print(json.dumps(pages(*args)))
    elif cmd == "restart":
        print(json.dumps(restart(*args)))
    else:
        sys.exit(__doc__)
