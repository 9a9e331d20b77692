"""The runs table: one RUN header per run, its tallies, and one USER#<user> record per user job
(engine/tally.py says where each lives).

Counters move in the same transaction as the user record that justifies them, so a retried or
duplicated job never counts twice; the job that empties its shard closes the run if no other shard
has a job pending, with a write conditional on the run's status. User records keep their status
out of the ByStatus index, which answers "which runs are in progress" from the headers alone.
"""
from __future__ import annotations

import json

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming, tally
# The job statuses and the job record are the attempt rules' (engine.attempts); read here with the runs.
from backup_cfn.engine.attempts import (  # noqa: F401
    COMPLETED,
    FAILED,
    FINAL_JOB_STATUSES,
    RUNNING,
    SKIPPED,
    Lease,
    _chain_condition,
    get_user_job,
    why_not_free,
    worst_case_outcome_seconds,
)
from backup_cfn.engine.contentstore import from_item, is_conditional_failure
from backup_cfn.engine.errors import InvalidJob, RetryableJobError
from backup_cfn.engine.settings import Settings

# Run statuses
ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL = "ENQUEUING", "IN_PROGRESS", "SUCCEEDED", "PARTIAL"
RUN_STATUSES = (ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL)
FINAL_RUN_STATUSES = (SUCCEEDED, PARTIAL)
# Figures a job adds to its run.
STAT_FIELDS = ("files_total", "files_changed", "bytes_scanned", "bytes_read", "bytes_new", "bytes_deduplicated",
               "objects_skipped", "changes_missed")


RUN_CLOSING = tally.Closing(IN_PROGRESS, SUCCEEDED, PARTIAL)


def get_run(dynamodb, settings: Settings, run_id: str) -> dict | None:
    """The run record with its counters as they stand (summed over its tallies)."""
    header = tally.get_header(dynamodb, settings.runs_table, run_id)
    return tally.current(dynamodb, settings.runs_table, header, naming.RUN_ITEM, STAT_FIELDS) if header else None


def require_run(dynamodb, settings: Settings, run_id: str) -> dict:
    """The run's header as it was first read by this process (one read per run per execution
    environment); InvalidJob for a run that was never recorded, before anything is written for it."""
    header = tally.known_header(dynamodb, settings.runs_table, run_id)
    if header is None:
        raise InvalidJob(f"job names unknown run {run_id}")
    return header


def run_layout(dynamodb, settings: Settings, run_id: str) -> tally.Layout:
    return tally.layout(dynamodb, settings.runs_table, run_id)


POINTER_KEY = {contract.RUNS_PARTITION_KEY: {"S": "LATEST"}, contract.RUNS_SORT_KEY: {"S": "POINTER"}}


def create_run(dynamodb, settings: Settings, run_id: str, users: list[str], trigger: str,
               shards: int | None = None) -> tuple[bool, dict]:
    """Create the run's header and its tallies (one transaction); (False, existing record) when this
    run ID was started before.

    The record names the run before it (`previous_run_id`, from a pointer item holding the newest
    run ID), so each worker reads its user's previous snapshot by key instead of listing them."""
    pointer = dynamodb.get_item(TableName=settings.runs_table, Key=POINTER_KEY, ConsistentRead=True).get("Item")
    latest = from_item(pointer).get("latest_run_id") if pointer else None
    shards = tally.shards_for(len(users)) if shards is None else shards
    record = {
        contract.RUNS_PARTITION_KEY: run_id, contract.RUNS_SORT_KEY: naming.RUN_ITEM, "status": ENQUEUING,
        "trigger": trigger, "started_at": naming.iso(settings.now()), "users_total": len(users), "shards": shards,
        "previous_run_id": latest if latest and latest < run_id else None,
        contract.RUNS_TTL_ATTRIBUTE: naming.expires_at(run_id, settings.retention_days),
    }
    if not shards:
        record.update(users_pending=len(users), users_done=0, users_failed=0, users_skipped=0,
                      **{name: 0 for name in STAT_FIELDS})
    layout = tally.Layout(run_id, naming.RUN_ITEM, shards)
    try:
        dynamodb.transact_write_items(TransactItems=tally.creation_items(settings.runs_table, record, layout, users,
                                                                         STAT_FIELDS))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException" \
                or tally.cancellation_codes(exc)[:1] != ["ConditionalCheckFailed"]:
            raise
        return False, get_run(dynamodb, settings, run_id) or record
    try:
        dynamodb.update_item(TableName=settings.runs_table, Key=POINTER_KEY,
                             UpdateExpression="SET latest_run_id = :run",
                             ConditionExpression="attribute_not_exists(latest_run_id) OR latest_run_id < :run",
                             ExpressionAttributeValues={":run": {"S": run_id}})
    except ClientError as exc:
        # A failed condition means a newer run exists already (this is a manual run of an older
        # time): the pointer stays on the newer one.
        if not is_conditional_failure(exc):
            raise
    return True, {**record, "users_pending": len(users), "users_done": 0, "users_failed": 0, "users_skipped": 0,
                  **{name: 0 for name in STAT_FIELDS}}


def mark_enqueued(dynamodb, settings: Settings, run_id: str) -> None:
    try:
        dynamodb.update_item(
            TableName=settings.runs_table, Key=naming.run_key(run_id),
            UpdateExpression="SET #s = :running, enqueued_at = :now", ConditionExpression="#s = :enqueuing",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":running": {"S": IN_PROGRESS}, ":enqueuing": {"S": ENQUEUING},
                                       ":now": {"S": naming.iso(settings.now())}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise


class JobNotRecorded(RetryableJobError):
    """The job record could not be written as this attempt expected (another attempt holds it, or
    this attempt's lease was lost); `state` says which: "done", "held", "ahead" or "lost"."""

    def __init__(self, message: str, state: str):
        super().__init__(message)
        self.state = state


# Two jobs of one shard may overlap on its tally, and DynamoDB cancels one with TransactionConflict;
# a hot partition cancels with ThrottlingError. Nothing was applied: sent again in place
# (tally.commit), after a short jittered backoff, not through an SQS redelivery a minute later.
CONFLICT_RETRIES = tally.CONFLICT_RETRIES


def finish_job(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease | None, status: str, stats: dict,
               reason: str = "", *, part: int = 0, probably_last: bool = False) -> dict | None:
    """Record the job's final status and add its figures to its shard's tally, atomically, once
    (tally.commit); the job that empties the run's last open shard then closes the run
    (tally.close_if_done). Returns the run record as closed (SUCCEEDED or PARTIAL), or re-closed
    as SUCCEEDED by a redriven job, when this call did it; else None.

    With a lease the record must still be ours. Without one (a job that needed no content claim
    takes none) it must be free: not finished, not held by a live attempt, at this chain part.
    Raises JobNotRecorded otherwise. `probably_last`: the initiator enqueued this job last of its
    shard (tally.commit)."""
    layout = run_layout(dynamodb, settings, run_id)
    counted_failed = lease.counted_failed if lease else False
    for _ in range(2):
        update = _user_update(settings, layout, user, lease, status, stats, reason, part, counted_failed)
        try:
            closes = tally.commit(dynamodb, settings.runs_table, layout, user, update,
                                  _run_change(status, stats, counted_failed), naming.iso(settings.now()),
                                  sleep=settings.sleep, random=settings.random, probably_last=probably_last)
        except tally.UserRefused as refused:
            current = tally.job_record(refused.item)
            if lease is None and not counted_failed and current.get("counted_failed") \
                    and not why_not_free(current, part, settings.now()):
                counted_failed = True   # a redriven job, counted among the failed: count it from there
                continue
            state = "lost" if lease else (why_not_free(current, part, settings.now()) or "lost")
            raise JobNotRecorded(f"user {user} of run {run_id}: job record changed by another attempt ({state})",
                                 state) from None
        except tally.UnknownRecord:
            raise InvalidJob(f"job names unknown run {run_id}") from None
        except tally.StillCancelled as exc:
            raise RetryableJobError(f"user {user} of run {run_id}: recording was cancelled ({exc}); retrying") from None
        return close_run(dynamodb, settings, run_id) if closes else None
    raise RetryableJobError(f"user {user} of run {run_id}: the job record kept changing; retrying")


def close_run(dynamodb, settings: Settings, run_id: str) -> dict | None:
    """Close the run if no job is pending: the closed record when this call did it (its caller
    publishes the summary), else None. Safe to call any number of times, by anyone."""
    return tally.close_if_done(dynamodb, settings.runs_table, run_id, naming.RUN_ITEM, RUN_CLOSING,
                               naming.iso(settings.now()), STAT_FIELDS)


def _user_update(settings: Settings, layout: tally.Layout, user: str, lease: Lease | None, status: str, stats: dict,
                 reason: str, part: int, counted_failed: bool) -> dict:
    now = settings.now()
    run_id = layout.record_id
    values = {":status": {"S": status}, ":now": {"S": naming.iso(now)}, ":reason": {"S": reason},
              ":user": {"S": user}, ":expires": {"N": str(naming.expires_at(run_id, settings.retention_days))},
              **{f":{k}": {"N": str(int(stats.get(k, 0)))} for k in STAT_FIELDS}}
    sets = ["#s = :status", "#u = :user", "finished_at = :now", "reason = :reason", "expires_at = :expires",
            "started_at = if_not_exists(started_at, :now)", *(f"{k} = :{k}" for k in STAT_FIELDS)]
    removes = ["lease_until"]
    if status == FAILED:
        sets.append("counted_failed = :true")
        values[":true"] = {"BOOL": True}
    else:
        removes.append("counted_failed")
    names = {"#s": layout.status_attribute, "#u": "user"}
    if lease is not None:
        condition = "#s = :running AND attempt_id = :attempt"
        values.update({":running": {"S": RUNNING}, ":attempt": {"S": lease.attempt_id}})
    else:
        chain, chain_values = _chain_condition(part)
        counted = "attribute_exists(counted_failed)" if counted_failed else "attribute_not_exists(counted_failed)"
        condition = (f"(attribute_not_exists(#s) OR #s = :failed OR (#s = :running AND lease_until <= :lease_now)) "
                     f"AND {chain} AND {counted}")
        values.update({":failed": {"S": FAILED}, ":running": {"S": RUNNING},
                       ":lease_now": {"S": naming.iso_precise(now)}, ":one": {"N": "1"}, **chain_values})
    update = {
        "TableName": settings.runs_table, "Key": layout.user_key(user),
        "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
                            + (" ADD attempts :one" if lease is None else ""),
        "ConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return {"Update": update}


def _run_change(status: str, stats: dict, counted_failed: bool) -> dict[str, int]:
    """What the job adds to its run's counters: from pending (or, redriven, from failed) to its
    status's count, and its figures when it completed. Nothing when a failed job fails again."""
    if counted_failed and status == FAILED:
        return {}
    counter = {COMPLETED: "users_done", SKIPPED: "users_skipped", FAILED: "users_failed"}[status]
    source = "users_failed" if counted_failed else "users_pending"
    figures = stats if status == COMPLETED else {}
    return {source: -1, counter: 1, **{k: int(figures.get(k, 0)) for k in STAT_FIELDS}}


def try_finalize(dynamodb, settings: Settings, run_id: str) -> dict | None:
    """Close the run if every job has finished (the initiator, after marking the run enqueued: jobs
    that finished while it was enqueuing could not close it); the record when this call did."""
    return close_run(dynamodb, settings, run_id)


def publish_summary(sns, settings: Settings, record: dict) -> None:
    if not settings.topic_arn or sns is None:
        return
    figures = {k: int(v) if isinstance(v, (int, float)) or hasattr(v, "to_integral") else v
               for k, v in record.items() if k not in (contract.RUNS_SORT_KEY, contract.RUNS_TTL_ATTRIBUTE)}
    subject = f"backup-cfn {settings.stack_name}: run {record[contract.RUNS_PARTITION_KEY]} {record['status']}"
    lines = [
        subject,
        f"users: {figures.get('users_done', 0)} backed up, {figures.get('users_failed', 0)} failed, "
        f"{figures.get('users_skipped', 0)} skipped, of {figures.get('users_total', 0)}",
        f"bytes: {figures.get('bytes_scanned', 0)} scanned, {figures.get('bytes_read', 0)} read, "
        f"{figures.get('bytes_new', 0)} stored new, {figures.get('bytes_deduplicated', 0)} deduplicated",
        "", json.dumps(figures, sort_keys=True, default=str),
    ]
    sns.publish(TopicArn=settings.topic_arn, Subject=subject[:100], Message="\n".join(lines))


def recent_runs(dynamodb, settings: Settings, limit: int = 10) -> list[dict]:
    """The newest runs, any status, newest first, through the ByStatus index (headers only; an
    unfinished run's counters summed from its tallies)."""
    found = []
    for status in RUN_STATUSES:
        response = dynamodb.query(
            TableName=settings.runs_table, IndexName=contract.RUNS_BY_STATUS_INDEX,
            KeyConditionExpression="#s = :status", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":status": {"S": status}}, ScanIndexForward=False, Limit=limit,
        )
        found.extend(from_item(i) for i in response.get("Items", []))
    found = [r for r in found if r.get(contract.RUNS_SORT_KEY) == naming.RUN_ITEM]
    newest = sorted(found, key=lambda r: r[contract.RUNS_PARTITION_KEY], reverse=True)[:limit]
    return [r if r.get("status") in FINAL_RUN_STATUSES else
            tally.current(dynamodb, settings.runs_table, r, naming.RUN_ITEM, STAT_FIELDS) for r in newest]


def last_activity(record: dict) -> str:
    """When the run last moved: its newest of started, enqueued, and a job finishing or handing on."""
    return max(record.get(name) or "" for name in ("started_at", "enqueued_at", "last_progress_at"))


def is_stalled(record: dict, settings: Settings, *, stall_after_seconds: int | None = None) -> bool:
    """An unfinished run in which nothing has moved for longer than any one job may take from its
    first delivery to its recorded outcome (engine/attempts.py): every job it still waits for has
    outlived its retries, so none is coming back by itself."""
    if record.get("status") in FINAL_RUN_STATUSES:
        return False
    limit = stall_after_seconds or worst_case_outcome_seconds(settings)
    since = last_activity(record)
    return bool(since) and (settings.now() - naming.parse_iso(since)).total_seconds() > limit


def user_jobs(dynamodb, settings: Settings, run_id: str) -> list[dict]:
    """Every user job record of a run (a job no attempt has reached yet has none), by user."""
    layout = run_layout(dynamodb, settings, run_id)
    found = []
    for partition in layout.partitions():
        for page in dynamodb.get_paginator("query").paginate(
                TableName=settings.runs_table, ConsistentRead=True,
                KeyConditionExpression="#pk = :partition AND begins_with(#sk, :users)",
                ExpressionAttributeNames={"#pk": contract.RUNS_PARTITION_KEY, "#sk": contract.RUNS_SORT_KEY},
                ExpressionAttributeValues={":partition": {"S": partition}, ":users": {"S": naming.USER_ITEM_PREFIX}}):
            found += [tally.job_record(from_item(item)) for item in page.get("Items", [])]
    return sorted(found, key=lambda job: job.get("user", ""))


def is_pending(job: dict) -> bool:
    """A user job record with no outcome yet: running, between retries, handed on."""
    return job.get("status") not in (*FINAL_JOB_STATUSES, FAILED)


# Run IDs start with a digit; a restore's user results share the ByUser index under "R...": a sort
# key below ":" (the character after "9") is a backup run's.
AFTER_RUN_IDS = ":"


def user_history(dynamodb, settings: Settings, user: str, limit: int = 10) -> list[dict]:
    """The user's newest backup jobs (not the restores that named the user)."""
    response = dynamodb.query(
        TableName=settings.runs_table, IndexName=contract.RUNS_BY_USER_INDEX,
        KeyConditionExpression="#u = :user AND #run < :after", ScanIndexForward=False, Limit=limit,
        ExpressionAttributeNames={"#u": "user", "#run": contract.RUNS_PARTITION_KEY},
        ExpressionAttributeValues={":user": {"S": user}, ":after": {"S": AFTER_RUN_IDS}},
    )
    return [tally.job_record(from_item(i)) for i in response.get("Items", [])]
