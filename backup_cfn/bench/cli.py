"""`make bench`: what the system stores, how many requests it makes, how fast it runs.

A benchmark, not a test: it reports and never fails on a time. The scenarios, each with the figure
it is judged against:
1. storage over time: the engine's real backups and garbage collection, day by day, on the local
   emulator, over the demo data generator's users (daily revisions, additions, deletions, files
   shared across users), against the unique content bytes, a naive daily full copy and
   incremental-without-dedup;
2. requests of one incremental run (1% churn) against the minimum the data model needs;
3. the worker's streaming SHA-256 against hashlib.sha256 on the same bytes;
4. objects per second of a first full run against the emulator's raw CopyObject rate, same concurrency;
5. template build time, in process;
6. storage over a simulated year with keep_monthly = 12 (backup_cfn/bench/year.py);
7. find: one user's 60 days, and every user of scenario 4's 1,000 users and two runs (backup_cfn/bench/find.py);
8. one user too large for one invocation, over scaled-down invocations: how many a 200,000-object
   user needs at the worker's 900-second timeout (backup_cfn/bench/split.py);
9. restore: one user and every user of scenario 4's rig, to S3 and to a directory, in objects/s and
   MB/s, against raw CopyObject and GetObject at the same concurrency (backup_cfn/bench/restore.py);
10. every user of scenario 4's rig restored by the stack (restore jobs, the restore function's
   handler), byte-exact, against raw CopyObject at the same copies at once (bench/restore_jobs.py);
11. continuous protection: change-to-protected latency p50/p99 for a steady stream and a burst
   (10,000 changes within a minute), requests per captured change (backup_cfn/bench/continuous.py).
Whenever scenario 2 ran (with 4 and 8 if they did), the scale model (backup_cfn/bench/scale.py,
docs/scale.md) carries the measured requests to 1x, 10x and 100x and prints a second table.
Writes results.json, storage.png and retention.png into the output folder and a table to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from backup_cfn.bench import continuous, find, restore, restore_jobs, scale, scale_continuous, year
from backup_cfn.config import load_environment
from backup_cfn.bench.engine_runs import end_to_end_and_requests
from backup_cfn.bench.micro import hashing, template_build
from backup_cfn.bench.report import table, write
from backup_cfn.bench.rig import FULL, QUICK, emulator_env, progress
from backup_cfn.bench.split import split_user
from backup_cfn.bench.storage import chart, storage_over_time

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_OUT = ROOT / "docs" / "bench"
SCENARIOS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
SCENARIO_RANGE = f"{SCENARIOS[0]}-{SCENARIOS[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each scenario small (CI)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT.relative_to(ROOT)}, "
                                                               "or build/bench-quick with --quick)")
    parser.add_argument("--only", default=",".join(map(str, SCENARIOS)), help="comma-separated scenario numbers")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = args.out or (ROOT / "build" / "bench-quick" if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    try:
        only = {int(x) for x in args.only.split(",") if x.strip()}
    except ValueError:
        parser.error(f"--only takes scenario numbers {SCENARIO_RANGE} separated by commas, got {args.only!r}")
    if not only or not only <= set(SCENARIOS):
        parser.error(f"--only takes scenario numbers {SCENARIO_RANGE} separated by commas, got {args.only!r}")

    results: dict = {"mode": "quick" if args.quick else "full", "sizes": dataclasses.asdict(sizes),
                     "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "platform": platform.platform()},
                     "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    began = time.perf_counter()
    if 3 in only:
        progress(f"3 hashing {sizes.hash_mib} MiB")
        results["hashing"] = hashing(sizes)
    if 5 in only:
        progress("5 template build")
        results["templates"] = template_build(sizes)
    if only & {1, 2, 4, 6, 7, 8, 9, 10, 11}:
        from backup_cfn.local.runner import quiet_handlers
        quiet_handlers()
    # Each emulator scenario gets its own emulator: moto keeps everything in memory.
    if only & {2, 4, 7, 9, 10}:
        progress(f"4 first full run over {sizes.e2e_users} users, then 2 one incremental run")
        with emulator_env() as env, tempfile.TemporaryDirectory(prefix="bench-find-cache-") as cache:
            def after(rig):     # scenarios 7 and 9 on the users of 4 and 2, after their two runs
                if 7 in only:
                    results["find_all"] = find.every_user(rig, env, cache)
                if 9 in only:
                    results["restore"] = restore.restore_speed(rig)
                if 10 in only:
                    results["restore_by_stack"] = restore_jobs.distributed_restore(rig, env)
            results["end_to_end"], results["requests"] = end_to_end_and_requests(env, sizes, env.max_concurrent_backups,
                                                                                 after)
        write(out, results)
    if 7 in only:
        days = find.ONE_USER_DAYS if not args.quick else 10
        progress(f"7 find: one user's {days} days")
        with emulator_env() as env:
            results["find_one_user"] = find.one_user(env, days=days)
        write(out, results)
    if 6 in only:
        sizes_year = year.QUICK_YEAR if args.quick else year.FULL_YEAR
        progress(f"6 storage over {sizes_year.days} days, {sizes_year.users} users, keep_monthly {sizes_year.keep_monthly}")
        with emulator_env() as env:
            results["year"] = year.storage_over_a_year(env, sizes_year, env.max_concurrent_backups)
        write(out, results)
    if 1 in only:
        progress(f"1 storage over {sizes.retention_days + sizes.extra_days} days, {sizes.storage_users} users")
        with emulator_env() as env:
            results["storage"] = storage_over_time(env, sizes, env.max_concurrent_backups)
    if 8 in only:
        progress(f"8 one user of {sizes.split_objects} objects over {sizes.split_deadline_seconds} s invocations")
        with emulator_env() as env:
            results["split"] = split_user(env, sizes)
        write(out, results)
    if 11 in only:
        progress(f"11 continuous: {sizes.continuous_rate}/s for {sizes.continuous_seconds:.0f} s, "
                 f"then a burst of {sizes.burst_changes}")
        with emulator_env() as env:
            results["continuous"] = continuous.continuous_protection(env, sizes.continuous_rate,
                                                                     sizes.continuous_seconds, sizes.burst_changes)
        write(out, results)
    if "requests" in results:
        # The scale model (docs/scale.md) over whatever of scenarios 2, 4 and 8 ran.
        results["scale"] = scale.from_results(results, scale.design_of(load_environment("prod")))
    # The continuous path's rows (docs/scale.md), from scenario 11's requests per change when it ran.
    results["scale_continuous"] = scale_continuous.model(results.get("continuous"), load_environment("prod"))
    results["seconds"] = round(time.perf_counter() - began, 1)
    write(out, results)
    if "storage" in results:
        chart(results["storage"], out / "storage.png")
    if "year" in results:
        year.chart(results["year"], out / "retention.png")
    print(table(results))
    if results.get("scale"):
        print("\n" + scale.table(results["scale"]))
    print("\n" + scale_continuous.table(results["scale_continuous"]))
    print(f"\n{results['mode']} bench in {results['seconds']} s; results in {out / 'results.json'}"
          + (f", chart {out / 'storage.png'}" if "storage" in results else ""))
    return 0


