"""`make bench`: what the system stores, how many requests it makes, how fast it runs.

A benchmark, not a test: it reports and never fails on a time. Five scenarios, each with the figure
it is judged against:
1. storage over time: the engine's real backups and garbage collection, day by day, on the local
   emulator, over the demo data generator's users (daily revisions, additions, deletions, files
   shared across users), against the unique content bytes, a naive daily full copy and
   incremental-without-dedup;
2. requests of one incremental run (1% churn) against the minimum the data model needs;
3. the worker's streaming SHA-256 against hashlib.sha256 on the same bytes;
4. objects per second of a first full run against the emulator's raw CopyObject rate, same concurrency;
5. template build time, in process;
6. storage over a simulated year with keep_monthly = 12 (backup_cfn/bench_year.py);
7. find: one user's 60 days, and every user of scenario 4's 1,000 users and two runs (backup_cfn/bench_find.py).
Writes results.json, storage.png and retention.png into the output folder and a table to stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "bench"
START = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
KIB = 1024


@dataclass(frozen=True)
class Sizes:
    storage_users: int
    retention_days: int
    extra_days: int            # simulated past the retention period, so expiry and collection show
    e2e_users: int
    churn: float
    hash_mib: int
    template_rounds: int


FULL = Sizes(storage_users=10, retention_days=60, extra_days=10, e2e_users=1000, churn=0.01, hash_mib=256,
             template_rounds=20)
QUICK = Sizes(storage_users=4, retention_days=5, extra_days=4, e2e_users=40, churn=0.05, hash_mib=16,
              template_rounds=3)


# --- the data -----------------------------------------------------------------------------------
# The engine's demo data generator (backup_cfn.ops.demo_data): users' reports and spreadsheets, a
# document every user holds, industry reports some share, and daily revisions, additions, deletions.
SEED = 42


def source_keys(users: int, day: int) -> dict[str, "object"]:
    """Every source key on `day` and its FileSpec, as the generator makes them."""
    from backup_cfn.ops import demo_data

    files = {}
    for i in range(1, users + 1):
        user = demo_data.user_name(i)
        for path, spec in demo_data.user_files(SEED, user, day).items():
            files[f"{user}/{path}"] = spec
    return files


def churn(s3, bucket: str, keys: list[str], share: float, seed: int = 7) -> list[str]:
    """Overwrite `share` of the objects (at least one) with new content; returns their keys."""
    rng = random.Random(seed)
    changed = rng.sample(sorted(keys), max(1, round(len(keys) * share)))
    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=rng.randbytes(1) + os.urandom(8 * KIB))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, changed))
    return changed


# --- the engine on the emulator -----------------------------------------------------------------

class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Rig:
    clients: object
    settings: object
    clock: Clock
    counter: object


def make_rig(env, retention_days: int, job_threads: int = 8) -> Rig:
    from backup_cfn import aws
    from backup_cfn.engine.settings import RequestCounter, settings_from_outputs
    from backup_cfn.local.provision import provision

    outputs = provision(lambda service, region: aws.client(env, service, region), prefix=f"b{uuid.uuid4().hex[:10]}",
                        region=env.region, replica_region=env.replica_region)
    clock = Clock(START)
    settings = settings_from_outputs(outputs, retention_days=retention_days, stack_name=env.stack_name)
    settings = settings.with_(clock=clock, job_threads=job_threads)
    clients = aws.engine_clients(env)
    counter = clients.count_requests(RequestCounter())
    return Rig(clients, settings, clock, counter)


def run_backup(rig: Rig, threads: int) -> dict:
    from backup_cfn.engine import naming, runs
    from backup_cfn.local.runner import drain_queue, invoke_initiator

    moment = rig.clock()
    invoke_initiator(rig.clients, rig.settings, moment, None)
    run_id = naming.run_id_for(moment)
    drain_queue(rig.clients, rig.settings, run_id=run_id, threads=threads)
    return runs.get_run(rig.clients.dynamodb, rig.settings, run_id)


def stored_content_bytes(rig: Rig) -> int:
    total = 0
    for page in rig.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=rig.settings.backup_bucket,
                                                                          Prefix="content/"):
        total += sum(obj["Size"] for obj in page.get("Contents", []))
    return total


# --- scenario 1 -----------------------------------------------------------------------------------

def storage_over_time(env, sizes: Sizes, threads: int) -> dict:
    from backup_cfn.engine.pruner import prune
    from backup_cfn.ops import demo_data

    rig = make_rig(env, sizes.retention_days)
    history: list[dict] = []       # per run: source key -> FileSpec (content_seed names the content)
    days, changed_per_day = [], []
    started = time.perf_counter()
    for day in range(1, sizes.retention_days + sizes.extra_days + 1):
        rig.clock.moment = START + timedelta(days=day - 1)
        report = demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=sizes.storage_users, day=day,
                                   seed=SEED)
        if day > 1:
            changed_per_day.append(report.uploaded / report.files)
        record = run_backup(rig, threads)
        if record.get("status") != "SUCCEEDED":
            raise RuntimeError(f"day {day}: run ended {record.get('status')}: {record}")
        history.append(source_keys(sizes.storage_users, day))
        rig.clock.moment = START + timedelta(days=day - 1, hours=4)
        prune(rig.clients, rig.settings)
        kept = history[-sizes.retention_days:]   # the collector keeps the runs inside the retention
        contents = {spec.content_seed: spec.size for snap in kept for spec in snap.values()}
        per_user = {(key.split("/", 1)[0], spec.content_seed): spec.size for snap in kept for key, spec in snap.items()}
        if day % 10 == 0:
            progress(f"  day {day}")
        days.append({
            "day": day,
            "stored": stored_content_bytes(rig),
            "unique": sum(contents.values()),
            "naive_full": sum(spec.size for snap in kept for spec in snap.values()),
            "incremental_no_dedup": sum(per_user.values()),
            "files": report.files,
        })
    last = days[-1]
    return {
        "users": sizes.storage_users, "files_last_day": last["files"],
        "retention_days": sizes.retention_days, "days": len(days),
        "daily_churn": round(sum(changed_per_day) / max(1, len(changed_per_day)), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "series": days,
        "final": last,
        "stored_over_unique": round(last["stored"] / last["unique"], 4),
        "max_stored_over_unique": round(max(d["stored"] / d["unique"] for d in days), 4),
        "naive_over_stored": round(last["naive_full"] / last["stored"], 2),
        "incremental_over_stored": round(last["incremental_no_dedup"] / last["stored"], 3),
        "target": "stored <= 1.02 x unique",
    }


# --- scenarios 4 and 2 ----------------------------------------------------------------------------

def end_to_end_and_requests(env, sizes: Sizes, threads: int, after=None) -> tuple[dict, dict]:
    """Scenario 4 (a first full run against raw CopyObject), then scenario 2 (the requests of one
    incremental run after it) on the same rig; then `after(rig)`, which finds two runs there."""
    rig = make_rig(env, 60)
    e2e, keys = end_to_end(rig, sizes, threads)
    requests = incremental_requests(rig, sizes, threads, keys)
    if after is not None:
        after(rig)
    return e2e, requests


def end_to_end(rig: Rig, sizes: Sizes, threads: int) -> tuple[dict, list[str]]:
    from backup_cfn.ops import demo_data

    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=sizes.e2e_users, day=1, seed=SEED)
    keys = sorted(source_keys(sizes.e2e_users, 1))
    objects = len(keys)
    progress(f"  uploaded {objects} objects; first full run")

    started = time.perf_counter()
    record = run_backup(rig, threads)
    full_seconds = time.perf_counter() - started
    if record.get("status") != "SUCCEEDED":
        raise RuntimeError(f"first full run ended {record.get('status')}")

    progress(f"  first run {full_seconds:.0f} s; raw CopyObject of the same objects")
    # The emulator's own CopyObject rate, same objects, same number of concurrent workers.
    raw_bucket = f"{rig.settings.source_bucket}-raw"
    rig.clients.s3.create_bucket(Bucket=raw_bucket)
    def copy(key):
        rig.clients.s3.copy_object(Bucket=raw_bucket, Key=key,
                                   CopySource={"Bucket": rig.settings.source_bucket, "Key": key})
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(copy, keys))
    raw_seconds = time.perf_counter() - started
    e2e = {
        "users": sizes.e2e_users, "objects": objects, "concurrency": threads,
        "first_run_seconds": round(full_seconds, 2), "first_run_objects_per_second": round(objects / full_seconds, 1),
        "raw_copy_seconds": round(raw_seconds, 2), "raw_copy_objects_per_second": round(objects / raw_seconds, 1),
        "ratio": round(raw_seconds / full_seconds, 3),
    }
    return e2e, keys


def incremental_requests(rig: Rig, sizes: Sizes, threads: int, keys: list[str]) -> dict:
    objects = len(keys)
    progress("  one incremental run, requests counted")
    # One incremental run: churn, then count every request the run makes.
    rig.clock.moment = START + timedelta(days=1)
    changed = churn(rig.clients.s3, rig.settings.source_bucket, keys, sizes.churn)
    new_contents = len(changed)   # each overwritten with random bytes: content nobody holds
    rig.counter.reset()
    started = time.perf_counter()
    record = run_backup(rig, threads)
    incremental_seconds = time.perf_counter() - started
    s3_ops = rig.counter.by_operation("s3")
    ddb_ops = rig.counter.by_operation("dynamodb")
    users = sizes.e2e_users
    per_user = objects / users
    list_pages = users * max(1, math.ceil(per_user / 1000))
    # list users and each user's files, previous manifest read + new one written, read changed, copy new
    minimum_s3 = math.ceil(users / 1000) + list_pages + users + users + len(changed) + new_contents
    minimum_ddb = new_contents + users                                     # index entry per new content, job record
    s3_total, ddb_total = sum(s3_ops.values()), sum(ddb_ops.values())
    requests = {
        "users": users, "objects": objects, "changed_objects": len(changed), "churn": sizes.churn,
        "s3": s3_ops, "dynamodb": ddb_ops,
        "sqs": rig.counter.by_operation("sqs"), "sns": rig.counter.by_operation("sns"),
        "s3_total": s3_total, "dynamodb_total": ddb_total,
        "minimum_s3": minimum_s3, "minimum_dynamodb": minimum_ddb,
        "s3_over_minimum": round(s3_total / minimum_s3, 3),
        "dynamodb_over_minimum": round(ddb_total / minimum_ddb, 3),
        "total_over_minimum": round((s3_total + ddb_total) / (minimum_s3 + minimum_ddb), 3),
        "minimum_definition": ("S3: the initiator's user listing, one source list page per user, the previous manifest read and the new one "
                               "written per user, one read per changed object, one copy per new content; "
                               "DynamoDB: one index write per new content and one job record per user"),
        "target": "<= 1.1 x minimum",
        "new_contents": new_contents, "run_status": record.get("status"),
        "seconds": round(incremental_seconds, 2),
    }
    return requests


# --- scenario 3 -----------------------------------------------------------------------------------

def hashing(sizes: Sizes, rounds: int = 3) -> dict:
    from backup_cfn.engine.hashing import sha256_of_stream

    data = random.Random(3).randbytes(1024 * 1024) * sizes.hash_mib  # content does not change SHA-256's speed
    def best(fn) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)
    reference = hashlib.sha256(data).hexdigest()
    streamed, _ = sha256_of_stream(io.BytesIO(data))
    if streamed != reference:
        raise RuntimeError("the streaming hash disagrees with hashlib")
    engine_s = best(lambda: sha256_of_stream(io.BytesIO(data)))
    hashlib_s = best(lambda: hashlib.sha256(data).hexdigest())
    mib = sizes.hash_mib
    return {"mib": mib, "engine_mib_per_second": round(mib / engine_s, 1),
            "hashlib_mib_per_second": round(mib / hashlib_s, 1), "ratio": round(hashlib_s / engine_s, 3),
            "target": ">= 0.9"}


# --- scenario 5 -----------------------------------------------------------------------------------

def template_build(sizes: Sizes) -> dict:
    from backup_cfn.config import load_environments
    from backup_cfn.stack.render import render_environment

    envs = list(load_environments().values())
    render_environment(envs[0])  # imports and first-use caches out of the measurement
    times = []
    for _ in range(sizes.template_rounds):
        started = time.perf_counter()
        for env in envs:
            render_environment(env)
        times.append(time.perf_counter() - started)
    times.sort()
    return {"environments": [e.name for e in envs], "templates": 2 * len(envs), "rounds": len(times),
            "best_ms": round(times[0] * 1000, 1), "median_ms": round(times[len(times) // 2] * 1000, 1)}


# --- output -------------------------------------------------------------------------------------

def chart(storage: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = storage["series"]
    days = [d["day"] for d in series]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for key, label, style in (("naive_full", "naive daily full copy", "--"),
                              ("incremental_no_dedup", "incremental, no dedup (AWS Backup's model)", "-."),
                              ("stored", "backup-cfn stored", "-"),
                              ("unique", "unique content (whole-file dedup limit)", ":")):
        ax.plot(days, [d[key] / 1024**2 for d in series], style, label=label, linewidth=2 if key == "stored" else 1.5)
    ax.set_xlabel("day")
    ax.set_yscale("log")  # the naive copy grows ~30x past the others; a log axis keeps all four readable
    ax.set_ylabel("MiB (log scale)")
    ax.set_title(f"Storage over {storage['days']} days: {storage['users']} users ({storage['files_last_day']} files), "
                 f"{storage['daily_churn']:.1%} of files new or changed a day, {storage['retention_days']}-day retention", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(results: dict) -> str:
    rows = []
    s = results.get("storage")
    if s:
        f = s["final"]
        rows.append(("1 storage", f"stored {f['stored'] / 1024**2:.1f} MiB vs unique {f['unique'] / 1024**2:.1f} MiB",
                     f"{s['stored_over_unique']:.3f}x unique (max {s['max_stored_over_unique']:.3f})", "<= 1.02x"))
        rows.append(("", f"naive full {f['naive_full'] / 1024**2:.0f} MiB, incremental {f['incremental_no_dedup'] / 1024**2:.1f} MiB",
                     f"naive {s['naive_over_stored']}x, incr. {s['incremental_over_stored']}x stored", ""))
    r = results.get("requests")
    if r:
        rows.append(("2 requests", f"S3 {r['s3_total']} (min {r['minimum_s3']}), DynamoDB {r['dynamodb_total']} "
                                   f"(min {r['minimum_dynamodb']})",
                     f"S3 {r['s3_over_minimum']}x, DDB {r['dynamodb_over_minimum']}x, all {r['total_over_minimum']}x",
                     "<= 1.1x"))
    h = results.get("hashing")
    if h:
        rows.append(("3 hashing", f"engine {h['engine_mib_per_second']} MiB/s, hashlib {h['hashlib_mib_per_second']} MiB/s",
                     f"{h['ratio']}", ">= 0.9"))
    e = results.get("end_to_end")
    if e:
        rows.append(("4 end to end", f"{e['objects']} objects: {e['first_run_objects_per_second']}/s vs raw copy "
                                     f"{e['raw_copy_objects_per_second']}/s at {e['concurrency']}",
                     f"{e['ratio']} of raw", "(ratio)"))
    t = results.get("templates")
    if t:
        rows.append(("5 templates", f"{t['templates']} templates, best of {t['rounds']}",
                     f"{t['best_ms']} ms (median {t['median_ms']})", "-"))
    from backup_cfn import bench_find, bench_year
    rows += bench_year.table_rows(results.get("year")) + bench_find.table_rows(results.get("find_one_user"),
                                                                                results.get("find_all"))
    widths = [max(len(row[i]) for row in rows + [("scenario", "measured", "result", "target")]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(("scenario", "measured", "result", "target"), widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each scenario small (CI)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT.relative_to(ROOT)}, "
                                                               "or build/bench-quick with --quick)")
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="comma-separated scenario numbers")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = args.out or (ROOT / "build" / "bench-quick" if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    try:
        only = {int(x) for x in args.only.split(",") if x.strip()}
    except ValueError:
        parser.error(f"--only takes scenario numbers 1-7 separated by commas, got {args.only!r}")
    if not only or not only <= set(range(1, 8)):
        parser.error(f"--only takes scenario numbers 1-7 separated by commas, got {args.only!r}")

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
    if only & {1, 2, 4, 6, 7}:
        from backup_cfn.local.runner import quiet_handlers
        quiet_handlers()
    # Each emulator scenario gets its own emulator: moto keeps everything in memory.
    if only & {2, 4, 7}:
        progress(f"4 first full run over {sizes.e2e_users} users, then 2 one incremental run")
        with _emulator_env() as env, tempfile.TemporaryDirectory(prefix="bench-find-cache-") as cache:
            after = None
            if 7 in only:
                from backup_cfn import bench_find
                after = lambda rig: results.__setitem__("find_all", bench_find.every_user(rig, env, cache))  # noqa: E731
            results["end_to_end"], results["requests"] = end_to_end_and_requests(env, sizes, env.max_concurrent_backups,
                                                                                 after)
        _write(out, results)
    if 7 in only:
        from backup_cfn import bench_find
        days = bench_find.ONE_USER_DAYS if not args.quick else 10
        progress(f"7 find: one user's {days} days")
        with _emulator_env() as env:
            results["find_one_user"] = bench_find.one_user(env, days=days)
        _write(out, results)
    if 6 in only:
        from backup_cfn import bench_year
        year = bench_year.QUICK_YEAR if args.quick else bench_year.FULL_YEAR
        progress(f"6 storage over {year.days} days, {year.users} users, keep_monthly {year.keep_monthly}")
        with _emulator_env() as env:
            results["year"] = bench_year.storage_over_a_year(env, year, env.max_concurrent_backups)
        _write(out, results)
    if 1 in only:
        progress(f"1 storage over {sizes.retention_days + sizes.extra_days} days, {sizes.storage_users} users")
        with _emulator_env() as env:
            results["storage"] = storage_over_time(env, sizes, env.max_concurrent_backups)
    results["seconds"] = round(time.perf_counter() - began, 1)
    _write(out, results)
    if "storage" in results:
        chart(results["storage"], out / "storage.png")
    if "year" in results:
        from backup_cfn import bench_year
        bench_year.chart(results["year"], out / "retention.png")
    print(table(results))
    print(f"\n{results['mode']} bench in {results['seconds']} s; results in {out / 'results.json'}"
          + (f", chart {out / 'storage.png'}" if "storage" in results else ""))
    return 0


def _write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


@contextlib.contextmanager
def _emulator_env():
    """The `local` environment on a private emulator this bench starts and stops."""
    from backup_cfn.config import load_environment
    from backup_cfn.local import server

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = server.free_port()
    server.start(port)
    try:
        yield dataclasses.replace(load_environment("local"), endpoint_url=server.url(port))
    finally:
        server.stop(port)


if __name__ == "__main__":
    sys.exit(main())
