#!/usr/bin/env python3
"""Writes a probes.yaml for the benchmarks: N HTTP probes of K GET steps.

Usage: bench/probes.py --probes N [--steps K] [--every 10s] --url URL
       [--components C] [--hook URL --after 2] [--jitter 5s]
       [--per-host 32 --journeys 256 --timeout 10s]

Probes are spread over C components (one component a probe with --hook, so
each failing probe opens its own incident and sends its own page).
"""

import argparse
import sys


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--probes", type=int, required=True)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--every", default="10s")
    p.add_argument("--url", required=True)
    p.add_argument("--components", type=int, default=5)
    p.add_argument("--hook", help="webhook URL paged when a probe fails")
    p.add_argument("--after", type=int, default=2, help="failures before paging")
    p.add_argument("--jitter", help="defaults.jitter, e.g. 5s")
    p.add_argument("--per-host", type=int, help="limits.per_host")
    p.add_argument("--journeys", type=int, help="limits.journeys")
    p.add_argument("--timeout", help="defaults.timeout, e.g. 10s")
    a = p.parse_args()

    comps = a.probes if a.hook else a.components
    out = ["version: 1", "page: { title: Bench Cloud }", "components:"]
    out += [f'  - {{ id: c{c}, name: "Component {c}" }}' for c in range(comps)]
    if a.hook:
        out += [
            "notifiers:",
            f'  hook: {{ type: webhook, url: "{a.hook}" }}',
            "escalation:",
            "  on-call:",
            "    levels:",
            "      - notify: [hook]",
            "defaults:",
            f"  alert: {{ after: {a.after} failures, recover_after: 2 passes, escalation: on-call }}",
        ]
    defaults = []
    if a.jitter:
        defaults.append(f"  jitter: {a.jitter}")
    if a.timeout:
        defaults.append(f"  timeout: {a.timeout}")
    if defaults:
        if "defaults:" not in out:
            out.append("defaults:")
        out += defaults
    limits = []
    if a.journeys:
        limits.append(f"journeys: {a.journeys}")
    if a.per_host:
        limits.append(f"per_host: {a.per_host}")
    if limits:
        out.append("limits: { " + ", ".join(limits) + " }")
    out.append("probes:")
    steps = ", ".join(
        f'{{ id: s{k}, get: "{a.url}", expect: {{ status: 200 }} }}'
        for k in range(a.steps)
    )
    for i in range(a.probes):
        out.append(
            f"  - {{ name: p{i}, component: c{i % comps}, every: {a.every}, steps: [ {steps} ] }}"
        )
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
