"""Jobs whose every delivery failed: recorded FAILED with their reason, so their run closes
(PARTIAL) and its summary goes out, whatever ended the last delivery. The worker records a failure
it sees itself; a delivery Lambda killed at its timeout (or that ran out of memory) leaves nothing
but its message, which SQS moves to the dead-letter queue, where this consumer finds it.

Idempotent: a job already recorded, or whose chain moved past the message, is left as it is; a job
a live attempt still holds (a duplicate message dead-lettered while the original works) is left to
that attempt, and the message is looked at again later.
"""
from __future__ import annotations

from dataclasses import dataclass

from backup_cfn.engine import attempts, runs
from backup_cfn.engine.errors import InvalidJob, RetryableJobError
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.worker import Job, parse_job

RECORDED, ALREADY_RECORDED, INVALID = "RECORDED", "ALREADY_RECORDED", "INVALID"
KILLED = ("no attempt recorded an error: the worker was stopped (at its timeout, or out of memory) "
          "before it could")


class JobStillHeld(RetryableJobError):
    """A live attempt holds the job: look at the message again once its lease has run out."""


@dataclass
class DeadLetterOutcome:
    status: str                      # RECORDED, ALREADY_RECORDED, INVALID
    job: Job | None
    reason: str
    finalized_run: dict | None = None


def record_dead_letter(clients, settings: Settings, body: str) -> DeadLetterOutcome:
    try:
        job = parse_job(body)
    except InvalidJob as exc:
        return DeadLetterOutcome(INVALID, None, str(exc))
    if runs.get_run(clients.dynamodb, settings, job.run_id) is None:
        return DeadLetterOutcome(INVALID, job, f"job names unknown run {job.run_id}")
    current = attempts.get_user_job(clients.dynamodb, settings, job.run_id, job.user) or {}
    if current.get("status") == runs.FAILED or attempts.why_not_free(current, job.part, settings.now()) == "done":
        return _already_recorded(clients, settings, job, current.get("reason", ""))
    reason = (f"dead-lettered after {settings.job_max_receives} deliveries: "
              f"{current.get('last_error') or KILLED}")[:1000]
    try:
        closed = runs.finish_job(clients.dynamodb, settings, job.run_id, job.user, None, runs.FAILED, {}, reason,
                                 part=job.part)
    except runs.JobNotRecorded as exc:
        if exc.state == "held":
            raise JobStillHeld(f"user {job.user} of run {job.run_id} is held by a live attempt") from None
        return _already_recorded(clients, settings, job, "")
    if closed is not None:
        runs.publish_summary(clients.sns, settings, closed)
    return DeadLetterOutcome(RECORDED, job, reason, closed)


def _already_recorded(clients, settings: Settings, job: Job, reason: str) -> DeadLetterOutcome:
    """The job is recorded; its last attempt may have died before closing the run: check again."""
    closed = runs.close_run(clients.dynamodb, settings, job.run_id)
    if closed is not None:
        runs.publish_summary(clients.sns, settings, closed)
    return DeadLetterOutcome(ALREADY_RECORDED, job, reason, closed)
