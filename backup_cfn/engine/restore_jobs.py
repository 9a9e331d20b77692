"""Restore jobs: many users restored by the stack, one job per user on the restore queue, run by
the restore function the way the worker runs backups (docs/engine.md, "Restore jobs").

A job names what to restore in general terms: the user, the source (a name the function maps to
a bucket: "backup", "replica", ...), the snapshot (an exact run, or the newest at or before a
moment), the target (the source bucket and a prefix) and a path prefix. The job picks its own
snapshot, copies each file server-side in path order (the copy's S3-computed SHA-256 checked
against the snapshot's), and, when its invocation's time runs short, records what it covered and
hands the rest on in a continuation. Its result and figures move into the restore's tallies in one
transaction (engine/tally.py), so the restore's counts are exact and it is closed once.
"""
from __future__ import annotations

import json
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import attempts, naming, tally
from backup_cfn.engine.attempts import Deadline
from backup_cfn.engine.contentstore import from_item, is_conditional_failure
from backup_cfn.engine.errors import InvalidJob, ManifestError, RestoreError, RetryableJobError
from backup_cfn.engine.restore import choose_manifest, copy_entry, select, target_key
from backup_cfn.engine.manifest import Manifest, read_manifest
from backup_cfn.engine.pointintime import view_at
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.worker import Delivery

MESSAGE_VERSION = 1
RESTORE_ITEM = "RESTORE"
USERS_ITEM = "USERS"
ENQUEUING, RESTORING, RESTORED, PARTIAL = "RESTORE_ENQUEUING", "RESTORING", "RESTORED", "RESTORE_PARTIAL"
STATUSES = (ENQUEUING, RESTORING, RESTORED, PARTIAL)
FINAL_STATUSES = (RESTORED, PARTIAL)
CLOSING = tally.Closing(RESTORING, RESTORED, PARTIAL)
COMPLETED, FAILED, SKIPPED = attempts.COMPLETED, attempts.FAILED, attempts.SKIPPED
HANDED_ON, DUPLICATE = "HANDED_ON", "DUPLICATE"
STAT_FIELDS = ("files", "bytes", "problems_total")
# The header, its tallies and one list of users per shard are written in one transaction: 100 items
# and 4 MB at most (DynamoDB's transaction limits), which hold about 250,000 user names.
MAX_SHARDS = 48
MAX_USERS = 250_000
MAX_PROBLEMS = 20
THREADS = 16          # copies at once per job
IN_FLIGHT = 2 * THREADS   # copies submitted ahead of the oldest unfinished one
# Errors S3 answers when it is busy: after the SDK's own retries, the job is retried (SQS), not failed.
TRANSIENT = ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException",
             "RequestTimeTooSkewed")
_RESTORE_ID = re.compile(r"^R\d{8}T\d{6}Z$")


def new_restore_id(moment: datetime) -> str:
    return "R" + naming.run_id_for(moment)


def is_restore_id(value: object) -> bool:
    return isinstance(value, str) and bool(_RESTORE_ID.match(value))


@dataclass(frozen=True)
class RestoreJob:
    restore_id: str
    user: str
    source: str                      # a name from settings.restore_sources
    target_bucket: str
    target_prefix: str = ""          # the user's files go to <prefix>/<user>/<path>
    run_id: str | None = None        # this run's snapshot ...
    at: str | None = None            # ... or the newest at or before this run ID (None: the newest)
    point_in_time: bool = False      # `at` is a minute to restore (issue 20): the snapshot and the journal
    path_prefix: str = ""
    part: int = 0
    after: str | None = None         # a continuation: the last path covered

    def body(self) -> str:
        data = {"version": MESSAGE_VERSION, "restore_id": self.restore_id, "user": self.user, "source": self.source,
                "snapshot": {"run_id": self.run_id, "at": self.at, **({"point_in_time": True} if self.point_in_time else {})},
                "target": {"bucket": self.target_bucket, "prefix": self.target_prefix}, "path_prefix": self.path_prefix}
        if self.part:
            data.update(part=self.part, after=self.after)
        return json.dumps(data, separators=(",", ":"))

    def continuation(self, run_id: str, after: str) -> "RestoreJob":
        # Every chunk restores the snapshot the first one picked; a point in time (issue 20) keeps
        # its moment: the view at a past minute is the same for every chunk (docs/engine.md).
        if self.point_in_time:
            return replace(self, part=self.part + 1, after=after)
        return replace(self, run_id=run_id, at=None, part=self.part + 1, after=after)

    @property
    def user_prefix(self) -> str:
        return "/".join(p for p in (self.target_prefix.strip("/"), self.user) if p)


def parse_job(body: str) -> RestoreJob:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        raise InvalidJob(f"message body is not JSON: {str(body)[:80]!r}") from None
    if not isinstance(data, dict) or data.get("version") != MESSAGE_VERSION:
        raise InvalidJob("not a restore job message of this version")
    snapshot, target = data.get("snapshot") or {}, data.get("target") or {}
    job = RestoreJob(restore_id=data.get("restore_id"), user=data.get("user"), source=data.get("source"),
                     target_bucket=target.get("bucket"), target_prefix=target.get("prefix") or "",
                     run_id=snapshot.get("run_id"), at=snapshot.get("at"),
                     point_in_time=snapshot.get("point_in_time", False), path_prefix=data.get("path_prefix") or "",
                     part=data.get("part", 0), after=data.get("after"))
    checks = ((is_restore_id(job.restore_id), "restore_id"), (naming.is_valid_user(job.user), "user"),
              (isinstance(job.source, str) and bool(job.source), "source"),
              (isinstance(job.target_bucket, str) and bool(job.target_bucket), "target bucket"),
              (isinstance(job.target_prefix, str) and ".." not in job.target_prefix.split("/"), "target prefix"),
              (job.run_id is None or naming.is_run_id(job.run_id), "snapshot run_id"),
              (job.at is None or naming.is_run_id(job.at), "snapshot at"),
              (job.point_in_time is False or (job.point_in_time is True and job.at and not job.run_id), "point in time"),
              (isinstance(job.path_prefix, str), "path_prefix"),
              (isinstance(job.part, int) and not isinstance(job.part, bool) and 0 <= job.part <= 100_000, "part"),
              (job.part == 0 or isinstance(job.after, str), "after"))
    for ok, what in checks:
        if not ok:
            raise InvalidJob(f"restore job has no valid {what}")
    return job


# --- the restore's record -----------------------------------------------------------------------

def layout_of(dynamodb, settings: Settings, restore_id: str) -> tally.Layout:
    return tally.layout(dynamodb, settings.runs_table, restore_id, RESTORE_ITEM)


def create_restore(dynamodb, settings: Settings, restore_id: str, users: list[str], spec: dict) -> tuple[bool, dict]:
    """The restore's header (with what it restores: `spec`), its tallies and, per shard, the users
    it restores (what a resumed restore enqueues again), in one transaction. (False, the existing
    header) when this ID was created before."""
    shards = tally.shards_for(len(users), MAX_SHARDS)
    layout = tally.Layout(restore_id, RESTORE_ITEM, shards)
    expires = naming.expires_at(restore_id[1:], settings.retention_days)
    header = {contract.RUNS_PARTITION_KEY: restore_id, contract.RUNS_SORT_KEY: RESTORE_ITEM, "status": ENQUEUING,
              "started_at": naming.iso(settings.now()), "users_total": len(users), "shards": shards,
              "spec": json.dumps(spec, sort_keys=True), contract.RUNS_TTL_ATTRIBUTE: expires}
    items = tally.creation_items(settings.runs_table, header, layout, users, STAT_FIELDS)
    by_shard: dict[int, list[str]] = {}
    for user in users:
        by_shard.setdefault(tally.shard_of(user, shards), []).append(user)
    for shard, members in sorted(by_shard.items()):
        items.append({"Put": {"TableName": settings.runs_table, "Item": {
            contract.RUNS_PARTITION_KEY: {"S": layout.partition(shard)}, contract.RUNS_SORT_KEY: {"S": USERS_ITEM},
            "users": {"S": "\n".join(sorted(members))}, contract.RUNS_TTL_ATTRIBUTE: {"N": str(expires)}}}})
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if tally.cancellation_codes(exc)[:1] != ["ConditionalCheckFailed"]:
            raise
        return False, tally.get_header(dynamodb, settings.runs_table, restore_id, RESTORE_ITEM) or header
    return True, header


def mark_enqueued(dynamodb, settings: Settings, restore_id: str) -> None:
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=tally.Layout(restore_id, RESTORE_ITEM).header_key(),
            UpdateExpression="SET #s = :restoring, enqueued_at = :now", ConditionExpression="#s = :enqueuing",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":restoring": {"S": RESTORING}, ":enqueuing": {"S": ENQUEUING},
                                       ":now": {"S": naming.iso(settings.now())}})
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


def get_restore(dynamodb, settings: Settings, restore_id: str) -> dict | None:
    header = tally.get_header(dynamodb, settings.runs_table, restore_id, RESTORE_ITEM)
    return tally.current(dynamodb, settings.runs_table, header, RESTORE_ITEM, STAT_FIELDS) if header else None


def close_restore(dynamodb, settings: Settings, restore_id: str) -> dict | None:
    return tally.close_if_done(dynamodb, settings.runs_table, restore_id, RESTORE_ITEM, CLOSING,
                               naming.iso(settings.now()), STAT_FIELDS)


def _partition_items(dynamodb, settings: Settings, partition: str, prefix: str) -> list[dict]:
    found = []
    for page in dynamodb.get_paginator("query").paginate(
            TableName=settings.runs_table, ConsistentRead=True,
            KeyConditionExpression="#pk = :partition AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": contract.RUNS_PARTITION_KEY, "#sk": contract.RUNS_SORT_KEY},
            ExpressionAttributeValues={":partition": {"S": partition}, ":prefix": {"S": prefix}}):
        found += [from_item(item) for item in page.get("Items", [])]
    return found


def restore_users(dynamodb, settings: Settings, restore_id: str) -> list[str]:
    """The users the restore was created for."""
    layout = layout_of(dynamodb, settings, restore_id)
    users = []
    for partition in layout.partitions():
        for item in _partition_items(dynamodb, settings, partition, USERS_ITEM):
            users += [u for u in item["users"].split("\n") if u]
    return sorted(users)


def user_results(dynamodb, settings: Settings, restore_id: str) -> list[dict]:
    """Each user's result so far (a user no job has reached yet has none), by user."""
    layout = layout_of(dynamodb, settings, restore_id)
    found = []
    for partition in layout.partitions():
        found += [tally.job_record(item) for item in _partition_items(dynamodb, settings, partition,
                                                                        naming.USER_ITEM_PREFIX)]
    return sorted(found, key=lambda result: result.get("user", ""))


# --- one job --------------------------------------------------------------------------------------

@dataclass
class RestoreOutcome:
    job: RestoreJob | None
    status: str
    figures: dict = field(default_factory=dict)
    reason: str = ""
    closed: dict | None = None


@dataclass
class _Chunk:
    run_id: str = ""
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    last_path: str | None = None
    complete: bool = False

    def figures(self) -> dict:
        return {"files": self.files, "bytes": self.bytes, "problems_total": len(self.problems)}


def handle_delivery(clients, settings: Settings, delivery: Delivery) -> RestoreOutcome:
    """A delivery of a restore job: its message's visibility follows the attempt (engine/attempts.py),
    a failure is retried by the queue, and recorded FAILED on the last delivery."""
    deadline = Deadline(delivery.remaining_ms, settings)
    queue = settings.restore_queue_url
    if delivery.receipt_handle:
        attempts.change_visibility(clients.sqs, settings, delivery.receipt_handle, attempts.visibility_while_running(
            settings, delivery.receive_count, deadline.remaining_seconds()), queue_url=queue)
    job = None
    try:
        job = parse_job(delivery.body)
        return _run(clients, settings, job, deadline)
    except Exception as exc:
        if delivery.receipt_handle:
            wait = 0 if isinstance(exc, InvalidJob) else attempts.visibility_after_failure(settings,
                                                                                          delivery.receive_count)
            attempts.change_visibility(clients.sqs, settings, delivery.receipt_handle, wait, queue_url=queue)
        if not isinstance(exc, InvalidJob):
            reason = f"{type(exc).__name__}: {exc}"[:1000]
            if attempts.is_last_delivery(settings, delivery.receive_count):
                exc.outcome = _finish(clients, settings, job, FAILED, _Chunk(), reason, any_part=True)
            else:
                _note_error(clients.dynamodb, settings, job, reason)
        raise


def record_dead_letter(clients, settings: Settings, body: str) -> RestoreOutcome:
    """A restore job that failed every delivery (or was killed on the last): recorded FAILED with
    the last error an attempt noted, unless its user has a result already."""
    try:
        job = parse_job(body)
    except InvalidJob as exc:
        return RestoreOutcome(None, "INVALID", reason=str(exc))
    layout = layout_of(clients.dynamodb, settings, job.restore_id)
    if not layout.shards:
        return RestoreOutcome(job, "INVALID", reason=f"job names unknown restore {job.restore_id}")
    item = clients.dynamodb.get_item(TableName=settings.runs_table, Key=layout.user_key(job.user),
                                     ConsistentRead=True).get("Item")
    noted = tally.job_record(from_item(item)) if item else {}
    reason = (f"dead-lettered after {settings.job_max_receives} deliveries: "
              f"{noted.get('last_error') or 'the restore function was stopped before it could say why'}")[:1000]
    return _finish(clients, settings, job, FAILED, _Chunk(), reason, any_part=True)


def _run(clients, settings: Settings, job: RestoreJob, deadline: Deadline) -> RestoreOutcome:
    sources = dict(settings.restore_sources)
    if job.source not in sources:
        raise InvalidJob(f"unknown restore source {job.source!r} (this function reads: {', '.join(sorted(sources))})")
    if job.target_bucket != settings.source_bucket:
        raise InvalidJob(f"restore target s3://{job.target_bucket} is not the source bucket this function restores to")
    if layout_of(clients.dynamodb, settings, job.restore_id).shards == 0:
        raise InvalidJob(f"job names unknown restore {job.restore_id}")
    bucket = sources[job.source]
    try:
        manifest = resolve_snapshot(clients.s3, bucket, job.user, run_id=job.run_id, at=job.at,
                                    point_in_time=job.point_in_time, window_start=settings.window_start())
    except RestoreError as exc:
        return _finish(clients, settings, job, SKIPPED, _Chunk(), str(exc))
    chunk = _restore_chunk(clients.s3, bucket, manifest, job, deadline)
    if not chunk.complete:
        return _hand_on(clients, settings, job, chunk)
    status = COMPLETED if not chunk.problems else FAILED
    reason = "" if not chunk.problems else f"{len(chunk.problems)} file(s) not restored: {chunk.problems[0]}"
    return _finish(clients, settings, job, status, chunk, reason)


def resolve_snapshot(s3, bucket: str, user: str, *, run_id: str | None, at: str | None,
                     point_in_time: bool = False, window_start: datetime | None = None) -> Manifest:
    """The snapshot a job restores: this run's, or the newest at or before `at` (a run ID), or the
    newest; a point in time: the user's files at `at` (the newest snapshot finished by then and the
    journal's changes up to it, engine/pointintime.py)."""
    if point_in_time:
        try:
            return view_at(s3, bucket, user, naming.run_time(at), window_start=window_start).manifest
        except ManifestError as exc:
            raise RestoreError(f"user {user!r} at {at}: a snapshot is unreadable: {exc}") from None
    key = choose_manifest(s3, bucket, user, run_id=run_id, at=naming.run_time(at) if at else None)
    try:
        return read_manifest(s3, bucket, key)
    except ManifestError as exc:
        raise RestoreError(f"snapshot {key} unreadable: {exc}") from None


def _restore_chunk(s3, bucket: str, manifest: Manifest, job: RestoreJob, deadline: Deadline) -> _Chunk:
    """Copy the job's files in path order, THREADS at a time, until they are all done or only the
    invocation's reserve is left; the chunk covers the files up to `last_path`."""
    chunk = _Chunk(run_id=manifest.run_id, last_path=job.after)
    entries = [(path, entry) for path, entry in sorted(select(manifest, job.path_prefix or None).items())
               if job.after is None or path > job.after]

    def copy(item):
        path, entry = item
        return copy_entry(s3, bucket, path, entry, job.target_bucket, target_key(job.user_prefix, path),
                          transient=TRANSIENT)

    def apply(item, future) -> None:
        problem = future.result()
        if problem:
            chunk.problems.append(problem)
        else:
            chunk.files += 1
            chunk.bytes += item[1].size
        chunk.last_path = item[0]

    in_flight: deque = deque()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for item in entries:
            if deadline.passed() and (in_flight or chunk.last_path != job.after):
                break
            in_flight.append((item, pool.submit(copy, item)))
            if len(in_flight) >= IN_FLIGHT:
                apply(*in_flight.popleft())
        else:
            chunk.complete = True
        while in_flight:
            apply(*in_flight.popleft())
    return chunk


def _user_update(settings: Settings, layout: tally.Layout, job: RestoreJob, chunk: _Chunk, *, status: str | None,
                 reason: str, any_part: bool) -> dict:
    """The user's result item: a chunk's figures added, and a final status (or the hand-on)."""
    now = naming.iso(settings.now())
    names = {"#s": layout.status_attribute, "#u": "user"}
    values = {":user": {"S": job.user}, ":now": {"S": now}, ":files": {"N": str(chunk.files)},
              ":bytes": {"N": str(chunk.bytes)}, ":problems_total": {"N": str(len(chunk.problems))},
              ":problems": {"L": [{"S": p[:500]} for p in chunk.problems[:MAX_PROBLEMS]]}, ":none": {"L": []},
              ":to": {"S": f"s3://{job.target_bucket}/{job.user_prefix}/"}, ":source": {"S": job.source}}
    sets = ["#u = :user", "#to = :to", "#source = :source", "started_at = if_not_exists(started_at, :now)",
            "problems = list_append(if_not_exists(problems, :none), :problems)"]
    names.update({"#to": "to", "#source": "source"})
    if chunk.run_id:
        sets.append("snapshot_run_id = :run")
        values[":run"] = {"S": chunk.run_id}
    if status is None:
        sets += ["next_part = :next", "resume_after = :after"]
        values.update({":next": {"N": str(job.part + 1)}, ":after": {"S": chunk.last_path or ""}})
    else:
        sets += ["#s = :status", "finished_at = :now", "reason = :reason"]
        values.update({":status": {"S": status}, ":reason": {"S": reason}})
    chain, chain_values = attempts._chain_condition(job.part)
    values.update(chain_values)
    condition = "attribute_not_exists(#s)" + ("" if any_part else f" AND {chain}")
    return {"Update": {
        "TableName": settings.runs_table, "Key": layout.user_key(job.user),
        "UpdateExpression": f"SET {', '.join(sets)} ADD files :files, #bytes :bytes, problems_total :problems_total",
        "ConditionExpression": condition, "ExpressionAttributeNames": {**names, "#bytes": "bytes"},
        "ExpressionAttributeValues": values, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }}


def _commit(clients, settings: Settings, job: RestoreJob, update: dict, change: dict) -> bool | None:
    """tally.commit for a restore job; None when the user's item refused (a result is there, or the
    chain moved past this part: a duplicate)."""
    layout = layout_of(clients.dynamodb, settings, job.restore_id)
    try:
        return tally.commit(clients.dynamodb, settings.runs_table, layout, job.user, update, change,
                            naming.iso(settings.now()), sleep=settings.sleep, random=settings.random)
    except tally.UserRefused:
        return None
    except tally.UnknownRecord:
        raise InvalidJob(f"job names unknown restore {job.restore_id}") from None
    except tally.StillCancelled as exc:
        raise RetryableJobError(f"user {job.user} of restore {job.restore_id}: recording was cancelled ({exc})") \
            from None


def _finish(clients, settings: Settings, job: RestoreJob, status: str, chunk: _Chunk, reason: str, *,
            any_part: bool = False) -> RestoreOutcome:
    layout = layout_of(clients.dynamodb, settings, job.restore_id)
    counter = {COMPLETED: "users_done", FAILED: "users_failed", SKIPPED: "users_skipped"}[status]
    change = {"users_pending": -1, counter: 1, **chunk.figures()}
    closes = _commit(clients, settings, job, _user_update(settings, layout, job, chunk, status=status, reason=reason,
                                                          any_part=any_part), change)
    if closes is None:
        closed = close_restore(clients.dynamodb, settings, job.restore_id)   # an earlier attempt may have died
        return RestoreOutcome(job, DUPLICATE, closed=closed)
    closed = close_restore(clients.dynamodb, settings, job.restore_id) if closes else None
    return RestoreOutcome(job, status, chunk.figures(), reason, closed)


def _hand_on(clients, settings: Settings, job: RestoreJob, chunk: _Chunk) -> RestoreOutcome:
    if chunk.last_path == job.after:
        raise RetryableJobError(f"no file restored within one invocation after {job.after or 'the start'}")
    layout = layout_of(clients.dynamodb, settings, job.restore_id)
    recorded = _commit(clients, settings, job, _user_update(settings, layout, job, chunk, status=None, reason="",
                                                            any_part=False), chunk.figures())
    if recorded is None:
        return RestoreOutcome(job, DUPLICATE)
    clients.sqs.send_message(QueueUrl=settings.restore_queue_url,
                             MessageBody=job.continuation(chunk.run_id, chunk.last_path).body())
    return RestoreOutcome(job, HANDED_ON, chunk.figures())


def _note_error(dynamodb, settings: Settings, job: RestoreJob, error: str) -> None:
    """A failed attempt's error on the user's item, for the dead-letter consumer's reason."""
    layout = layout_of(dynamodb, settings, job.restore_id)
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=layout.user_key(job.user),
            UpdateExpression="SET #u = :user, last_error = :error ADD attempts :one",
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": layout.status_attribute, "#u": "user"},
            ExpressionAttributeValues={":user": {"S": job.user}, ":error": {"S": error[:1000]}, ":one": {"N": "1"}})
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


def publish_summary(sns, settings: Settings, record: dict) -> None:
    """The restore's result on the notification topic (from the job that closed it)."""
    if not settings.topic_arn or sns is None:
        return
    restore_id = record[contract.RUNS_PARTITION_KEY]
    subject = f"backup-cfn {settings.stack_name}: restore {restore_id} {record['status']}"
    figures = {name: int(record.get(name) or 0) for name in tally.USER_COUNTERS + STAT_FIELDS}
    lines = [subject, f"users: {figures['users_done']} restored, {figures['users_failed']} failed, "
                      f"{figures['users_skipped']} without a snapshot then, of {int(record.get('users_total') or 0)}",
             f"files: {figures['files']}, bytes: {figures['bytes']}, problems: {figures['problems_total']}",
             "", json.dumps({**figures, "restore_id": restore_id, "spec": record.get("spec")}, sort_keys=True)]
    sns.publish(TopicArn=settings.topic_arn, Subject=subject[:100], Message="\n".join(lines))
