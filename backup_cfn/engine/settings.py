"""What the engine needs to know (names, retention, timings) and the clients it talks through.

Settings are built from the Lambda environment (layout.ENV_*, set by the template) or, on an
operator's machine, from the stacks' outputs (layout.OUTPUT_*). Timings are fields so tests can
shrink them; the clock is a field so tests can move time without sleeping.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Mapping

import boto3
from botocore.config import Config

from backup_cfn import layout

# Same as backup_cfn.aws.CLIENT_CONFIG (not imported: the Lambda zip carries no click/config).
CLIENT_CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)

WORKER_TIMEOUT_SECONDS = layout.WORKER_TIMEOUT_SECONDS
PRUNER_TIMEOUT_SECONDS = 900
JOB_MAX_RECEIVES = layout.JOB_MAX_RECEIVES
ENV_JOB_MAX_RECEIVES = "JOB_MAX_RECEIVES"
ENV_REPLICA_BUCKET = "REPLICA_BUCKET"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Settings:
    source_bucket: str
    backup_bucket: str
    runs_table: str
    content_table: str
    job_queue_url: str = ""
    topic_arn: str = ""
    key_arn: str = ""
    retention_days: int = 60
    priority_users: tuple[str, ...] = ()
    stack_name: str = ""
    replica_bucket: str = ""
    job_max_receives: int = JOB_MAX_RECEIVES
    # A lease or claim older than this belongs to a dead attempt (Lambda ends it at its timeout).
    stale_after_seconds: int = WORKER_TIMEOUT_SECONDS + 60
    stale_deleting_after_seconds: int = PRUNER_TIMEOUT_SECONDS + 60
    # How long a worker waits for another job to finish storing the same content before retrying later.
    claim_wait_seconds: float = 20.0
    gc_grace_hours: int = layout.GC_GRACE_HOURS
    # Objects above this are copied with UploadPartCopy (CopyObject's limit is 5 GiB).
    multipart_threshold: int = 5 * 1024**3
    multipart_part_size: int = 512 * 1024**2
    # Parallel S3/DynamoDB calls inside one job.
    job_threads: int = 8
    clock: Callable[[], datetime] = field(default=utc_now, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def sse(self) -> dict:
        """Encryption arguments for writes to the backup bucket: our key, or the bucket default."""
        if self.key_arn:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_arn}
        return {}

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def settings_from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings inside Lambda, from the variables the template sets on each function."""
    environ = os.environ if environ is None else environ
    missing = [name for name in (layout.ENV_SOURCE_BUCKET, layout.ENV_BACKUP_BUCKET, layout.ENV_RUNS_TABLE,
                                 layout.ENV_CONTENT_TABLE) if not environ.get(name)]
    if missing:
        raise RuntimeError(f"missing environment variable(s): {', '.join(missing)}")
    return Settings(
        source_bucket=environ[layout.ENV_SOURCE_BUCKET],
        backup_bucket=environ[layout.ENV_BACKUP_BUCKET],
        runs_table=environ[layout.ENV_RUNS_TABLE],
        content_table=environ[layout.ENV_CONTENT_TABLE],
        job_queue_url=environ.get(layout.ENV_JOB_QUEUE_URL, ""),
        topic_arn=environ.get(layout.ENV_TOPIC_ARN, ""),
        key_arn=environ.get(layout.ENV_KEY_ARN, ""),
        retention_days=int(environ.get(layout.ENV_RETENTION_DAYS) or 60),
        priority_users=tuple(u for u in environ.get(layout.ENV_PRIORITY_USERS, "").split(",") if u),
        stack_name=environ.get(layout.ENV_STACK_NAME, ""),
        replica_bucket=environ.get(ENV_REPLICA_BUCKET, ""),
        job_max_receives=int(environ.get(ENV_JOB_MAX_RECEIVES) or JOB_MAX_RECEIVES),
    )


def settings_from_outputs(outputs: Mapping[str, str], *, source_bucket: str = "", retention_days: int = 60,
                          priority_users: tuple[str, ...] = (), stack_name: str = "") -> Settings:
    """Settings on an operator's machine, from the primary and replica stacks' merged outputs."""
    def need(name: str) -> str:
        if not outputs.get(name):
            raise KeyError(name)
        return outputs[name]

    return Settings(
        source_bucket=source_bucket or need(layout.OUTPUT_SOURCE_BUCKET),
        backup_bucket=need(layout.OUTPUT_BACKUP_BUCKET),
        runs_table=need(layout.OUTPUT_RUNS_TABLE),
        content_table=need(layout.OUTPUT_CONTENT_TABLE),
        job_queue_url=outputs.get(layout.OUTPUT_JOB_QUEUE_URL, ""),
        topic_arn=outputs.get(layout.OUTPUT_TOPIC_ARN, ""),
        key_arn=outputs.get(layout.OUTPUT_KEY_ARN, ""),
        retention_days=retention_days,
        priority_users=tuple(priority_users),
        stack_name=stack_name,
        replica_bucket=outputs.get(layout.OUTPUT_REPLICA_BUCKET, ""),
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
    """The engine's clients. `replica_s3` reads the replica bucket (restore drills, DR)."""

    s3: object
    dynamodb: object
    sqs: object = None
    sns: object = None
    replica_s3: object = None

    @classmethod
    def default(cls, region: str | None = None) -> "Clients":
        """Clients for the Lambda runtime: its region and role."""
        make = lambda service: boto3.client(service, region_name=region, config=CLIENT_CONFIG)  # noqa: E731
        return cls(s3=make("s3"), dynamodb=make("dynamodb"), sqs=make("sqs"), sns=make("sns"))

    def count_requests(self, counter: RequestCounter) -> RequestCounter:
        for client in {id(c): c for c in (self.s3, self.dynamodb, self.sqs, self.sns, self.replica_s3) if c}.values():
            counter.attach(client)
        return counter
