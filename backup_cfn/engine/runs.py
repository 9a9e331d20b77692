"""The runs table: one RUN record per run and one USER#<user> record per user job.

Counters move in the same transaction as the user record that justifies them, so a retried or
duplicated job never counts twice; the job that finishes last closes the run in that transaction. Run and job statuses use disjoint words, so the ByStatus
index answers "which runs are in progress" without reading user records.
"""
from __future__ import annotations

import json
import threading

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming
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
from backup_cfn.engine.contentstore import from_item, is_conditional_failure, to_item
from backup_cfn.engine.errors import InvalidJob, RetryableJobError
from backup_cfn.engine.settings import Settings

# Run statuses
ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL = "ENQUEUING", "IN_PROGRESS", "SUCCEEDED", "PARTIAL"
RUN_STATUSES = (ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL)
FINAL_RUN_STATUSES = (SUCCEEDED, PARTIAL)
# Figures a job adds to its run.
STAT_FIELDS = ("files_total", "files_changed", "bytes_scanned", "bytes_read", "bytes_new", "bytes_deduplicated",
               "objects_skipped", "changes_missed")


def get_run(dynamodb, settings: Settings, run_id: str) -> dict | None:
    item = dynamodb.get_item(TableName=settings.runs_table, Key=naming.run_key(run_id), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


# Runs this worker process has seen recorded: a Lambda execution environment runs many jobs in a
# row, and a run record, once written, stays until its TTL (months after any message about it).
_known_runs: dict[tuple[str, str], dict] = {}
_known_runs_lock = threading.Lock()


def require_run(dynamodb, settings: Settings, run_id: str) -> dict:
    """The run record as it was first read by this process (one read per run per execution
    environment); InvalidJob for a run that was never recorded, before anything is written for it."""
    key = (settings.runs_table, run_id)
    with _known_runs_lock:
        known = _known_runs.get(key)
    if known is not None:
        return known
    record = get_run(dynamodb, settings, run_id)
    if record is None:
        raise InvalidJob(f"job names unknown run {run_id}")
    with _known_runs_lock:
        _known_runs[key] = record
    return record


POINTER_KEY = {contract.RUNS_PARTITION_KEY: {"S": "LATEST"}, contract.RUNS_SORT_KEY: {"S": "POINTER"}}


def create_run(dynamodb, settings: Settings, run_id: str, users_total: int, trigger: str) -> tuple[bool, dict]:
    """Create the run record; (False, existing record) when this run ID was started before.

    The record names the run before it (`previous_run_id`, from a pointer item holding the newest
    run ID), so each worker reads its user's previous snapshot by key instead of listing them."""
    pointer = dynamodb.get_item(TableName=settings.runs_table, Key=POINTER_KEY, ConsistentRead=True).get("Item")
    latest = from_item(pointer).get("latest_run_id") if pointer else None
    record = {
        contract.RUNS_PARTITION_KEY: run_id, contract.RUNS_SORT_KEY: naming.RUN_ITEM, "status": ENQUEUING,
        "trigger": trigger, "started_at": naming.iso(settings.now()), "users_total": users_total,
        "users_pending": users_total, "users_done": 0, "users_failed": 0, "users_skipped": 0,
        "previous_run_id": latest if latest and latest < run_id else None,
        **{name: 0 for name in STAT_FIELDS},
        contract.RUNS_TTL_ATTRIBUTE: naming.expires_at(run_id, settings.retention_days),
    }
    try:
        dynamodb.put_item(TableName=settings.runs_table, Item=to_item(record),
                          ConditionExpression="attribute_not_exists(#pk)",
                          ExpressionAttributeNames={"#pk": contract.RUNS_PARTITION_KEY})
    except ClientError as exc:
        if not is_conditional_failure(exc):
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
    return True, record


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


FINISH_ATTEMPTS = 5
# Every job's closing transaction updates the run's one record, so with many workers two of them
# overlap on it and DynamoDB cancels one with TransactionConflict (docs/scale.md). That is retried
# here, after a short jittered backoff, not through an SQS redelivery a minute or more later.
CONFLICT_RETRIES = 8
CONFLICT_BASE_SECONDS = 0.05


def conflict_delay(settings: Settings, conflicts: int) -> float:
    """Before the n-th retry of a conflicting transaction: 50 ms doubling, times 0.5-1 (at most 6.4 s)."""
    return CONFLICT_BASE_SECONDS * 2 ** (conflicts - 1) * (0.5 + settings.random() / 2)


def finish_job(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease | None, status: str, stats: dict,
               reason: str = "", *, part: int = 0) -> dict | None:
    """Record the job's final status and add its figures to the run, atomically, once; the job that
    brings the run's pending count to zero closes the run in the same request. Returns the run
    record as closed (SUCCEEDED or PARTIAL), or re-closed as SUCCEEDED by a redriven job, when
    this call did it; else None.

    With a lease the record must still be ours. Without one (a job that needed no content claim
    takes none) it must be free: not finished, not held by a live attempt, at this chain part.
    Raises JobNotRecorded otherwise."""
    counted_failed = lease.counted_failed if lease else False
    closing: dict | None = None
    conflicts = 0
    for _ in range(FINISH_ATTEMPTS + CONFLICT_RETRIES):
        items = [_user_update(settings, run_id, user, lease, status, stats, reason, part, counted_failed)]
        change = _run_change(status, stats, counted_failed)
        if change:
            items.append(_run_update(settings, run_id, change, closing))
        try:
            dynamodb.transact_write_items(TransactItems=items)
            return _closed_record(settings, closing, change) if closing else None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            user_reason, run_reason = (reasons + [{}, {}])[:2]
        if "TransactionConflict" in (user_reason.get("Code"), run_reason.get("Code")) \
                and conflicts < CONFLICT_RETRIES:
            conflicts += 1
            settings.sleep(conflict_delay(settings, conflicts))
            continue
        if user_reason.get("Code") == "ConditionalCheckFailed":
            current = from_item(user_reason["Item"]) if user_reason.get("Item") else {}
            if lease is None and not counted_failed and current.get("counted_failed") \
                    and not why_not_free(current, part, settings.now()):
                counted_failed = True   # a redriven job, counted among the failed: count it from there
                continue
            state = "lost" if lease else (why_not_free(current, part, settings.now()) or "lost")
            raise JobNotRecorded(f"user {user} of run {run_id}: job record changed by another attempt ({state})", state)
        if run_reason.get("Code") == "ConditionalCheckFailed":
            if not run_reason.get("Item"):
                raise InvalidJob(f"job names unknown run {run_id}")
            # This job closes the run, or the run changed since we looked: try again knowing it.
            closing = from_item(run_reason["Item"])
            continue
        raise RetryableJobError(f"user {user} of run {run_id}: recording was cancelled ({user_reason or run_reason}); "
                                "retrying")
    raise RetryableJobError(f"user {user} of run {run_id}: the run kept changing while recording; retrying")


def _user_update(settings: Settings, run_id: str, user: str, lease: Lease | None, status: str, stats: dict,
                 reason: str, part: int, counted_failed: bool) -> dict:
    now = settings.now()
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
    names = {"#s": "status", "#u": "user"}
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
        "TableName": settings.runs_table, "Key": naming.user_key(run_id, user),
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


def _run_update(settings: Settings, run_id: str, change: dict[str, int], closing: dict | None) -> dict:
    now = naming.iso(settings.now())
    names = {"#pk": contract.RUNS_PARTITION_KEY, "#s": "status"}
    values = {f":{name}": {"N": str(value)} for name, value in change.items()}
    values[":now"] = {"S": now}
    sets = ["last_progress_at = :now"]
    if closing is None:
        # Optimistic: this job is not the one that closes the run (or re-closes it SUCCEEDED).
        condition = "attribute_exists(#pk) AND NOT (" + _closes(change, values) + ")"
    else:
        after = {k: int(closing.get(k, 0)) + change.get(k, 0) for k in ("users_pending", "users_failed")}
        final = _final_status(closing.get("status"), after)
        condition = ("attribute_exists(#pk) AND #s = :seen_status AND users_pending = :seen_pending "
                     "AND users_failed = :seen_failed")
        values.update({":seen_status": {"S": closing.get("status", "")},
                       ":seen_pending": {"N": str(int(closing.get("users_pending", 0)))},
                       ":seen_failed": {"N": str(int(closing.get("users_failed", 0)))}})
        if final:
            sets += ["#s = :final", "completed_at = :now"]
            values[":final"] = {"S": final}
    return {"Update": {
        "TableName": settings.runs_table, "Key": naming.run_key(run_id),
        "UpdateExpression": f"SET {', '.join(sets)} ADD " + ", ".join(f"{name} :{name}" for name in change),
        "ConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }}


def _closes(change: dict[str, int], values: dict) -> str:
    """The condition under which this change closes the run: its last pending job finishes while
    it is IN_PROGRESS, or its last failed job, redriven, now succeeds on a closed PARTIAL run."""
    tests = []
    if change.get("users_pending"):
        values.update({":in_progress": {"S": IN_PROGRESS}, ":one_left": {"N": "1"}})
        tests.append("#s = :in_progress AND users_pending <= :one_left")
    if change.get("users_failed", 0) < 0:
        values.update({":partial": {"S": PARTIAL}, ":one_left": {"N": "1"}, ":none_left": {"N": "0"}})
        tests.append("#s = :partial AND users_failed <= :one_left AND users_pending <= :none_left")
    # DynamoDB refuses redundant parentheses: one test stands alone.
    return tests[0] if len(tests) == 1 else " OR ".join(f"({test})" for test in tests)


def _final_status(status: str | None, after: dict[str, int]) -> str | None:
    if status == IN_PROGRESS and after["users_pending"] <= 0:
        return SUCCEEDED if after["users_failed"] <= 0 else PARTIAL
    if status == PARTIAL and after["users_pending"] <= 0 and after["users_failed"] <= 0:
        return SUCCEEDED
    return None


def _closed_record(settings: Settings, seen: dict, change: dict[str, int]) -> dict | None:
    after = {k: int(seen.get(k, 0)) + change.get(k, 0) for k in ("users_pending", "users_failed")}
    final = _final_status(seen.get("status"), after)
    if final is None:
        return None
    record = dict(seen)
    for name, delta in change.items():
        record[name] = int(record.get(name, 0)) + delta
    record.update(status=final, completed_at=naming.iso(settings.now()))
    return record


def try_finalize(dynamodb, settings: Settings, run_id: str) -> dict | None:
    """Close the run if every job has finished; the record when this call closed it, else None.
    Exactly one caller wins the conditional write, so exactly one summary is published. A
    consistent read first spares the two conditional writes while jobs are still pending."""
    current = get_run(dynamodb, settings, run_id)
    if current is None or current.get("status") != IN_PROGRESS or current.get("users_pending", 1) > 0:
        return None
    for status, failed_test in ((SUCCEEDED, "users_failed = :zero"), (PARTIAL, "users_failed > :zero")):
        try:
            attributes = dynamodb.update_item(
                TableName=settings.runs_table, Key=naming.run_key(run_id),
                UpdateExpression="SET #s = :final, completed_at = :now",
                ConditionExpression=f"#s = :running AND users_pending <= :zero AND {failed_test}",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":final": {"S": status}, ":running": {"S": IN_PROGRESS},
                                           ":zero": {"N": "0"}, ":now": {"S": naming.iso(settings.now())}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
            return from_item(attributes)
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
    return None


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
    """The newest runs, any status, newest first, through the ByStatus index."""
    found = []
    for status in RUN_STATUSES:
        response = dynamodb.query(
            TableName=settings.runs_table, IndexName=contract.RUNS_BY_STATUS_INDEX,
            KeyConditionExpression="#s = :status", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":status": {"S": status}}, ScanIndexForward=False, Limit=limit,
        )
        found.extend(from_item(i) for i in response.get("Items", []))
    found = [r for r in found if r.get(contract.RUNS_SORT_KEY) == naming.RUN_ITEM]
    return sorted(found, key=lambda r: r[contract.RUNS_PARTITION_KEY], reverse=True)[:limit]


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
    found = []
    for page in dynamodb.get_paginator("query").paginate(
            TableName=settings.runs_table, ConsistentRead=True,
            KeyConditionExpression="#pk = :run AND begins_with(#sk, :users)",
            ExpressionAttributeNames={"#pk": contract.RUNS_PARTITION_KEY, "#sk": contract.RUNS_SORT_KEY},
            ExpressionAttributeValues={":run": {"S": run_id}, ":users": {"S": naming.USER_ITEM_PREFIX}}):
        found += [from_item(item) for item in page.get("Items", [])]
    return sorted(found, key=lambda job: job.get("user", ""))


def is_pending(job: dict) -> bool:
    """A user job record with no outcome yet: running, between retries, handed on."""
    return job.get("status") not in (*FINAL_JOB_STATUSES, FAILED)


def user_history(dynamodb, settings: Settings, user: str, limit: int = 10) -> list[dict]:
    response = dynamodb.query(
        TableName=settings.runs_table, IndexName=contract.RUNS_BY_USER_INDEX,
        KeyConditionExpression="#u = :user", ExpressionAttributeNames={"#u": "user"},
        ExpressionAttributeValues={":user": {"S": user}}, ScanIndexForward=False, Limit=limit,
    )
    return [from_item(i) for i in response.get("Items", [])]
