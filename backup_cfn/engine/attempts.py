"""The attempt rules, in one place: how long an attempt may work, when a failed one is retried,
who may work on a user job now (the lease), how a job too large for one invocation hands on the
rest of its work, and when a failure is final.

An attempt is one delivery of a job message to one worker invocation. Lambda ends an invocation at
the function's timeout without running any `except` or `finally`, so:
- the message's visibility is set, as the attempt starts, to its deadline plus the retry delay:
  killed or failed, it comes back minutes later (not after the queue's 90-minute visibility);
- an attempt stops taking on work when only its reserve is left, saves what it did and hands the
  rest on in a continuation message (a chain of parts, guarded by `next_part`);
- a lease lasts the worker's timeout, after which Lambda has ended that attempt; a later delivery
  finding an expired lease takes the job over;
- on the message's last delivery a failure is recorded at once; a killed last delivery is
  recorded by the dead-letter consumer (engine/deadletters.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming, tally
from backup_cfn.engine.contentstore import from_item, is_conditional_failure
from backup_cfn.engine.errors import LeaseHeld, RetryableJobError
from backup_cfn.engine.settings import Settings

RUNNING, COMPLETED, FAILED, SKIPPED = "RUNNING", "COMPLETED", "FAILED", "SKIPPED"
FINAL_JOB_STATUSES = (COMPLETED, SKIPPED)
# SQS's limit on a message's visibility timeout.
MAX_VISIBILITY_SECONDS = 12 * 3600
# Lambda's SQS pollers long-poll for at most 20 s: a message visible again is received within that.
POLL_SECONDS = 20


# --- deliveries and retries -------------------------------------------------------------------

def is_last_delivery(settings: Settings, receive_count: int) -> bool:
    """Whether this delivery is the message's last before the dead-letter queue: its failure is final."""
    return receive_count >= settings.job_max_receives


def retry_delay_bound(settings: Settings, receive_count: int) -> int:
    """The longest wait after delivery `receive_count` failed: base * 2^(n-1), capped."""
    exponent = min(max(receive_count, 1) - 1, 30)
    return min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** exponent)


def retry_delay(settings: Settings, receive_count: int) -> int:
    """Seconds before the next delivery after delivery `receive_count` failed: exponential, with
    "equal jitter" (between half and all of the bound), so jobs that failed together (throttling)
    do not all come back at the same second. Whole seconds, as SQS takes them; at least one."""
    bound = retry_delay_bound(settings, receive_count)
    return max(1, math.ceil(bound * (0.5 + 0.5 * settings.random())))


def visibility_while_running(settings: Settings, receive_count: int, remaining_seconds: float) -> int:
    """The message's visibility from the moment its attempt starts: past the attempt's deadline by
    the retry delay, so a killed attempt is retried like a failed one. On the last delivery, by the
    base delay only: the next receive moves it to the dead-letter queue, whose consumer records it."""
    extra = settings.retry_base_seconds if is_last_delivery(settings, receive_count) \
        else retry_delay(settings, receive_count)
    return min(MAX_VISIBILITY_SECONDS, math.ceil(remaining_seconds) + extra)


def visibility_after_failure(settings: Settings, receive_count: int) -> int:
    """A failed attempt's message: back after the retry delay; at once after the last delivery,
    whose failure is recorded already, so the next receive moves it to the dead-letter queue."""
    return 0 if is_last_delivery(settings, receive_count) else retry_delay(settings, receive_count)


def worst_case_outcome_seconds(settings: Settings, worker_timeout: int = contract.WORKER_TIMEOUT_SECONDS) -> int:
    """From a job message's first delivery to its recorded outcome, when every delivery is killed at
    the timeout and every wait is at its bound: each delivery runs its timeout and waits for a
    poll, the retry delays between them, then the dead-lettered message waits out its last
    visibility, a poll of the dead-letter queue and the consumer's run."""
    deliveries = settings.job_max_receives
    retries = sum(retry_delay_bound(settings, n) for n in range(1, deliveries))
    return (deliveries * (worker_timeout + POLL_SECONDS) + retries + settings.retry_base_seconds
            + POLL_SECONDS + contract.DEAD_LETTER_TIMEOUT_SECONDS)


# ChangeMessageVisibility's answers for a message that is no longer this attempt's to time: deleted,
# its receipt handle expired, or received again by another consumer.
GONE_MESSAGE_CODES = ("ReceiptHandleIsInvalid", "InvalidParameterValue", "AWS.SimpleQueueService.MessageNotInflight",
                      "MessageNotInflight")


def change_visibility(sqs, settings: Settings, receipt_handle: str, seconds: int, *, queue_url: str = "") -> None:
    """Time the message's next delivery (on the job queue, or `queue_url`); a message no longer ours
    to time is left alone."""
    try:
        sqs.change_message_visibility(QueueUrl=queue_url or settings.job_queue_url, ReceiptHandle=receipt_handle,
                                      VisibilityTimeout=int(seconds))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in GONE_MESSAGE_CODES:
            raise


# --- the invocation's deadline ----------------------------------------------------------------

class Deadline:
    """How long this invocation may still take on work: Lambda's remaining time (the context's
    get_remaining_time_in_millis) less a reserve kept back to save progress and hand on."""

    def __init__(self, remaining_ms: Callable[[], int] | None, settings: Settings):
        self._remaining_ms = remaining_ms
        self.budget = remaining_ms() / 1000 if remaining_ms else math.inf
        self.reserve = min(settings.handoff_reserve_max_seconds, self.budget * settings.handoff_reserve_share) \
            if remaining_ms else 0.0
        self._started = time.monotonic()

    @classmethod
    def unlimited(cls) -> "Deadline":
        return cls(None, Settings("", "", "", ""))

    def remaining_seconds(self) -> float:
        return self._remaining_ms() / 1000 if self._remaining_ms else math.inf

    def seconds_left(self) -> float:
        return self.remaining_seconds() - self.reserve

    def passed(self) -> bool:
        return self.seconds_left() <= 0

    def elapsed(self) -> float:
        return time.monotonic() - self._started


# --- the lease --------------------------------------------------------------------------------

def job_layout(dynamodb, settings: Settings, run_id: str) -> tally.Layout:
    return tally.layout(dynamodb, settings.runs_table, run_id)


def get_user_job(dynamodb, settings: Settings, run_id: str, user: str) -> dict | None:
    key = job_layout(dynamodb, settings, run_id).user_key(user)
    item = dynamodb.get_item(TableName=settings.runs_table, Key=key, ConsistentRead=True).get("Item")
    return tally.job_record(from_item(item)) if item else None


@dataclass(frozen=True)
class Lease:
    attempt_id: str
    previous_status: str | None   # FAILED: a job redriven from the dead-letter queue
    counted_failed: bool = False  # the run counts this job among its failed users
    first_part: int = 0           # the first part of the chain this attempt continues
    chain_started: str | None = None


class ChainMovedOn(Exception):
    """The job's chain is past this message's part: a duplicate delivery. `next_part` and
    `resume_after` are where the chain stands."""

    def __init__(self, next_part: int, resume_after: str | None):
        super().__init__(f"the chain is at part {next_part}")
        self.next_part, self.resume_after = next_part, resume_after


class ChainAhead(RetryableJobError):
    """A continuation for a part the chain has not reached (not one this engine sends: each is sent
    after its part is recorded): retried, and dead-lettered if the chain never gets there."""


def _chain_condition(part: int) -> tuple[str, dict]:
    if part == 0:
        return "attribute_not_exists(next_part)", {}
    return "next_part = :part", {":part": {"N": str(part)}}


def _lease_update(settings: Settings, layout: tally.Layout, run_id: str, user: str, attempt_id: str,
                  now: datetime) -> dict:
    """The lease's write on the job record, without its condition (each caller's own)."""
    return {
        "TableName": settings.runs_table, "Key": layout.user_key(user),
        "UpdateExpression": ("SET #s = :running, #u = :user, attempt_id = :attempt, lease_until = :until, "
                             "started_at = if_not_exists(started_at, :now), expires_at = :expires ADD attempts :one"),
        "ExpressionAttributeNames": {"#s": layout.status_attribute, "#u": "user"},
        "ExpressionAttributeValues": {
            ":running": {"S": RUNNING}, ":user": {"S": user}, ":attempt": {"S": attempt_id},
            ":now": {"S": naming.iso_precise(now)},
            ":until": {"S": naming.iso_precise(now + timedelta(seconds=settings.stale_after_seconds))},
            ":one": {"N": "1"}, ":expires": {"N": str(naming.expires_at(run_id, settings.retention_days))},
        },
    }


def acquire_lease(dynamodb, settings: Settings, run_id: str, user: str, attempt_id: str, *,
                  part: int = 0) -> Lease | None:
    """Hold the user job for one attempt. None when the job already finished or its chain moved past
    this part (a duplicate delivery); LeaseHeld while another live attempt holds it. A lease
    outlives no attempt: it lasts the worker's timeout, after which Lambda has ended that attempt."""
    now = settings.now()
    layout = job_layout(dynamodb, settings, run_id)
    chain, chain_values = _chain_condition(part)
    update = _lease_update(settings, layout, run_id, user, attempt_id, now)
    update["ExpressionAttributeValues"].update({":failed": {"S": FAILED}, **chain_values})
    try:
        old = dynamodb.update_item(
            **update, ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ConditionExpression=(f"(attribute_not_exists(#s) OR #s = :failed OR (#s = :running AND lease_until <= :now)) "
                                 f"AND {chain}"),
        ).get("Attributes")
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        current = tally.job_record(from_item(exc.response["Item"])) if exc.response.get("Item") else {}
        refusal = why_not_free(current, part, now)
        if refusal == "done":
            if current.get("status") not in FINAL_JOB_STATUSES:
                raise ChainMovedOn(int(current["next_part"]), current.get("resume_after")) from None
            return None
        if refusal == "ahead":
            raise ChainAhead(f"user {user} of run {run_id}: part {part} arrived before its chain reached it") from None
        raise LeaseHeld(f"user {user} of run {run_id} is being backed up by another attempt") from None
    record = tally.job_record(from_item(old)) if old else {}
    return Lease(attempt_id=attempt_id, previous_status=record.get("status"),
                 counted_failed=bool(record.get("counted_failed")), first_part=int(record.get("chain_first_part", 0)),
                 chain_started=record.get("chain_started_at"))


def acquire_fresh_lease_with(dynamodb, settings: Settings, run_id: str, user: str, attempt_id: str,
                             item: dict) -> Lease | None:
    """A job's lease and one more write (`item`, a transaction item: its first claim of new
    content) in one transaction, for a job no attempt has held or recorded yet (part 0, no status):
    the two writes such a job makes first, in one request. None, with nothing written, when the job
    record is not fresh, `item` refuses, or the transaction is cancelled for any other reason: the
    caller then takes the lease alone (acquire_lease, which tells a duplicate or a held job apart)
    and makes its other write as it would have. The condition is stricter than acquire_lease's, so
    this lease is one acquire_lease would also have granted, with no earlier state to carry."""
    layout = job_layout(dynamodb, settings, run_id)
    update = _lease_update(settings, layout, run_id, user, attempt_id, settings.now())
    update["ConditionExpression"] = "attribute_not_exists(#s) AND attribute_not_exists(next_part)"
    try:
        dynamodb.transact_write_items(TransactItems=[{"Update": update}, item])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            return None
        raise
    return Lease(attempt_id=attempt_id, previous_status=None)


def why_not_free(record: dict, part: int, now: datetime) -> str:
    """Why an attempt of `part` may not take this job record: "done" (finished, or the chain moved
    past the part: a duplicate), "ahead" (the chain has not reached the part yet), "held" (a live
    attempt holds it), or "" (it is free)."""
    if record.get("status") in FINAL_JOB_STATUSES:
        return "done"
    next_part = record.get("next_part")
    if next_part is not None and part < int(next_part):
        return "done"
    if (next_part is None and part > 0) or (next_part is not None and part > int(next_part)):
        return "ahead"
    if record.get("status") == RUNNING and record.get("lease_until", "") > naming.iso_precise(now):
        return "held"
    return ""


def release_lease(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease, error: str) -> None:
    """After a failed attempt that will be retried: let the next attempt start at once."""
    layout = job_layout(dynamodb, settings, run_id)
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=layout.user_key(user),
            UpdateExpression="SET lease_until = :now, last_error = :error",
            ConditionExpression="#s = :running AND attempt_id = :attempt",
            ExpressionAttributeNames={"#s": layout.status_attribute},
            ExpressionAttributeValues={":now": {"S": naming.iso_precise(settings.now())},
                                       ":error": {"S": error[:1000]}, ":running": {"S": RUNNING},
                                       ":attempt": {"S": lease.attempt_id}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


def note_error(dynamodb, settings: Settings, run_id: str, user: str, error: str) -> None:
    """A failed attempt that held no lease: its error on the job record (for `runs` and the
    dead-letter consumer's reason), unless the job has finished or a live attempt holds it."""
    now = settings.now()
    layout = job_layout(dynamodb, settings, run_id)
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=layout.user_key(user),
            UpdateExpression="SET #u = :user, last_error = :error, expires_at = :expires ADD attempts :one",
            ConditionExpression="attribute_not_exists(#s) OR #s = :failed OR (#s = :running AND lease_until <= :now)",
            ExpressionAttributeNames={"#s": layout.status_attribute, "#u": "user"},
            ExpressionAttributeValues={":user": {"S": user}, ":error": {"S": error[:1000]},
                                       ":expires": {"N": str(naming.expires_at(run_id, settings.retention_days))},
                                       ":failed": {"S": FAILED}, ":running": {"S": RUNNING},
                                       ":now": {"S": naming.iso_precise(now)}, ":one": {"N": "1"}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


def record_hand_on(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease, *, next_part: int,
                   first_part: int, chain_started: str, after: str) -> None:
    """Before the continuation message is sent: the chain moves to `next_part` and the lease is
    released for it, and the run notes the progress (what `runs` reads to tell a stalled run),
    in one transaction. Recorded first and sent second, so the continuation always finds its part
    recorded; an attempt dying in between leaves its own message, which comes back, finds the
    chain moved on (ChainMovedOn with `resume_after`) and sends the continuation again."""
    now = naming.iso_precise(settings.now())
    layout = job_layout(dynamodb, settings, run_id)
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {
                "TableName": settings.runs_table, "Key": layout.user_key(user),
                "UpdateExpression": ("SET next_part = :next, chain_first_part = :first, chain_started_at = :chain, "
                                     "resume_after = :after, lease_until = :now"),
                "ConditionExpression": "#s = :running AND attempt_id = :attempt",
                "ExpressionAttributeNames": {"#s": layout.status_attribute},
                "ExpressionAttributeValues": {":next": {"N": str(next_part)}, ":first": {"N": str(first_part)},
                                              ":chain": {"S": chain_started}, ":after": {"S": after},
                                              ":now": {"S": now}, ":running": {"S": RUNNING},
                                              ":attempt": {"S": lease.attempt_id}},
            }},
            tally.progress_update(settings.runs_table, layout, user, now),
        ])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            raise RetryableJobError(f"user {user} of run {run_id}: lease lost before handing on; retrying") from exc
        raise
