"""The scale model's limits (docs/scale.md): AWS's published figures with their sources, and each
bound the design meets as demand over limit, with what the design does when it is reached."""
from __future__ import annotations

import math
from dataclasses import dataclass

from backup_cfn import contract
from backup_cfn.engine import tally


@dataclass(frozen=True)
class Limit:
    value: float
    unit: str
    source: str


S3_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"
S3_WHITEPAPER = ("https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/"
                 "timeouts-and-retries-for-latency-sensitive-applications.html")
DYNAMODB = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
# AWS's published limits and latencies the model uses (docs/scale.md lists them with the quotes).
LIMITS = {
    "s3_put_per_prefix": Limit(3_500, "PUT/COPY/POST/DELETE per s per partitioned prefix", S3_DOC),
    "s3_get_per_prefix": Limit(5_500, "GET/HEAD per s per partitioned prefix", S3_DOC),
    "s3_request_seconds": Limit(0.05, "s per small request (median 'tens of milliseconds')", S3_WHITEPAPER),
    "s3_bytes_per_request_second": Limit(85e6, "bytes per s per request ('85-90 MB/s')",
                                         "https://docs.aws.amazon.com/AmazonS3/latest/userguide/"
                                         "optimizing-performance-guidelines.html"),
    "lambda_account_concurrency": Limit(1_000, "concurrent executions per Region (default quota)",
                                        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"),
    "lambda_scaling_per_10s": Limit(1_000, "new execution environments per function per 10 s",
                                    "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"),
    "sqs_esm_start": Limit(5, "concurrent batches an SQS event source starts with",
                           "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"),
    "sqs_esm_ramp_per_minute": Limit(300, "more concurrent batches per minute (SQS event source)",
                                     "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"),
    "esm_maximum_concurrency": Limit(1_000, "MaximumConcurrency at most (minimum 2)",
                                     "https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html"),
    "sqs_batch": Limit(10, "messages per SendMessageBatch; standard queue API calls 'nearly unlimited'",
                       "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"),
    "sqs_request_seconds": Limit(0.02, "s per request (assumed: SQS publishes no latency)", "assumption"),
    "dynamodb_partition_wcu": Limit(1_000, "write units per s per partition (and per partition key value)",
                                    DYNAMODB + "bp-partition-key-design.html"),
    "dynamodb_partition_rcu": Limit(3_000, "read units per s per partition", DYNAMODB + "bp-partition-key-design.html"),
    "dynamodb_new_table_writes": Limit(4_000, "writes per s a new on-demand table sustains (then double its peak, "
                                              "30 minutes apart)", DYNAMODB + "on-demand-capacity-mode.html"),
    "dynamodb_table_writes_quota": Limit(40_000, "write request units per s per on-demand table (default, raisable)",
                                         DYNAMODB + "ServiceQuotas.html"),
    "dynamodb_transaction_wcu": Limit(2, "write units per transactional write of an item up to 1 KB",
                                      DYNAMODB + "transaction-apis.html"),
    "dynamodb_transaction_window_seconds": Limit(0.005, "s a transaction holds its items against another "
                                                 "(assumed: DynamoDB publishes the conflict, not its window)",
                                                 "assumption"),
    "dynamodb_request_seconds": Limit(0.01, "s per request ('single-digit millisecond')",
                                      DYNAMODB + "on-demand-capacity-mode.html"),
}

# Write units a job spends on its shard's partition key value: its lease (1), and its record's
# transaction, which writes its user item and its shard's tally (2 each: transactional writes).
SHARD_PARTITION_WCU_PER_JOB = 1 + 2 * LIMITS["dynamodb_transaction_wcu"].value
TALLY_WCU_PER_JOB = LIMITS["dynamodb_transaction_wcu"].value
# Content keys (content/ab/cd/<sha256>) spread over 256 prefixes at the first level, 65,536 at the second.
CONTENT_PREFIXES = 256

# What the design does when a bound is reached, named in the output (docs/scale.md says more).
ANSWERS = {
    "initiator timeout": "enqueue in parallel batches of 10; past ~1M users fan the initiator out by user prefix",
    "backup window": "raise max_concurrent_backups (up to 1,000)",
    "first run in a day": "raise max_concurrent_backups for the first run (docs/scale.md: the workers an hour takes)",
    "Lambda concurrency": "MaximumConcurrency caps the worker; ask for a higher account quota past 1,000",
    "tally item writes": "raise contract.RUN_TALLY_SHARDS (64 shards carry 9,000 workers)",
    "shard partition writes": "raise contract.RUN_TALLY_SHARDS",
    "tally conflicts": "retried in place (8 times, 50 ms doubling), then by SQS; more shards",
    "runs table writes (quota)": "ask for a higher per-table quota",
    "content index writes (new table)": "set content_index_warm_writes (WarmThroughput) before a large first run",
    "content index writes (quota)": "ask for a higher per-table quota",
    "backup content/ PUT rate": "content keys are hash-spread over 256 prefixes, so S3 partitions; SDK retries SlowDown",
    "source GET rate": "one prefix per user; SDK retries SlowDown while S3 partitions",
    "restore copy rate (one machine)": "restore by the stack: one job per user",
    "restore source GET rate": "content keys are hash-spread over 256 prefixes; SDK retries SlowDown while S3 partitions",
    "restore target PUT rate": "one prefix per user; SDK retries SlowDown while S3 partitions",
}

# Each bound: what it limits ("time" grows with the users, "rate" with the concurrency) and
# whether AWS adapts past it (S3 partitions a busy prefix, on-demand doubles its peak), a quota
# one asks to raise, or not at all.
BOUNDS = {
    "initiator timeout": ("time", "hard"), "backup window": ("time", "hard"), "first run in a day": ("time", "hard"),
    "Lambda concurrency": ("time", "quota"), "tally item writes": ("rate", "hard"),
    "shard partition writes": ("rate", "hard"), "tally conflicts": ("conflict", "hard"),
    "runs table writes (quota)": ("rate", "quota"),
    "content index writes (new table)": ("rate", "adaptive"), "content index writes (quota)": ("rate", "quota"),
    "backup content/ PUT rate": ("rate", "adaptive"), "source GET rate": ("rate", "adaptive"),
    "restore copy rate (one machine)": ("restore", "adaptive"), "restore source GET rate": ("restore", "adaptive"),
    "restore target PUT rate": ("restore", "adaptive"),
}
ASSUMED = ("tally conflicts",)   # rests on an assumed figure (the transaction window)

# The closing transaction's tries before a job is dead-lettered: tally.commit retries a conflict in
# place (CONFLICT_RETRIES times) on each of the queue's deliveries.
TRIES_PER_JOB = (tally.CONFLICT_RETRIES + 1) * contract.JOB_MAX_RECEIVES


def conflict_chance(finish_rate: float) -> float:
    """The chance a job's transaction overlaps another on its shard's tally (Poisson arrivals at
    `finish_rate` a second on that item): DynamoDB cancels one of two overlapping transactions with
    TransactionConflict, and tally.commit sends it again after a short backoff."""
    return 1 - math.exp(-finish_rate * LIMITS["dynamodb_transaction_window_seconds"].value)


def row(name: str, demand: float, limit: float, unit: str, *, at_users: int, at_workers: int) -> dict:
    """One bound as demand over limit, and how far it is: the users (a time bound) or the workers
    (a rate bound) at which it would be reached."""
    kind, nature = BOUNDS[name]
    ratio = demand / limit
    out = {"check": name, "demand": float(f"{demand:.4g}"), "limit": limit, "unit": unit,
           "ratio": float(f"{ratio:.4g}"), "kind": kind, "nature": nature, "answer": ANSWERS[name]}
    if kind in ("time", "conflict") and ratio:
        out["reached_at_users"] = int(at_users / ratio)
    if kind == "rate" and ratio:
        out["reached_at_concurrency"] = int(at_workers / ratio)
    return out


def first_to_break(rows: list[dict], *, published_only: bool = False) -> dict:
    """At the design's concurrency: the bound closest to (or past) its limit; with published_only,
    among the bounds resting on published figures alone."""
    return max((r for r in rows if not (published_only and r["check"] in ASSUMED)), key=lambda r: r["ratio"])


def first_hard_ceiling(rows: list[dict]) -> dict:
    """Raising the worker concurrency: the first bound AWS does not adapt past (quotas one can raise
    are not ceilings)."""
    return min((r for r in rows if r["kind"] == "rate" and r["nature"] == "hard"),
               key=lambda r: r["reached_at_concurrency"])
