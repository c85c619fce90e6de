#!/usr/bin/env python3
"""Generate ``team-week.csv``: one seeded week of CI jobs for a team of 20 developers.

    python3 scenarios/traces/gen_team_week.py                 # seed 42 -> team-week.csv
    python3 scenarios/traces/gen_team_week.py --seed 7 --out /tmp/w.csv --pipelines-per-weekday 300

Python 3.11, standard library only. The same arguments give a byte-identical file: every draw
comes from one ``random.Random(seed)`` in a fixed order, and times are integer milliseconds.

SIMPLIFICATION (read this before using the trace)
-------------------------------------------------
The simulator does not model stages or ``needs`` yet (a later issue adds them). So in this
trace a job's ``created_at`` is the moment it becomes PENDING, not the moment its pipeline was
created: a pipeline's build jobs are created when the pipeline starts; its test jobs when the
slowest build job would have finished with no queueing (start + max build duration); its
deploy job when the slowest test job would have finished (start + max build + max test). Any
queueing the simulator finds therefore does not delay later stages, which makes pending times
at peak slightly optimistic. The trace has no ``stage`` or ``needs`` column for that reason
(a reader would otherwise apply them twice); ``name`` and ``pipeline_id`` keep the structure
visible. When stages are modelled, regenerate with ``created_at`` = pipeline start for every
job plus ``stage``/``needs`` columns.

Model
-----
- Week: Monday 00:00 to Sunday 24:00 in Asia/Seoul; ``created_at`` is seconds from Monday
  00:00 local time (week of 2026-03-02; Seoul has no daylight saving time, so local hours
  are fixed offsets from the start).
- Pipeline arrivals: a non-homogeneous Poisson process sampled by thinning (Lewis & Shedler).
  The weekday intensity is a smooth curve over the local hour: a night floor, a late-morning
  peak (10:45), an afternoon peak (15:15), a lunch dip (12:00-13:00) and a little evening
  work (20:30). It is scaled so that a weekday averages ``--pipelines-per-weekday`` pipelines
  (default 150), times a per-day factor (Mon 1.05, Tue-Thu 1.00, Fri 0.95); Saturday and
  Sunday are 4 % of a weekday.
- 20 developers, each with a home project (8 backend, 6 frontend, 3 library, 3 infra); a
  pipeline's developer is drawn uniformly and works on their home project 85 % of the time.
  Each developer has a feature branch per project, replaced by a new one with probability
  1/6 per pipeline; a share of pipelines runs on ``main`` (merges).
- Four projects, each with its own template: build (fixed jobs) -> test (``parallel``
  fan-out of 1-3 shards named ``test i/N``) -> deploy (only on some ``main`` pipelines).
  Script durations are log-normal with the medians below; deploy jobs use no cache.
- ``cache_key`` is ``<project>-<branch>``; ``cache_size`` is drawn once per key around the
  project's base size. ``tags`` are empty: the seed runner is untagged.

Columns: job_id,pipeline_id,project_id,name,created_at,duration,tags,cache_key,
cache_fallback_keys,cache_size,cache_changed,cache_miss_penalty,image,image_size. The last
four are derived without random draws: branch caches fall back to main's, build-stage jobs
change the cached dependencies, a miss costs the project's dependency download, images have
their published compressed sizes.
Rows are sorted by created_at (then pipeline, then job order), and job ids are assigned 1, 2,
3, ... in that order.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

TIME_ZONE = ZoneInfo("Asia/Seoul")
WEEK_START = datetime(2026, 3, 2, 0, 0, tzinfo=TIME_ZONE)  # a Monday
WEEK_S = 7 * 24 * 3600
DAY_FACTORS = [1.05, 1.00, 1.00, 1.00, 0.95, 0.04, 0.04]  # Monday .. Sunday
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

DEVELOPERS = 20
HOME_PROJECT_COUNTS = {"backend": 8, "frontend": 6, "library": 3, "infra": 3}
HOME_PROJECT_SHARE = 0.85
NEW_BRANCH_PROBABILITY = 1 / 6


@dataclass(frozen=True)
class JobKind:
    """One job (or one parallel shard) of a template: name, median minutes, log-normal sigma."""

    name: str
    median_min: float
    sigma: float


@dataclass(frozen=True)
class Project:
    project_id: int
    name: str
    image: str
    image_mb: int  # compressed size of the image, pulled on a machine that lacks it
    cache_base_mb: int
    miss_penalty_s: int  # extra script time on a cache miss (dependency download)
    main_share: float  # share of this project's pipelines that run on main
    deploy_on_main: float  # probability that a main pipeline deploys
    build: tuple[JobKind, ...]
    test: JobKind  # one shard of the parallel test job
    fan_out_weights: tuple[float, float, float]  # P(N = 1, 2, 3 shards)
    deploy: JobKind


PROJECTS = {
    "backend": Project(
        project_id=1,
        name="backend",
        image_mb=480,
        miss_penalty_s=240,
        image="maven:3-eclipse-temurin-17",
        cache_base_mb=350,
        main_share=0.25,
        deploy_on_main=1.0,
        build=(JobKind("compile", 3.5, 0.30), JobKind("checkstyle", 1.5, 0.25)),
        test=JobKind("test", 6.0, 0.35),
        fan_out_weights=(0.2, 0.4, 0.4),
        deploy=JobKind("deploy-staging", 2.0, 0.20),
    ),
    "frontend": Project(
        project_id=2,
        name="frontend",
        image_mb=1100,
        miss_penalty_s=150,
        image="node:20",
        cache_base_mb=450,
        main_share=0.25,
        deploy_on_main=1.0,
        build=(JobKind("build", 3.0, 0.30), JobKind("lint", 1.2, 0.25)),
        test=JobKind("test", 5.0, 0.40),
        fan_out_weights=(0.3, 0.4, 0.3),
        deploy=JobKind("deploy-preview", 1.5, 0.20),
    ),
    "library": Project(
        project_id=3,
        name="library",
        image_mb=1020,
        miss_penalty_s=60,
        image="python:3.12",
        cache_base_mb=120,
        main_share=0.20,
        deploy_on_main=0.3,
        build=(JobKind("package", 1.5, 0.25),),
        test=JobKind("test", 4.0, 0.35),
        fan_out_weights=(0.2, 0.3, 0.5),
        deploy=JobKind("publish", 1.0, 0.20),
    ),
    "infra": Project(
        project_id=4,
        name="infra",
        image_mb=8,
        miss_penalty_s=20,
        image="alpine:3.20",
        cache_base_mb=80,
        main_share=0.40,
        deploy_on_main=1.0,
        build=(JobKind("validate", 1.0, 0.25), JobKind("tflint", 1.2, 0.25)),
        test=JobKind("plan", 3.0, 0.40),
        fan_out_weights=(0.6, 0.4, 0.0),
        deploy=JobKind("apply", 4.0, 0.30),
    ),
}


def bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def weekday_shape(hour: float) -> float:
    """Relative pipeline intensity at a local hour of a weekday (any positive scale)."""
    office = 1.00 * bump(hour, 10.75, 1.6) + 0.95 * bump(hour, 15.25, 1.9)
    lunch = 1.0 - 0.50 * bump(hour, 12.5, 0.45)
    evening = 0.12 * bump(hour, 20.5, 1.5)
    night = 0.015
    return office * lunch + evening + night


# Integral of the shape over one day in hours (midpoint rule, one-minute steps).
SHAPE_HOURS = sum(weekday_shape((m + 0.5) / 60) for m in range(24 * 60)) / 60


def intensity_per_s(t_s: float, pipelines_per_weekday: float) -> float:
    """Pipelines per second at ``t_s`` seconds after Monday 00:00 local time."""
    day = int(t_s // 86400)
    hour = (t_s % 86400) / 3600
    per_hour = pipelines_per_weekday * weekday_shape(hour) / SHAPE_HOURS
    return DAY_FACTORS[day] * per_hour / 3600


def pipeline_starts(rng: random.Random, pipelines_per_weekday: float) -> list[float]:
    """Arrival times (s) of the week's pipelines, by thinning a homogeneous process."""
    peak_shape = max(weekday_shape(m / 60) for m in range(24 * 60))
    rate_max = 1.01 * max(DAY_FACTORS) * pipelines_per_weekday * peak_shape / SHAPE_HOURS / 3600
    starts = []
    t = 0.0
    while True:
        t += rng.expovariate(rate_max)
        if t >= WEEK_S:
            return starts
        if rng.random() * rate_max < intensity_per_s(t, pipelines_per_weekday):
            starts.append(t)


def duration_ms(rng: random.Random, kind: JobKind) -> int:
    return round(rng.lognormvariate(math.log(kind.median_min * 60), kind.sigma) * 1000)


def fmt_s(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def generate(seed: int, pipelines_per_weekday: float) -> tuple[list[dict], list[int]]:
    """Rows (without job ids, sorted) and the pipeline start times in ms."""
    rng = random.Random(seed)
    homes = [name for name, count in HOME_PROJECT_COUNTS.items() for _ in range(count)]
    project_names = list(PROJECTS)
    branch_serial = 0
    branches: dict[tuple[int, str], str] = {}
    cache_mb: dict[str, int] = {}
    rows = []
    starts_ms = []
    for pipeline_id, start_s in enumerate(pipeline_starts(rng, pipelines_per_weekday), 1):
        start_ms = round(start_s * 1000)
        starts_ms.append(start_ms)
        developer = rng.randrange(DEVELOPERS)
        if rng.random() < HOME_PROJECT_SHARE:
            project = PROJECTS[homes[developer]]
        else:
            project = PROJECTS[rng.choice([p for p in project_names if p != homes[developer]])]
        on_main = rng.random() < project.main_share
        if on_main:
            branch = "main"
        else:
            key = (developer, project.name)
            if key not in branches or rng.random() < NEW_BRANCH_PROBABILITY:
                branch_serial += 1
                branches[key] = f"dev{developer + 1:02d}-{branch_serial}"
            branch = branches[key]
        cache_key = f"{project.name}-{branch}"
        if cache_key not in cache_mb:
            cache_mb[cache_key] = max(1, round(project.cache_base_mb * rng.lognormvariate(0, 0.1)))
        cache = (cache_key, f"{cache_mb[cache_key]}MB")

        shards = rng.choices((1, 2, 3), weights=project.fan_out_weights)[0]
        stages = [
            [(kind.name, kind, cache) for kind in project.build],
            [(f"{project.test.name} {i}/{shards}" if shards > 1 else project.test.name,
              project.test, cache) for i in range(1, shards + 1)],
        ]
        if on_main and rng.random() < project.deploy_on_main:
            stages.append([(project.deploy.name, project.deploy, ("", ""))])

        created_ms = start_ms
        order = 0
        for stage in stages:
            slowest = 0
            for name, kind, (key, size) in stage:
                ms = duration_ms(rng, kind)
                slowest = max(slowest, ms)
                rows.append({
                    "sort": (created_ms, pipeline_id, order),
                    "pipeline_id": pipeline_id,
                    "project_id": project.project_id,
                    "name": name,
                    "created_ms": created_ms,
                    "duration_ms": ms,
                    "cache_key": key,
                    "cache_size": size,
                    "image": project.image,
                    # Derived columns, no random draws (so arrivals and durations are unchanged):
                    # branch caches fall back to main's; only build-stage jobs change the
                    # cached dependencies; a miss costs the project's dependency download.
                    "cache_fallback_keys": f"{project.name}-main" if key and key != f"{project.name}-main" else "",
                    "cache_changed": "true" if any(name == b.name for b in project.build) else "false",
                    "cache_miss_penalty": str(project.miss_penalty_s) if key else "",
                    "image_size": f"{project.image_mb}MB",
                })
                order += 1
            created_ms += slowest  # the next stage becomes pending when this one would end
    rows.sort(key=lambda row: row["sort"])
    return rows, starts_ms


def write(rows: list[dict], out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["job_id", "pipeline_id", "project_id", "name", "created_at", "duration",
                         "tags", "cache_key", "cache_fallback_keys", "cache_size", "cache_changed",
                         "cache_miss_penalty", "image", "image_size"])
        for job_id, row in enumerate(rows, 1):
            writer.writerow([job_id, row["pipeline_id"], row["project_id"], row["name"],
                             fmt_s(row["created_ms"]), fmt_s(row["duration_ms"]), "",
                             row["cache_key"], row["cache_fallback_keys"], row["cache_size"],
                             row["cache_changed"], row["cache_miss_penalty"], row["image"],
                             row["image_size"]])


def fifo_waits_s(rows: list[dict], slots: int) -> list[float]:
    """Waits of a first-come-first-served queue with ``slots`` servers and instant pick-up:
    a rough check of how busy ``concurrent = slots`` would be (no polling, no stages)."""
    free_at = [0] * slots
    waits = []
    for row in rows:
        earliest = min(range(slots), key=lambda i: free_at[i])
        begin = max(row["created_ms"], free_at[earliest])
        waits.append((begin - row["created_ms"]) / 1000)
        free_at[earliest] = begin + row["duration_ms"]
    return waits


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(rows: list[dict], starts_ms: list[int], pipelines_per_weekday: float) -> str:
    per_day = [0] * 7
    for start in starts_ms:
        per_day[min(6, start // 86_400_000)] += 1
    job_ms_per_hour = [0] * (7 * 24 + 24)
    for row in rows:
        begin, end = row["created_ms"], row["created_ms"] + row["duration_ms"]
        hour = begin // 3_600_000
        while begin < end:
            boundary = (hour + 1) * 3_600_000
            job_ms_per_hour[hour] += min(end, boundary) - begin
            begin, hour = boundary, hour + 1
    busiest = max(range(len(job_ms_per_hour)), key=lambda h: job_ms_per_hour[h])
    busiest_min = job_ms_per_hour[busiest] / 60_000
    busiest_at = WEEK_START + timedelta(hours=busiest)
    # Mean over weekdays of the two peak hours (10-11 and 15-16 local time).
    peaks = [job_ms_per_hour[d * 24 + h] / 60_000 for d in range(5) for h in (10, 15)]
    waits = fifo_waits_s(rows, 5)
    mean_job_min = sum(r["duration_ms"] for r in rows) / len(rows) / 60_000
    lines = [
        f"jobs: {len(rows)} in {len(starts_ms)} pipelines "
        f"({len(rows) / len(starts_ms):.2f} jobs per pipeline, mean script {mean_job_min:.2f} min)",
        "pipelines per day: " + ", ".join(f"{n} {c}" for n, c in zip(DAY_NAMES, per_day))
        + f" (target {pipelines_per_weekday:g} per weekday)",
        f"busiest hour: {busiest_at:%a %H:00} {busiest_at.tzname()}, {busiest_min:.0f} job-minutes "
        f"= {busiest_min / 60:.2f} jobs running on average",
        f"weekday peak hours (10:00, 15:00): mean {sum(peaks) / len(peaks) / 60:.2f} jobs running",
        f"check, FIFO with 5 slots and instant pick-up: mean wait {sum(waits) / len(waits):.1f} s, "
        f"p95 {percentile(waits, 0.95):.0f} s, max {max(waits):.0f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("team-week.csv"),
                        help="output CSV (default: team-week.csv beside this script)")
    parser.add_argument("--pipelines-per-weekday", type=float, default=150.0,
                        help="mean pipelines on a weekday (default 150)")
    args = parser.parse_args(argv)
    if args.pipelines_per_weekday <= 0:
        parser.error("--pipelines-per-weekday must be positive")
    rows, starts_ms = generate(args.seed, args.pipelines_per_weekday)
    write(rows, args.out)
    print(f"wrote {args.out} (seed {args.seed})")
    print(summary(rows, starts_ms, args.pipelines_per_weekday))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
