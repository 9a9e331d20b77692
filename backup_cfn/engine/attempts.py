"""The attempt rules, in one place: who may work on a user job now (the lease), how long an attempt
can live, what a failed attempt leaves for the next one, and when a failure is final.

An attempt is one delivery of a job message to one worker invocation. Lambda ends an invocation at
the function's timeout, so a lease lasts that long (plus a margin); a later delivery finding an
expired lease takes the job over. A failed attempt that will be retried releases its lease at once
and records its error; on the message's last delivery (the queue's maxReceiveCount) the job is
recorded FAILED before the message goes to the dead-letter queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.contentstore import from_item, is_conditional_failure
from backup_cfn.engine.errors import LeaseHeld
from backup_cfn.engine.settings import Settings

RUNNING, COMPLETED, FAILED, SKIPPED = "RUNNING", "COMPLETED", "FAILED", "SKIPPED"
FINAL_JOB_STATUSES = (COMPLETED, SKIPPED)


def is_last_delivery(settings: Settings, receive_count: int) -> bool:
    """Whether this delivery is the message's last before the dead-letter queue: its failure is final."""
    return receive_count >= settings.job_max_receives


def get_user_job(dynamodb, settings: Settings, run_id: str, user: str) -> dict | None:
    item = dynamodb.get_item(TableName=settings.runs_table, Key=naming.user_key(run_id, user), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


@dataclass(frozen=True)
class Lease:
    attempt_id: str
    previous_status: str | None   # FAILED: a job redriven from the dead-letter queue


def acquire_lease(dynamodb, settings: Settings, run_id: str, user: str, attempt_id: str) -> Lease | None:
    """Hold the user job for one attempt. None when the job already finished (a duplicate
    delivery); LeaseHeld while another live attempt holds it. A lease outlives no attempt: it
    lasts the worker's timeout, after which Lambda has ended that attempt."""
    now = settings.now()
    names = {"#s": "status", "#u": "user"}
    values = {
        ":running": {"S": RUNNING}, ":failed": {"S": FAILED}, ":user": {"S": user}, ":attempt": {"S": attempt_id},
        ":now": {"S": naming.iso_precise(now)},
        ":until": {"S": naming.iso_precise(now + timedelta(seconds=settings.stale_after_seconds))},
        ":one": {"N": "1"}, ":expires": {"N": str(naming.expires_at(run_id, settings.retention_days))},
    }
    try:
        old = dynamodb.update_item(
            TableName=settings.runs_table, Key=naming.user_key(run_id, user),
            UpdateExpression=("SET #s = :running, #u = :user, attempt_id = :attempt, lease_until = :until, "
                              "started_at = if_not_exists(started_at, :now), expires_at = :expires ADD attempts :one"),
            ConditionExpression="attribute_not_exists(#s) OR #s = :failed OR (#s = :running AND lease_until <= :now)",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_OLD",
        ).get("Attributes")
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        current = get_user_job(dynamodb, settings, run_id, user) or {}
        if current.get("status") in FINAL_JOB_STATUSES:
            return None
        raise LeaseHeld(f"user {user} of run {run_id} is being backed up by another attempt") from None
    previous = from_item(old).get("status") if old else None
    return Lease(attempt_id=attempt_id, previous_status=previous)


def release_lease(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease, error: str) -> None:
    """After a failed attempt that will be retried: let the next attempt start at once."""
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=naming.user_key(run_id, user),
            UpdateExpression="SET lease_until = :now, last_error = :error",
            ConditionExpression="#s = :running AND attempt_id = :attempt",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":now": {"S": naming.iso_precise(settings.now())},
                                       ":error": {"S": error[:1000]}, ":running": {"S": RUNNING},
                                       ":attempt": {"S": lease.attempt_id}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


