"""Run a backup on the `local` environment: the real handlers, called in-process with the event
shapes Lambda would give them, fed from the emulator's job queue (and dead-letter queue) as the SQS
event source mappings would feed them, with the timing of AWS that the engine relies on:

- each invocation gets a deadline (the function's timeout, or a scaled-down one) and is killed
  there the way Lambda kills it: the runner stops waiting for it, nothing it does afterwards
  reaches AWS (its clients are fenced: the next call raises InvocationKilled, which `except
  Exception` does not catch), and its messages are left to their visibility timeout;
- visibility timeouts are SQS's own (moto honours them in real time): a failed message comes back
  when the worker's retry schedule says, a killed one when the visibility it set at its start ends;
- a message is moved to the dead-letter queue by SQS on the receive after its last delivery, so
  the pollers go on until both queues are empty, as Lambda's pollers never stop.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from backup_cfn import aws, contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import EngineError
from backup_cfn.engine.initiator import scheduled_event
from backup_cfn.engine.settings import Clients, Settings
from backup_cfn.errors import RunStuck

IDLE_SECONDS = 0.1             # between two empty receives of one poller (Lambda long-polls instead)
DEFAULT_GIVE_UP_SECONDS = 3600


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers (and Powertools) read, with the deadline."""
    function_name: str = "local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = ""
    timeout_seconds: float = contract.WORKER_TIMEOUT_SECONDS

    def __post_init__(self):
        self.aws_request_id = self.aws_request_id or uuid.uuid4().hex
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
    return initiator.handler(scheduled_event(moment, users=users), LambdaContext(
        function_name="initiator", timeout_seconds=contract.INITIATOR_TIMEOUT_SECONDS))


# --- killing an invocation ------------------------------------------------------------------------

class InvocationKilled(BaseException):
    """Raised in a killed invocation at its next AWS call: Lambda ended it at its deadline. A
    BaseException, so no `except Exception` in the engine treats it as a failure to record."""


class _FencedClient:
    """A client that stops working the moment its invocation is killed."""

    def __init__(self, client, killed: threading.Event):
        self._client, self._killed = client, killed

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name == "get_paginator":
            return lambda operation: _FencedPaginator(attribute(operation), self._killed)
        if not callable(attribute) or name in ("can_paginate", "exceptions"):
            return attribute

        def call(*args, **kwargs):
            if self._killed.is_set():
                raise InvocationKilled(name)
            return attribute(*args, **kwargs)
        return call


class _FencedPaginator:
    def __init__(self, paginator, killed: threading.Event):
        self._paginator, self._killed = paginator, killed

    def paginate(self, **kwargs):
        pages = iter(self._paginator.paginate(**kwargs))
        while True:
            if self._killed.is_set():
                raise InvocationKilled("paginate")
            try:
                yield next(pages)
            except StopIteration:
                return


def fenced(clients: Clients, killed: threading.Event) -> Clients:
    return Clients(**{name: _FencedClient(c, killed) if c is not None else None
                      for name, c in (("s3", clients.s3), ("dynamodb", clients.dynamodb), ("sqs", clients.sqs),
                                      ("sns", clients.sns))})


@dataclass
class Invocation:
    finished: bool            # False: killed at its deadline
    result: object = None
    error: BaseException | None = None
    seconds: float = 0.0


def invoke(handler: Callable, event: dict, clients: Clients, settings: Settings, *, function: str,
           timeout_seconds: float) -> Invocation:
    """One invocation of `handler` with its own (fenced) clients, killed at `timeout_seconds`."""
    from handlers import runtime

    killed = threading.Event()
    context = LambdaContext(function_name=function, timeout_seconds=timeout_seconds)
    box: dict = {}

    def run():
        runtime.configure_invocation(fenced(clients, killed), settings)
        try:
            box["result"] = handler(event, context)
        except InvocationKilled:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported as the invocation's error, as Lambda does
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"{function}-{context.aws_request_id[:8]}", daemon=True)
    thread.start()
    thread.join(timeout_seconds)
    if thread.is_alive():
        killed.set()
        return Invocation(False, seconds=time.monotonic() - started)
    return Invocation(True, box.get("result"), box.get("error"), time.monotonic() - started)


# --- the event source mappings --------------------------------------------------------------------

class WorkerInvocationsFailed(EngineError):
    """A worker invocation raised instead of reporting its failed messages (Lambda would retry the
    whole batch; here the run is stopped so the error is seen)."""


class RunnerGaveUp(EngineError):
    """Messages were still in the queues when the runner's time was up."""


@dataclass
class DrainReport:
    invocations: int = 0
    killed: int = 0
    errors: list[str] = field(default_factory=list)
    dead_letter_invocations: int = 0
    dead_lettered: list[str] = field(default_factory=list)   # bodies the dead-letter consumer was given
    worker_seconds: float = 0.0     # time the worker's invocations took, all pollers together
    idle_seconds: float = 0.0       # time the worker's pollers found no message and waited

    def __int__(self) -> int:
        return self.invocations


@dataclass(frozen=True)
class Mapping:
    """One SQS event source mapping the runner stands in for: its queue, the function's handler and
    timeout, its batch size, how many pollers (its concurrency) and the function's clients (on AWS,
    its role). `main`: invocations counted as the worker's (the report's figures)."""
    queue_url: str
    handler: Callable
    function: str
    batch_size: int
    timeout_seconds: float
    pollers: int
    clients: Clients
    main: bool = True


def drain_queue(clients: Clients, settings: Settings, *, run_id: str | None = None, threads: int,
                on_batch: Callable[[], None] | None = None, region: str = "us-east-1",
                timeout_seconds: float = contract.WORKER_TIMEOUT_SECONDS, dead_letters: bool = True,
                give_up_after: float = DEFAULT_GIVE_UP_SECONDS,
                dead_letter_clients: Clients | None = None) -> DrainReport:
    """Deliver job messages to the worker handler on `threads` pollers (and dead-lettered ones to
    the dead-letter consumer) until both queues are empty and no invocation is running, as
    Lambda's event source mappings would. Each mapping polls with its function's clients (on AWS,
    with its function's role): `clients` for the worker, `dead_letter_clients` (default the same)
    for the consumer. `run_id` is accepted for the callers' clarity: the queues, not the run, say
    when there is nothing left to do."""
    from handlers import dead_letter, worker

    del run_id
    mappings = [Mapping(settings.job_queue_url, worker.handler, "worker", contract.WORKER_BATCH_SIZE,
                        timeout_seconds, threads, clients)]
    if dead_letters and settings.dead_letter_queue_url:
        scale = timeout_seconds / contract.WORKER_TIMEOUT_SECONDS
        mappings.append(Mapping(settings.dead_letter_queue_url, dead_letter.handler, "dead-letter",
                                contract.DEAD_LETTER_BATCH_SIZE, max(1.0, contract.DEAD_LETTER_TIMEOUT_SECONDS * scale),
                                1, dead_letter_clients or clients, main=False))
    return drain(mappings, settings, on_batch=on_batch, region=region, give_up_after=give_up_after)


def drain_restore_queue(clients: Clients, settings: Settings, dead_letter_queue_url: str, *, threads: int,
                        on_batch: Callable[[], None] | None = None, region: str = "us-east-1",
                        timeout_seconds: float = contract.RESTORE_TIMEOUT_SECONDS,
                        give_up_after: float = DEFAULT_GIVE_UP_SECONDS) -> DrainReport:
    """The restore function's two mappings: its queue on `threads` pollers, its dead-letter queue on one."""
    from handlers import restorer

    mappings = [Mapping(settings.restore_queue_url, restorer.handler, "restorer", contract.RESTORE_BATCH_SIZE,
                        timeout_seconds, threads, clients)]
    if dead_letter_queue_url:
        mappings.append(Mapping(dead_letter_queue_url, restorer.handler, "restorer-dead-letters",
                                contract.DEAD_LETTER_BATCH_SIZE, timeout_seconds, 1, clients, main=False))
    return drain(mappings, settings, on_batch=on_batch, region=region, give_up_after=give_up_after)


def drain(mappings: list[Mapping], settings: Settings, *, on_batch: Callable[[], None] | None = None,
          region: str = "us-east-1", give_up_after: float = DEFAULT_GIVE_UP_SECONDS) -> DrainReport:
    """Poll every mapping's queue until all are empty and no invocation runs."""
    report = DrainReport()
    state = _State(mappings[0].clients, settings, report, [m.queue_url for m in mappings], give_up_after,
                   {m.queue_url: m.clients for m in mappings})
    pollers = [_Poller(state, m, region, on_batch if m.main else None) for m in mappings for _ in range(m.pollers)]
    with ThreadPoolExecutor(max_workers=len(pollers)) as pool:
        futures = [pool.submit(p.poll) for p in pollers]
        try:
            for future in futures:
                future.result()
        except BaseException:
            state.stop.set()  # Ctrl-C or a failed poller: let the other pollers finish their batch and stop
            raise
    if report.errors:
        raise WorkerInvocationsFailed(f"{len(report.errors)} worker invocation(s) failed, e.g. {report.errors[0]}")
    return report


class _State:
    """What the pollers share: the report, the stop signal, and whether anything is left to do."""

    def __init__(self, clients: Clients, settings: Settings, report: DrainReport, queues: list[str],
                 give_up_after: float, clients_by_queue: dict[str, Clients]):
        self.clients, self.settings, self.report, self.queues = clients, settings, report, queues
        self.clients_by_queue = clients_by_queue
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.give_up_at = time.monotonic() + give_up_after
        self._checked_at = 0.0
        self._arns: dict[str, str] = {}

    def sqs_for(self, url: str):
        """The SQS client of the mapping that polls `url` (the worker's, or the consumer's)."""
        return self.clients_by_queue.get(url, self.clients).sqs

    def queue_arn(self, url: str) -> str:
        if url not in self._arns:
            self._arns[url] = self.sqs_for(url).get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return self._arns[url]

    def finished(self) -> bool:
        """Nothing visible, in flight or delayed in either queue, and no invocation running (asked
        of the queues by one idle poller at a time)."""
        with self.lock:
            if self.running or time.monotonic() - self._checked_at < IDLE_SECONDS:
                return False
            self._checked_at = time.monotonic()
        for url in self.queues:
            if messages_in(self.sqs_for(url), url):
                if time.monotonic() > self.give_up_at:
                    raise RunnerGaveUp(f"messages still in {url} after the runner's time was up")
                return False
        return True


def messages_in(sqs, url: str) -> int:
    """Messages visible, in flight or delayed on a queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


class _Poller:
    """One poller of an event source mapping: receive a batch, invoke the function with it within
    its timeout, delete what succeeded; what failed or was killed is left to its visibility."""

    def __init__(self, state: _State, mapping: Mapping, region: str, on_batch: Callable[[], None] | None):
        self.state, self.mapping, self.region, self.on_batch = state, mapping, region, on_batch
        self.clients, self.queue_url = mapping.clients, mapping.queue_url

    def poll(self) -> None:
        state = self.state
        while not state.stop.is_set():
            # A short poll: the emulator answers it exactly (AWS samples a subset of its servers,
            # which is why Lambda long-polls); whether work is left is asked of the queue's counts.
            messages = self.clients.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.mapping.batch_size, WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if state.finished():
                    state.stop.set()
                    return
                time.sleep(IDLE_SECONDS)
                if self.mapping.main:
                    with state.lock:
                        state.report.idle_seconds += IDLE_SECONDS
                continue
            with state.lock:
                state.running += 1
            try:
                self._deliver(messages)
            finally:
                with state.lock:
                    state.running -= 1
            if self.on_batch:
                self.on_batch()

    def _deliver(self, messages: list[dict]) -> None:
        state, mapping = self.state, self.mapping
        event = sqs_event(messages, state.queue_arn(self.queue_url), self.region)
        outcome = invoke(mapping.handler, event, self.clients, state.settings, function=mapping.function,
                         timeout_seconds=mapping.timeout_seconds)
        with state.lock:
            if mapping.main:
                state.report.invocations += 1
                state.report.worker_seconds += outcome.seconds
                state.report.killed += 0 if outcome.finished else 1
            else:
                state.report.dead_letter_invocations += 1
                state.report.dead_lettered += [m["Body"] for m in messages]
            if outcome.error is not None:
                state.report.errors.append(f"{type(outcome.error).__name__}: {outcome.error}")
        if not outcome.finished or outcome.error is not None:
            return   # killed, or an invocation error: the batch comes back when its visibility ends
        failed = {f["itemIdentifier"] for f in (outcome.result or {}).get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                self.clients.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def take_over_event_source(lambda_client, function_name: str) -> int:
    """Disable the emulator's event source mappings of a function this runner stands in for. moto's
    own would receive each message as it is sent and try to run the function in Docker, hiding or
    losing the message. Returns the number of mappings disabled."""
    disabled = 0
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(FunctionName=function_name):
        for mapping in page.get("EventSourceMappings", []):
            if mapping.get("State") not in ("Disabled", "Disabling"):
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
                disabled += 1
    return disabled


def run_in_process(target, moment: datetime, users: list[str] | None, counter, refresh: Callable[[], object],
                   *, timeout_seconds: float | None = None) -> None:
    """A backup run on the emulator (the runner cli.py wires for the local environment): the initiator's handler, then
    the worker's handler on `max_concurrent_backups` pollers until the queues are empty. The run's
    follow-up (`timeout_seconds`) bounds how long the runner waits for the queues."""
    quiet_handlers()
    lambda_client = aws.client(target.env, "lambda")
    for output in (contract.OUTPUT_WORKER, contract.OUTPUT_DEAD_LETTER_FUNCTION):
        if target.outputs.get(output):
            take_over_event_source(lambda_client, target.outputs[output])
    target.clients.count_requests(counter)
    invoke_initiator(target.clients, target.settings, moment, users)
    on_batch = _at_most_twice_a_second(refresh)
    try:
        drain_queue(target.clients, target.settings, run_id=naming.run_id_for(moment),
                    threads=target.env.max_concurrent_backups, on_batch=on_batch, region=target.env.region,
                    give_up_after=timeout_seconds or DEFAULT_GIVE_UP_SECONDS)
    except RunnerGaveUp as exc:
        raise RunStuck(f"run {naming.run_id_for(moment)}: {exc}") from None


def _at_most_twice_a_second(refresh: Callable[[], object]) -> Callable[[], None]:
    """The follow-up's refresh after a batch, at most every half second (each reads the record)."""
    last = [0.0]

    def on_batch() -> None:
        if time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            refresh()
    return on_batch


def run_restore_in_process(target, restore_id: str, refresh: Callable[[], object], *,
                           timeout_seconds: float | None = None) -> None:
    """A restore run by the stack, on the emulator (backup_cfn.aws.restore_runner): the restore
    function's handler on `max_concurrent_restores` pollers until its queues are empty."""
    quiet_handlers()
    if target.outputs.get(contract.OUTPUT_RESTORE_FUNCTION):
        take_over_event_source(aws.client(target.env, "lambda"), target.outputs[contract.OUTPUT_RESTORE_FUNCTION])
    dead_letters = target.outputs.get(contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL, "")
    settings = target.settings
    if dead_letters:
        arn = target.clients.sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])
        settings = settings.with_(restore_dead_letter_queue_arn=arn["Attributes"]["QueueArn"])
    on_batch = _at_most_twice_a_second(refresh)
    try:
        drain_restore_queue(target.clients, settings, dead_letters, threads=target.env.max_concurrent_restores,
                            on_batch=on_batch, region=target.env.region,
                            give_up_after=timeout_seconds or DEFAULT_GIVE_UP_SECONDS)
    except RunnerGaveUp as exc:
        raise RunStuck(f"restore {restore_id}: {exc}") from None
