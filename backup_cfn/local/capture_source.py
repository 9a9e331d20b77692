"""What stands in, on the `local` environment, for Lambda's event source mapping on the capture queue
(the emulator cannot run Lambda): the capture function's real handler, called in-process with the
event Lambda would give it, fed from the emulator's capture queue with the timing AWS documents for
SQS event sources (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html,
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):

- up to `concurrency` invocations at once (the mapping's MaximumConcurrency), each poller gathering
  messages until it holds BatchSize of them or MaximumBatchingWindowInSeconds have passed since the
  first (with no window, what one round of receives returns);
- each invocation has the function's timeout and is killed there as Lambda kills it (runner.invoke:
  its clients are fenced, its messages left to their visibility timeout);
- ReportBatchItemFailures: the messages the function does not list as failed are deleted, the
  failed ones come back when their visibility ends (the handler sets it to the retry delay).

`backup-cfn local start` (and `make emulator`) runs it as a background process that waits for the
local stack, then follows its capture queue until stopped; tests, the demo and the bench start it
in-process (CaptureSource), or drain the queue once (drain).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from backup_cfn import contract
from backup_cfn.engine.settings import Clients, Settings
from backup_cfn.local.runner import invoke, messages_in, quiet_handlers, sqs_event, take_over_event_source

RECEIVE_WAIT_SECONDS = 1      # a short long-poll: Lambda's pollers long-poll for 20 s
IDLE_SECONDS = 0.05


@dataclass
class CaptureStats:
    invocations: int = 0
    killed: int = 0
    messages: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0          # time the invocations took
    empty_receives: int = 0       # long polls that found nothing (Lambda's pollers make them too)


class CaptureSource:
    """Lambda's pollers on the capture queue (see the module's docstring)."""

    def __init__(self, clients: Clients, settings: Settings, *, concurrency: int = 2,
                 batch_size: int = contract.CAPTURE_BATCH_SIZE,
                 batching_window: float = contract.CAPTURE_BATCHING_WINDOW_SECONDS,
                 timeout_seconds: float = contract.CAPTURE_TIMEOUT_SECONDS, region: str = "us-east-1"):
        if not settings.capture_queue_url:
            raise ValueError("no capture queue: the stack predates continuous protection")
        self.clients, self.settings, self.concurrency = clients, settings, concurrency
        self.batch_size, self.batching_window, self.timeout_seconds = batch_size, batching_window, timeout_seconds
        self.region = region
        self.stats = CaptureStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._arn = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "CaptureSource":
        quiet_handlers()
        self._arn = self.clients.sqs.get_queue_attributes(
            QueueUrl=self.settings.capture_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._threads = [threading.Thread(target=self._poll, name=f"capture-poller-{i}", daemon=True)
                         for i in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_seconds + 5)

    def __enter__(self) -> "CaptureSource":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    def wait_until_idle(self, give_up_after: float = 120.0) -> bool:
        """Until nothing is visible, in flight or delayed on the capture queue and no invocation
        runs; False when the time is up first."""
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            with self._lock:
                running = self._running
            if not running and not messages_in(self.clients.sqs, self.settings.capture_queue_url):
                with self._lock:
                    if not self._running:
                        return True
            time.sleep(0.05)
        return False

    # --- one poller ----------------------------------------------------------------------------

    def _poll(self) -> None:
        while not self._stop.is_set():
            batch = self._gather()
            if not batch:
                continue
            with self._lock:
                self._running += 1
            try:
                self._deliver(batch)
            finally:
                with self._lock:
                    self._running -= 1

    def _gather(self) -> list[dict]:
        batch: list[dict] = []
        first_at = None
        while len(batch) < self.batch_size and not self._stop.is_set():
            window_left = None if first_at is None else self.batching_window - (time.monotonic() - first_at)
            if window_left is not None and window_left <= 0:
                break
            wait = RECEIVE_WAIT_SECONDS if window_left is None else max(0, min(RECEIVE_WAIT_SECONDS, int(window_left)))
            messages = self.clients.sqs.receive_message(
                QueueUrl=self.settings.capture_queue_url, MaxNumberOfMessages=min(10, self.batch_size - len(batch)),
                WaitTimeSeconds=wait, MessageSystemAttributeNames=["All"]).get("Messages", [])
            if messages:
                batch += messages
                first_at = first_at or time.monotonic()
            elif first_at is None:
                with self._lock:
                    self.stats.empty_receives += 1
                time.sleep(IDLE_SECONDS)
                return []
            else:
                with self._lock:
                    self.stats.empty_receives += 1
                if self.batching_window <= 0:
                    break
                time.sleep(IDLE_SECONDS)
        return batch

    def _deliver(self, batch: list[dict]) -> None:
        from handlers import capture

        outcome = invoke(capture.handler, sqs_event(batch, self._arn, self.region), self.clients, self.settings,
                         function="capture", timeout_seconds=self.timeout_seconds)
        failed = {f["itemIdentifier"] for f in (outcome.result or {}).get("batchItemFailures", [])}
        with self._lock:
            self.stats.invocations += 1
            self.stats.messages += len(batch)
            self.stats.seconds += outcome.seconds
            self.stats.killed += 0 if outcome.finished else 1
            self.stats.failed += len(failed)
            if outcome.error is not None:
                self.stats.errors.append(f"{type(outcome.error).__name__}: {outcome.error}")
        if not outcome.finished or outcome.error is not None:
            return   # killed, or the invocation failed: the batch comes back when its visibility ends
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                   if m["MessageId"] not in failed]
        for start in range(0, len(entries), 10):
            self.clients.sqs.delete_message_batch(QueueUrl=self.settings.capture_queue_url,
                                                  Entries=entries[start:start + 10])


def take_over(target) -> None:
    """Disable moto's own event source mapping of a deployed environment's capture function
    (ops.target.DeployedEnvironment): moto's would take each message as it is sent and try to run
    the function in Docker, losing it (runner.take_over_event_source)."""
    from backup_cfn import aws

    function = target.outputs.get(contract.OUTPUT_CAPTURE_FUNCTION)
    if function:
        take_over_event_source(aws.client(target.env, "lambda"), function)


def for_deployed(target, **options) -> CaptureSource:
    """The stand-in for a deployed environment's capture function, moto's own mapping disabled."""
    take_over(target)
    options.setdefault("concurrency", target.env.capture_concurrency)
    options.setdefault("region", target.env.region)
    return CaptureSource(target.clients, target.settings, **options)


def drain(clients: Clients, settings: Settings, *, give_up_after: float = 120.0, **options) -> CaptureStats:
    """Capture everything on the queue now, as the mapping would, then stop (tests and the bench)."""
    options.setdefault("batching_window", 0)
    with CaptureSource(clients, settings, **options) as source:
        if not source.wait_until_idle(give_up_after):
            raise TimeoutError(f"the capture queue was not empty after {give_up_after:.0f} s")
    return source.stats


# --- the background process `backup-cfn local start` runs ----------------------------------------

def follow(env_name: str, endpoint: str, environments: Path | None, poll_seconds: float = 2.0) -> None:
    """Wait for the environment's stack, then capture from its queue until SIGTERM; start again when
    the stack is deployed anew (its queue changes)."""
    import dataclasses

    from backup_cfn.config import DEFAULT_ENVIRONMENTS_FILE, load_environment
    from backup_cfn.deploy.outputs import stack_outputs
    from backup_cfn.ops.target import connect

    env = dataclasses.replace(load_environment(env_name, environments or DEFAULT_ENVIRONMENTS_FILE),
                              endpoint_url=endpoint)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    source, queue = None, None
    while not stopping.is_set():
        try:
            outputs = stack_outputs(env)
        except Exception:  # noqa: BLE001 - not deployed yet, or the emulator restarting: look again
            outputs = {}
        url = outputs.get(contract.OUTPUT_CAPTURE_QUEUE_URL)
        if url != queue:
            if source is not None:
                source.stop()
                source = None
            if url:
                source = for_deployed(connect(env, outputs)).start()
                print(f"capturing from {url}", flush=True)
            queue = url
        stopping.wait(poll_seconds)
    if source is not None:
        source.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.local.capture_source")
    parser.add_argument("--env", default="local")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--environments", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    follow(args.env, args.endpoint, args.environments)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
