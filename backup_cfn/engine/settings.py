"""What the engine needs to know (names, retention, timings) and the clients it talks through.

Settings are built from the Lambda environment (contract.ENV_*, set by the template) or, on an
operator's machine, from the stacks' outputs (contract.OUTPUT_*). Timings are fields so tests can
shrink them; the clock is a field so tests can move time without sleeping.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

import boto3
from botocore.config import Config

from backup_cfn import contract
from backup_cfn.engine.errors import MissingSetting
from backup_cfn.engine.retention import RetentionPolicy

# Every client this project makes, in Lambda and on an operator's machine (backup_cfn.aws uses it).
CLIENT_CONFIG = Config(retries=dict(contract.CLIENT_RETRIES), max_pool_connections=contract.CLIENT_MAX_POOL_CONNECTIONS)

WORKER_TIMEOUT_SECONDS = contract.WORKER_TIMEOUT_SECONDS
PRUNER_TIMEOUT_SECONDS = contract.PRUNER_TIMEOUT_SECONDS
JOB_MAX_RECEIVES = contract.JOB_MAX_RECEIVES


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Settings:
    source_bucket: str
    backup_bucket: str
    runs_table: str
    content_table: str
    job_queue_url: str = ""
    dead_letter_queue_url: str = ""
    capture_queue_url: str = ""
    capture_dead_letter_queue_url: str = ""
    topic_arn: str = ""
    key_arn: str = ""
    retention_days: int = 60
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    priority_users: tuple[str, ...] = ()
    stack_name: str = ""
    drill_users: int = 10
    # A user's changes within contract.BURST_WINDOW_SECONDS that raise the burst alarm.
    burst_changes: int = 1000
    # A captured object over this size without a SHA-256 stored by S3 is left to the nightly run,
    # which can spread reading it over invocations.
    capture_max_hash_bytes: int = 2 * 1024**3
    job_max_receives: int = JOB_MAX_RECEIVES
    # Retries of a failed job (engine/attempts.py): base delay, doubled per delivery, capped.
    retry_base_seconds: int = contract.RETRY_BASE_SECONDS
    retry_max_seconds: int = contract.RETRY_MAX_SECONDS
    # A job split over several invocations must finish within this long (contract.JOB_MAX_SECONDS).
    job_max_seconds: int = contract.JOB_MAX_SECONDS
    # Time an invocation keeps back, out of what Lambda gives it, to save its progress and hand on
    # the rest: this share of the time it started with, at most the cap.
    handoff_reserve_share: float = 0.1
    handoff_reserve_max_seconds: float = 60.0
    # An object without a stored SHA-256 larger than this is not read: one invocation cannot hash
    # it (about 840 s at the ~60 MB/s one Lambda stream reads); it is named in a FAILED job.
    max_hash_bytes: int = 40 * 1024**3
    # Keys per page when listing a user's folder (S3's maximum; the local runner's scaled-down
    # deadlines use smaller pages, as the emulator takes about a second for a full one).
    list_page_size: int = 1000
    # A lease or claim older than this belongs to a dead attempt (Lambda ends it at its timeout).
    stale_after_seconds: int = WORKER_TIMEOUT_SECONDS + 60
    stale_deleting_after_seconds: int = PRUNER_TIMEOUT_SECONDS + 60
    # How long a worker waits for another job to finish storing the same content before retrying later.
    claim_wait_seconds: float = 20.0
    gc_grace_hours: int = contract.GC_GRACE_HOURS
    # Objects above this are copied with UploadPartCopy (CopyObject's limit is 5 GiB).
    multipart_threshold: int = 5 * 1024**3
    multipart_part_size: int = 512 * 1024**2
    # Parallel S3/DynamoDB calls inside one job.
    job_threads: int = 8
    # Restore jobs (engine/restore_jobs.py): their queue, the dead-letter queue the restore function
    # also consumes (told apart by its ARN), and the buckets it may restore from, by name.
    restore_queue_url: str = ""
    restore_dead_letter_queue_arn: str = ""
    restore_sources: tuple[tuple[str, str], ...] = ()
    clock: Callable[[], datetime] = field(default=utc_now, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    # The retry delay's jitter: a number in [0, 1).
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def sse(self) -> dict:
        """Encryption arguments for writes to the backup bucket: our key, or the bucket default."""
        if self.key_arn:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_arn}
        return {}

    def window_start(self) -> datetime:
        """The oldest moment every minute of which is restorable (the retention window's start)."""
        return self.now() - timedelta(days=self.retention_days)

    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(self.retention_days, self.keep_weekly, self.keep_monthly, self.keep_yearly)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def settings_from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings inside Lambda, from the variables the template sets on each function."""
    environ = os.environ if environ is None else environ
    missing = [name for name in (contract.ENV_SOURCE_BUCKET, contract.ENV_BACKUP_BUCKET, contract.ENV_RUNS_TABLE,
                                 contract.ENV_CONTENT_TABLE) if not environ.get(name)]
    if missing:
        raise MissingSetting(", ".join(missing), "environment variable(s)")
    return Settings(
        source_bucket=environ[contract.ENV_SOURCE_BUCKET],
        backup_bucket=environ[contract.ENV_BACKUP_BUCKET],
        runs_table=environ[contract.ENV_RUNS_TABLE],
        content_table=environ[contract.ENV_CONTENT_TABLE],
        job_queue_url=environ.get(contract.ENV_JOB_QUEUE_URL, ""),
        capture_queue_url=environ.get(contract.ENV_CAPTURE_QUEUE_URL, ""),
        burst_changes=int(environ.get(contract.ENV_BURST_CHANGES) or 1000),
        topic_arn=environ.get(contract.ENV_TOPIC_ARN, ""),
        key_arn=environ.get(contract.ENV_KEY_ARN, ""),
        retention_days=int(environ.get(contract.ENV_RETENTION_DAYS) or 60),
        keep_weekly=int(environ.get(contract.ENV_KEEP_WEEKLY) or 0),
        keep_monthly=int(environ.get(contract.ENV_KEEP_MONTHLY) or 0),
        keep_yearly=int(environ.get(contract.ENV_KEEP_YEARLY) or 0),
        priority_users=tuple(u for u in environ.get(contract.ENV_PRIORITY_USERS, "").split(",") if u),
        stack_name=environ.get(contract.ENV_STACK_NAME, ""),
        drill_users=int(environ.get(contract.ENV_DRILL_USERS) or 10),
        retry_base_seconds=int(environ.get(contract.ENV_RETRY_BASE_SECONDS) or contract.RETRY_BASE_SECONDS),
        retry_max_seconds=int(environ.get(contract.ENV_RETRY_MAX_SECONDS) or contract.RETRY_MAX_SECONDS),
        restore_queue_url=environ.get(contract.ENV_RESTORE_QUEUE_URL, ""),
        restore_dead_letter_queue_arn=environ.get(contract.ENV_RESTORE_DEAD_LETTER_QUEUE_ARN, ""),
        restore_sources=restore_sources_from(environ.get(contract.ENV_RESTORE_SOURCES, "")),
    )


def restore_sources_from(value: str) -> tuple[tuple[str, str], ...]:
    """The restore function's sources: the environment's JSON object of name -> bucket."""
    if not value:
        return ()
    try:
        sources = json.loads(value)
    except ValueError:
        raise MissingSetting(contract.ENV_RESTORE_SOURCES, "well-formed environment variable") from None
    return tuple(sorted((str(name), str(bucket)) for name, bucket in sources.items() if bucket))


def settings_from_outputs(outputs: Mapping[str, str], *, source_bucket: str = "", retention_days: int = 60,
                          priority_users: tuple[str, ...] = (), stack_name: str = "",
                          retention: RetentionPolicy | None = None, drill_users: int = 10,
                          retry_base_seconds: int = contract.RETRY_BASE_SECONDS,
                          retry_max_seconds: int = contract.RETRY_MAX_SECONDS, burst_changes: int = 1000) -> Settings:
    """Settings on an operator's machine, from the primary and replica stacks' merged outputs."""
    def need(name: str) -> str:
        if not outputs.get(name):
            raise MissingSetting(name, "stack output")
        return outputs[name]

    return Settings(
        source_bucket=source_bucket or need(contract.OUTPUT_SOURCE_BUCKET),
        backup_bucket=need(contract.OUTPUT_BACKUP_BUCKET),
        runs_table=need(contract.OUTPUT_RUNS_TABLE),
        content_table=need(contract.OUTPUT_CONTENT_TABLE),
        job_queue_url=outputs.get(contract.OUTPUT_JOB_QUEUE_URL, ""),
        dead_letter_queue_url=outputs.get(contract.OUTPUT_DEAD_LETTER_QUEUE_URL, ""),
        capture_queue_url=outputs.get(contract.OUTPUT_CAPTURE_QUEUE_URL, ""),
        capture_dead_letter_queue_url=outputs.get(contract.OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL, ""),
        burst_changes=burst_changes,
        topic_arn=outputs.get(contract.OUTPUT_TOPIC_ARN, ""),
        key_arn=outputs.get(contract.OUTPUT_KEY_ARN, ""),
        retention_days=retention.retention_days if retention else retention_days,
        keep_weekly=retention.keep_weekly if retention else 0,
        keep_monthly=retention.keep_monthly if retention else 0,
        keep_yearly=retention.keep_yearly if retention else 0,
        priority_users=tuple(priority_users),
        stack_name=stack_name,
        drill_users=drill_users,
        retry_base_seconds=retry_base_seconds,
        retry_max_seconds=retry_max_seconds,
        restore_queue_url=outputs.get(contract.OUTPUT_RESTORE_QUEUE_URL, ""),
        restore_sources=tuple((name, bucket) for name, bucket in (
            ("backup", outputs.get(contract.OUTPUT_BACKUP_BUCKET, "")),
            ("replica", outputs.get(contract.OUTPUT_REPLICA_BUCKET, ""))) if bucket),
    )


class RequestCounter:
    """Counts HTTP requests per service and operation (retries included), through botocore events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def attach(self, client) -> None:
        service = client.meta.service_model.service_name
        # request-created fires once per HTTP attempt, so SDK retries are counted too.
        client.meta.events.register(f"request-created.{client.meta.service_model.service_id.hyphenize()}",
                                    lambda operation_name, **_: self._count(service, operation_name))

    def _count(self, service: str, operation: str) -> None:
        with self._lock:
            self.counts[(service, operation)] += 1

    def total(self, service: str | None = None) -> int:
        with self._lock:
            return sum(n for (s, _), n in self.counts.items() if service is None or s == service)

    def by_operation(self, service: str) -> dict[str, int]:
        with self._lock:
            return {op: n for (s, op), n in sorted(self.counts.items()) if s == service}

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


@dataclass
class Clients:
    """The engine's clients."""

    s3: object
    dynamodb: object
    sqs: object = None
    sns: object = None

    @classmethod
    def default(cls, region: str | None = None) -> "Clients":
        """Clients for the Lambda runtime: its region and role."""
        make = lambda service: boto3.client(service, region_name=region, config=CLIENT_CONFIG)  # noqa: E731
        return cls(s3=make("s3"), dynamodb=make("dynamodb"), sqs=make("sqs"), sns=make("sns"))

    def count_requests(self, counter: RequestCounter) -> RequestCounter:
        for client in {id(c): c for c in (self.s3, self.dynamodb, self.sqs, self.sns) if c}.values():
            counter.attach(client)
        return counter
