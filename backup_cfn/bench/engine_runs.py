"""Scenarios 4 and 2 on one rig: a first full run against the emulator's raw CopyObject rate at
the same concurrency, then the requests of one incremental run against the minimum the data
model needs."""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from backup_cfn.bench.rig import SEED, START, Rig, Sizes, churn, make_rig, progress, run_backup, source_keys


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

    rig.counter.reset()
    drained: list = []
    started = time.perf_counter()
    record = run_backup(rig, threads, drained)
    full_seconds = time.perf_counter() - started
    # The first run's requests by operation: the scale model's figures per new object.
    first_run_requests = {service: rig.counter.by_operation(service) for service in ("s3", "dynamodb", "sqs")}
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
        "requests": first_run_requests,
        "profile": first_run_profile(first_run_requests, objects, threads, full_seconds, drained[0]),
    }
    return e2e, keys


def first_run_profile(requests: dict, objects: int, threads: int, seconds: float, report) -> dict:
    """Where a new object's time goes: requests per object by service, how the pollers' time splits
    between invocations and waiting for a message, and the mean time an invocation spends per
    request it makes (the round trips to the emulator are nearly all of it)."""
    totals = {service: sum(by_operation.values()) for service, by_operation in requests.items()}
    made = sum(totals.values())
    capacity = threads * seconds
    return {
        "requests_per_object": {service: round(count / objects, 2) for service, count in totals.items()}
        | {"all": round(made / objects, 2)},
        "invocations": report.invocations,
        "busy_share": round(report.worker_seconds / capacity, 3),
        "idle_share": round(report.idle_seconds / capacity, 3),
        "ms_per_request_in_invocations": round(1000 * report.worker_seconds / made, 2) if made else None,
    }


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
        "users_changed": len({key.split("/", 1)[0] for key in changed}),
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


def request_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 2's rows of the bench table."""
    r = results.get("requests")
    if not r:
        return []
    return [("2 requests", f"S3 {r['s3_total']} (min {r['minimum_s3']}), DynamoDB {r['dynamodb_total']} "
                           f"(min {r['minimum_dynamodb']})",
             f"S3 {r['s3_over_minimum']}x, DDB {r['dynamodb_over_minimum']}x, all {r['total_over_minimum']}x",
             "<= 1.1x")]


def end_to_end_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 4's rows of the bench table."""
    e = results.get("end_to_end")
    if not e:
        return []
    rows = [("4 end to end", f"{e['objects']} objects: {e['first_run_objects_per_second']}/s vs raw copy "
                             f"{e['raw_copy_objects_per_second']}/s at {e['concurrency']}",
             f"{e['ratio']} of raw", "(ratio)")]
    pr = e.get("profile")
    if pr:
        per = pr["requests_per_object"]
        rows.append(("", f"per new object: {per['all']} requests (S3 {per.get('s3')}, DDB {per.get('dynamodb')}, "
                         f"SQS {per.get('sqs')})",
                     f"pollers busy {pr['busy_share']:.0%}, idle {pr['idle_share']:.0%}; "
                     f"{pr['ms_per_request_in_invocations']} ms/request", ""))
    return rows
