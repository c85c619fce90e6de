#!/usr/bin/env python3
"""Repeats a trace week after week to make a long trace for memory and throughput checks.

    python3 benches/repeat_trace.py scenarios/traces/team-week.csv 315 > /tmp/long.csv

Job and pipeline ids are renumbered so they stay unique; `created_at` (seconds) is shifted by
one week per copy. Stdlib only, deterministic.
"""
import csv
import sys

WEEK_S = 7 * 86400


def main() -> None:
    src, copies = sys.argv[1], int(sys.argv[2])
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(header)
    job_id = 0
    for k in range(copies):
        for row in data:
            job_id += 1
            row = list(row)
            row[col["job_id"]] = str(job_id)
            if "pipeline_id" in col and row[col["pipeline_id"]]:
                row[col["pipeline_id"]] = str(int(row[col["pipeline_id"]]) + k * 1_000_000)
            row[col["created_at"]] = "%.3f" % (float(row[col["created_at"]]) + k * WEEK_S)
            out.writerow(row)


if __name__ == "__main__":
    main()
