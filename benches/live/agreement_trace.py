#!/usr/bin/env python3
"""The trace of the sim-versus-live agreement bench (benches/README.md "Sim against live").

Pipelines of three jobs (build, then two tests that need it) from four projects, each job
with its project's cache (pull-push, 200 KB, a branch key with the project's main key as
fallback for one pipeline in four), scripts of 4 to 12 s: about 60 % busy on the docker
executor with concurrent = 4 and its real container overhead. Deterministic (seed 17).

usage: agreement_trace.py JOBS > trace.csv
"""
import random
import sys

jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
rng = random.Random(17)
print("job_id,pipeline_id,project_id,stage,created_at,duration,needs,cache_key,"
      "cache_fallback_keys,cache_size,cache_changed,cache_miss_penalty")
t, job, pipeline = 0.0, 0, 0
while job < jobs:
    pipeline += 1
    project = rng.randint(1, 4)
    branch = rng.random() < 0.25
    key = f"p{project}-b{pipeline}" if branch else f"p{project}-main"
    fallback = f"p{project}-main" if branch else ""
    build = job + 1
    for stage, needs in (("build", ""), ("test", str(build)), ("test", str(build))):
        if job >= jobs:
            break
        job += 1
        duration = round(rng.uniform(4, 12), 1)
        changed = "true" if stage == "build" and rng.random() < 0.3 else "false"
        print(f"{job},{pipeline},{project},{stage},{t:.1f},{duration},{needs},{key},"
              f"{fallback},200KB,{changed},2")
    t += round(rng.expovariate(1 / 13.0), 1)
