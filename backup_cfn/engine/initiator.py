"""Start a run: discover users, record the run, enqueue one job per user (priority users first).
Each job message names the run before this one, so the worker need not read the run record."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from backup_cfn.engine import naming, runs, tally
from backup_cfn.engine.errors import EnqueueFailed, InvalidJob
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.worker import Job

BATCH_SIZE = 10          # SendMessageBatch's maximum
SEND_ATTEMPTS = 6
SEND_THREADS = 8


@dataclass(frozen=True)
class StartResult:
    run_id: str
    created: bool
    status: str
    users_total: int
    enqueued: int
    finalized_run: dict | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "created": self.created, "status": self.status,
                "users_total": self.users_total, "enqueued": self.enqueued}


def discover_users(s3, bucket: str) -> list[str]:
    """Top-level prefixes of the source bucket, paginated (1,000 per page)."""
    users = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            user = prefix["Prefix"][:-1]
            if naming.is_valid_user(user):
                users.append(user)
    return users


def order_users(users: list[str], priority: tuple[str, ...]) -> tuple[list[str], int]:
    """Priority users (those present, in configured order) first, then the rest in name order; and
    how many come first."""
    present = set(users)
    first = [u for u in dict.fromkeys(priority) if u in present]
    chosen = set(first)
    return first + sorted(u for u in present if u not in chosen), len(first)


def enqueue_jobs(sqs, settings: Settings, jobs: list, *, first: int = 0, queue_url: str = "") -> int:
    """SendMessageBatch in batches of ten. The first `first` jobs (the priority users) are sent
    batch after batch, each confirmed before the next, before any other; the rest go several
    batches at a time. A 200 response can still carry failed entries; those are sent again with
    backoff until none is left or attempts run out.

    A standard queue delivers in roughly the order sent, not exactly: priority users enqueued
    first are delivered first in practice, but SQS does not promise it. Any message with a `body()`
    goes (restore jobs to `queue_url`)."""
    head, rest = jobs[:first], jobs[first:]

    def send(batch: list) -> int:
        pending = {str(i): job for i, job in enumerate(batch)}
        delay = 0.1
        for attempt in range(SEND_ATTEMPTS):
            response = sqs.send_message_batch(
                QueueUrl=queue_url or settings.job_queue_url,
                Entries=[{"Id": i, "MessageBody": job.body()} for i, job in pending.items()],
            )
            for ok in response.get("Successful", []):
                pending.pop(ok["Id"], None)
            if not pending:
                return len(batch)
            sender_faults = [f for f in response.get("Failed", []) if f.get("SenderFault")]
            if sender_faults:
                raise EnqueueFailed(f"SQS rejected job messages: {sender_faults[0].get('Code')}: "
                                   f"{sender_faults[0].get('Message')}")
            if attempt < SEND_ATTEMPTS - 1:
                settings.sleep(delay)
                delay *= 2
        raise EnqueueFailed(f"{len(pending)} job message(s) could not be enqueued after {SEND_ATTEMPTS} attempts")

    sent = 0
    for batch in _batches(head):
        sent += send(batch)
    with ThreadPoolExecutor(max_workers=SEND_THREADS) as pool:
        sent += sum(pool.map(send, _batches(rest)))
    return sent


def _batches(jobs: list) -> list[list]:
    return [jobs[i:i + BATCH_SIZE] for i in range(0, len(jobs), BATCH_SIZE)]


def start_run(clients, settings: Settings, run_id: str, *, users: list[str] | None = None,
              trigger: str = "schedule") -> StartResult:
    """Idempotent per run ID: a run already past enqueuing is not enqueued again; a run whose
    enqueuing was interrupted is enqueued again (workers skip users already done)."""
    if users is not None:
        bad = [u for u in users if not naming.is_valid_user(u)]
        if bad:
            raise InvalidJob(f"not a valid user name: {bad[0]!r}")
        chosen, first = order_users(list(dict.fromkeys(users)), settings.priority_users)
    else:
        chosen, first = order_users(discover_users(clients.s3, settings.source_bucket), settings.priority_users)
    created, record = runs.create_run(clients.dynamodb, settings, run_id, chosen, trigger)
    if not created and record.get("status") != runs.ENQUEUING:
        # A run past enqueuing whose jobs all finished before it was marked (the initiator that
        # marked it died before closing it) is closed by this retry.
        finalized = runs.try_finalize(clients.dynamodb, settings, run_id) \
            if record.get("status") == runs.IN_PROGRESS else None
        if finalized is not None:
            runs.publish_summary(clients.sns, settings, finalized)
        status = finalized["status"] if finalized else record.get("status", "")
        return StartResult(run_id, False, status, int(record.get("users_total", 0)), 0, finalized)
    previous = record.get("previous_run_id")
    # The last job of each shard in enqueue order is, most likely, the one that empties it.
    shards = int(record.get("shards") or 0)
    last = set({tally.shard_of(user, shards): user for user in chosen}.values()) if shards else set()
    jobs = [Job.for_run(run_id, user, previous, last_of_shard=user in last) for user in chosen]
    enqueued = enqueue_jobs(clients.sqs, settings, jobs, first=first)
    runs.mark_enqueued(clients.dynamodb, settings, run_id)
    finalized = runs.try_finalize(clients.dynamodb, settings, run_id)
    if finalized is not None:
        runs.publish_summary(clients.sns, settings, finalized)
    status = finalized["status"] if finalized else runs.IN_PROGRESS
    return StartResult(run_id, created, status, len(chosen), enqueued, finalized)


def handle_schedule_event(clients, settings: Settings, event: dict) -> StartResult:
    """An EventBridge scheduled event (or the same shape from `backup-cfn run`, whose `detail`
    may name users). The run ID is the event's `time`, so a redelivered event starts nothing new."""
    if not isinstance(event, dict) or not isinstance(event.get("time"), str):
        raise InvalidJob("event has no 'time': expected an EventBridge scheduled event")
    try:
        run_id = naming.run_id_from_event_time(event["time"])
    except ValueError:
        raise InvalidJob(f"event time is not an ISO 8601 timestamp: {event['time']!r}") from None
    detail = event.get("detail") or {}
    users = detail.get("users") if isinstance(detail, dict) else None
    if users is not None and (not isinstance(users, list) or not all(isinstance(u, str) for u in users)):
        raise InvalidJob("event detail.users must be a list of user names")
    trigger = "manual" if event.get("source") == "backup-cfn.cli" else "schedule"
    return start_run(clients, settings, run_id, users=users, trigger=trigger)


def scheduled_event(moment: datetime, *, users: list[str] | None = None, region: str = "us-east-1",
                    account: str = "123456789012", manual: bool = True) -> dict:
    """The event the initiator receives: EventBridge's Scheduled Event shape."""
    return {
        "version": "0", "id": f"run-{naming.run_id_for(moment)}", "detail-type": "Scheduled Event",
        "source": "backup-cfn.cli" if manual else "aws.events", "account": account,
        "time": naming.iso(moment), "region": region, "resources": [],
        "detail": {"users": users} if users is not None else {},
    }
