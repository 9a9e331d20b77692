"""Run a backup on the `local` environment: the real handlers, called in-process with the event
shapes Lambda would give them, the worker side on as many threads as the environment's
concurrency, draining the emulator's job queue as the SQS event source mapping would."""
from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from backup_cfn import layout
from backup_cfn.engine import runs
from backup_cfn.engine.initiator import scheduled_event
from backup_cfn.engine.settings import Clients, Settings

WORKER_BATCH_SIZE = 5   # the event source mapping's BatchSize (backup_cfn.functions.WORKER_BATCH_SIZE)
IDLE_POLLS_BEFORE_STOP = 3


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers (and Powertools) read."""
    function_name: str = "local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = ""

    def __post_init__(self):
        self.aws_request_id = self.aws_request_id or uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class AtomicWrites:
    """A DynamoDB client whose writes to the same item are made one at a time. DynamoDB applies
    each conditional write and each ADD atomically; moto 5.2.5 does not (it reads, checks and
    writes without a lock), so concurrent local workers could both win a claim or lose a counter
    increment. All local traffic comes from this process, so serialising writes per item here
    restores AWS's behaviour; writes to different items still run in parallel, reads pass through."""

    WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})
    KEY_ATTRIBUTES = (layout.RUNS_PARTITION_KEY, layout.RUNS_SORT_KEY, layout.CONTENT_PARTITION_KEY)
    STRIPES = 64
    _locks = [threading.Lock() for _ in range(STRIPES)]

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in self.WRITES:
            return attribute

        def serialised(*args, **kwargs):
            stripes = sorted({self._stripe(op) for op in self._operations(name, kwargs)})
            for stripe in stripes:
                self._locks[stripe].acquire()
            try:
                return attribute(*args, **kwargs)
            finally:
                for stripe in reversed(stripes):
                    self._locks[stripe].release()
        return serialised

    @staticmethod
    def _operations(name: str, kwargs: dict) -> list[dict]:
        if name == "transact_write_items":
            return [next(iter(entry.values())) for entry in kwargs.get("TransactItems", [])]
        return [kwargs]

    def _stripe(self, operation: dict) -> int:
        raw = operation.get("Key") or operation.get("Item") or {}
        identity = (operation.get("TableName"),
                    tuple(str(raw.get(name)) for name in self.KEY_ATTRIBUTES if name in raw))
        return hash(identity) % self.STRIPES


def quiet_handlers() -> None:
    """Powertools logs and metrics go to stdout in Lambda; on a terminal they would bury the
    progress bar. Called before the handlers are imported."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")


def sqs_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: v for k, v in m.get("Attributes", {}).items()},
        "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": region,
    } for m in messages]}


def invoke_initiator(clients: Clients, settings: Settings, moment: datetime, users: list[str] | None) -> dict:
    from handlers import initiator, runtime

    runtime.configure(clients, settings)
    return initiator.handler(scheduled_event(moment, users=users), LambdaContext(function_name="initiator"))


def drain_queue(clients: Clients, settings: Settings, *, run_id: str | None, threads: int,
                on_batch: Callable[[], None] | None = None, region: str = "us-east-1") -> int:
    """Deliver job messages to the worker handler until the run is closed (or, without a run,
    the queue is empty). Failed messages are made visible again at once, as a retry would;
    returns the number of handler invocations."""
    from handlers import runtime, worker

    runtime.configure(clients, settings)
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=settings.job_queue_url,
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stop = threading.Event()
    invocations = [0]
    errors: list[str] = []
    lock = threading.Lock()

    def finished() -> bool:
        if run_id is not None:
            record = runs.get_run(clients.dynamodb, settings, run_id)
            if record and record.get("status") in runs.FINAL_RUN_STATUSES:
                return True
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=settings.job_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0

    def poll() -> None:
        idle = 0
        while not stop.is_set():
            messages = clients.sqs.receive_message(
                QueueUrl=settings.job_queue_url, MaxNumberOfMessages=WORKER_BATCH_SIZE, WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                idle += 1
                if idle >= IDLE_POLLS_BEFORE_STOP and finished():
                    stop.set()
                    return
                time.sleep(0.05)
                continue
            idle = 0
            try:
                response = worker.handler(sqs_event(messages, queue_arn, region), LambdaContext(function_name="worker"))
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception as exc:  # noqa: BLE001 - an invocation error: Lambda retries the whole batch
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    clients.sqs.change_message_visibility(QueueUrl=settings.job_queue_url,
                                                          ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
                else:
                    clients.sqs.delete_message(QueueUrl=settings.job_queue_url, ReceiptHandle=message["ReceiptHandle"])
            with lock:
                invocations[0] += 1
            if on_batch:
                on_batch()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(poll) for _ in range(threads)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # Ctrl-C or a failed poller: let the other pollers finish their batch and stop
            raise
    if errors:
        raise RuntimeError(f"{len(errors)} worker invocation(s) failed, e.g. {errors[0]}")
    return invocations[0]


def take_over_event_source(lambda_client, worker_function: str) -> int:
    """Disable the emulator's event source mapping of the worker, which this runner stands in
    for. moto's own would receive each job message as it is sent and try to run the function in
    Docker, hiding or losing the message. Returns the number of mappings disabled."""
    disabled = 0
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(FunctionName=worker_function):
        for mapping in page.get("EventSourceMappings", []):
            if mapping.get("State") not in ("Disabled", "Disabling"):
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
                disabled += 1
    return disabled
