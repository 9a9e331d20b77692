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

from backup_cfn import aws, contract
from backup_cfn.engine import naming, runs
from backup_cfn.engine.errors import EngineError
from backup_cfn.engine.initiator import scheduled_event
from backup_cfn.engine.settings import Clients, Settings

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
    from handlers import runtime

    runtime.configure(clients, settings)
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=settings.job_queue_url,
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    poller = _Poller(clients, settings, run_id=run_id, queue_arn=queue_arn, region=region, on_batch=on_batch)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(poller.poll) for _ in range(threads)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            poller.stop.set()  # Ctrl-C or a failed poller: let the other pollers finish their batch and stop
            raise
    if poller.errors:
        raise WorkerInvocationsFailed(f"{len(poller.errors)} worker invocation(s) failed, e.g. {poller.errors[0]}")
    return poller.invocations


class WorkerInvocationsFailed(EngineError):
    """A worker invocation raised instead of reporting its failed messages (Lambda would retry the
    whole batch; here the run is stopped so the error is seen)."""


class _Poller:
    """The event source mapping's part: receive a batch, invoke the worker with it, delete what
    succeeded and make visible again what failed. One instance is shared by every polling thread."""

    def __init__(self, clients: Clients, settings: Settings, *, run_id: str | None, queue_arn: str, region: str,
                 on_batch: Callable[[], None] | None):
        self.clients, self.settings, self.run_id = clients, settings, run_id
        self.queue_arn, self.region, self.on_batch = queue_arn, region, on_batch
        self.stop = threading.Event()
        self.invocations = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def poll(self) -> None:
        idle = 0
        while not self.stop.is_set():
            messages = self.clients.sqs.receive_message(
                QueueUrl=self.settings.job_queue_url, MaxNumberOfMessages=contract.WORKER_BATCH_SIZE,
                WaitTimeSeconds=0, MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                idle += 1
                if idle >= IDLE_POLLS_BEFORE_STOP and self._finished():
                    self.stop.set()
                    return
                time.sleep(0.05)
                continue
            idle = 0
            self._deliver(messages)
            if self.on_batch:
                self.on_batch()

    def _deliver(self, messages: list[dict]) -> None:
        from handlers import worker

        try:
            response = worker.handler(sqs_event(messages, self.queue_arn, self.region),
                                      LambdaContext(function_name="worker"))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:  # noqa: BLE001 - an invocation error: Lambda retries the whole batch
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            failed = {m["MessageId"] for m in messages}
        sqs, queue = self.clients.sqs, self.settings.job_queue_url
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        with self._lock:
            self.invocations += 1

    def _finished(self) -> bool:
        if self.run_id is not None:
            record = runs.get_run(self.clients.dynamodb, self.settings, self.run_id)
            if record and record.get("status") in runs.FINAL_RUN_STATUSES:
                return True
        attributes = self.clients.sqs.get_queue_attributes(
            QueueUrl=self.settings.job_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0


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


def run_in_process(target, moment: datetime, users: list[str] | None, counter, refresh: Callable[[], object]) -> None:
    """A backup run on the emulator (backup_cfn.aws.backup_runner): the initiator's handler, then
    the worker's handler on `max_concurrent_backups` threads until the run is closed."""
    quiet_handlers()
    worker_function = target.outputs.get(contract.OUTPUT_WORKER)
    if worker_function:
        take_over_event_source(aws.client(target.env, "lambda"), worker_function)
    target.clients.count_requests(counter)
    invoke_initiator(target.clients, target.settings, moment, users)
    last = [0.0]

    def on_batch():
        if time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            refresh()

    drain_queue(target.clients, target.settings, run_id=naming.run_id_for(moment),
                threads=target.env.max_concurrent_backups, on_batch=on_batch, region=target.env.region)
