"""The scale model's full disaster-recovery restore (docs/scale.md): every user's newest snapshot
copied back, on one machine (users x files in flight) and by the stack (one restore job per user,
the restore function's MaximumConcurrency x its copies at once), with the S3 rates each needs."""
from __future__ import annotations

import math

from backup_cfn.bench.scale_limits import CONTENT_PREFIXES, LIMITS


def copy_seconds(object_bytes: float) -> float:
    """One server-side copy: a request plus its bytes at one request's published throughput."""
    return LIMITS["s3_request_seconds"].value + object_bytes / LIMITS["s3_bytes_per_request_second"].value


def on_one_machine(scale, design) -> dict:
    """users x files per user copies in flight from this machine; bounded by that, or by the
    source's content/ prefix rate."""
    in_flight = design.restore_users_parallel * design.restore_files_per_user
    rate = in_flight / copy_seconds(scale.bytes / scale.objects)
    ceiling = LIMITS["s3_get_per_prefix"].value
    bound = f"copies in flight ({in_flight})"
    if rate >= ceiling:
        rate, bound = ceiling, "the replica content/ prefix GET rate until S3 partitions it"
    manifests = scale.users * 2 * LIMITS["s3_request_seconds"].value / design.restore_users_parallel
    return {"seconds": round(scale.objects / rate + manifests), "copies_per_second": round(rate), "bound": bound,
            "in_flight": in_flight}


def esm_ramp_seconds(concurrency: int) -> float:
    """How long an SQS event source takes to reach `concurrency` from its start."""
    start, per_minute = LIMITS["sqs_esm_start"].value, LIMITS["sqs_esm_ramp_per_minute"].value
    return max(0.0, (concurrency - start) / per_minute * 60)


def enqueue_seconds(users: int, threads: int) -> float:
    """The operator's start: the user listing (1,000 prefixes a page) and SendMessageBatch of 10."""
    return (math.ceil(users / 1000) * LIMITS["s3_request_seconds"].value
            + math.ceil(users / LIMITS["sqs_batch"].value) / threads * LIMITS["sqs_request_seconds"].value)


def by_the_stack(scale, design, workers: int | None = None) -> dict:
    """One restore job per user: each lists the user's snapshots and reads one (two S3 requests),
    copies its files `restore_threads` at a time, and records its result (one transaction); the
    restore function runs `workers` jobs at once once the event source has ramped up."""
    workers = min(workers or design.restore_workers, int(LIMITS["lambda_account_concurrency"].value))
    files = scale.objects / scale.users
    per_copy = copy_seconds(scale.bytes / scale.objects)
    job = (2 * LIMITS["s3_request_seconds"].value + math.ceil(files / design.restore_threads) * per_copy
           + 2 * LIMITS["dynamodb_request_seconds"].value)
    waves = math.ceil(scale.users / workers)
    seconds = enqueue_seconds(scale.users, design.initiator_send_threads) + esm_ramp_seconds(workers) + waves * job
    copies_per_second = scale.objects / (waves * job)
    return {"seconds": round(seconds), "workers": workers, "copies_at_once": workers * design.restore_threads,
            "job_seconds": round(job, 3), "copies_per_second": round(copies_per_second),
            "source_prefixes_needed": math.ceil(copies_per_second / LIMITS["s3_get_per_prefix"].value),
            "target_prefixes_needed": math.ceil(copies_per_second / LIMITS["s3_put_per_prefix"].value)}


def workers_for_an_hour(scale, design, target_seconds: float = 3600) -> int | None:
    """The fewest restore functions at once that restore every user within the target."""
    for workers in range(2, int(LIMITS["esm_maximum_concurrency"].value) + 1):
        if by_the_stack(scale, design, workers)["seconds"] <= target_seconds:
            return workers
    return None


def source_and_target_rows(restore: dict, scale) -> list[tuple[str, float, float, str]]:
    """The rates a restore by the stack asks of S3: its content/ GETs spread over the 256 hashed
    prefixes of the source, its PUTs over one prefix per user in the target."""
    rate = restore["copies_per_second"]
    return [
        ("restore source GET rate", rate / CONTENT_PREFIXES, LIMITS["s3_get_per_prefix"].value,
         f"GET/s per content/ prefix ({CONTENT_PREFIXES})"),
        ("restore target PUT rate", rate / scale.users * scale.users / min(scale.users, restore["workers"]),
         LIMITS["s3_put_per_prefix"].value, "PUT/s per user prefix"),
    ]
