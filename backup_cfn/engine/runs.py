"""The runs table: one RUN record per run and one USER#<user> record per user job.

Counters move in the same transaction as the user record that justifies them, so a retried or
duplicated job never counts twice. Run and job statuses use disjoint words, so the ByStatus
index answers "which runs are in progress" without reading user records.
"""
from __future__ import annotations

import json

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
    get_user_job,
)
from backup_cfn.engine.contentstore import from_item, is_conditional_failure, to_item
from backup_cfn.engine.errors import RetryableJobError
from backup_cfn.engine.settings import Settings

# Run statuses
ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL = "ENQUEUING", "IN_PROGRESS", "SUCCEEDED", "PARTIAL"
RUN_STATUSES = (ENQUEUING, IN_PROGRESS, SUCCEEDED, PARTIAL)
FINAL_RUN_STATUSES = (SUCCEEDED, PARTIAL)
# Figures a job adds to its run.
STAT_FIELDS = ("files_total", "files_changed", "bytes_scanned", "bytes_read", "bytes_new", "bytes_deduplicated",
               "objects_skipped")


def get_run(dynamodb, settings: Settings, run_id: str) -> dict | None:
    item = dynamodb.get_item(TableName=settings.runs_table, Key=naming.run_key(run_id), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


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


def _run_counter_update(run_id: str, settings: Settings, lease: Lease, counter: str, stats: dict) -> dict:
    # A job redriven after being counted FAILED moves from the failed count instead of pending.
    source = "users_failed" if lease.previous_status == FAILED else "users_pending"
    adds = {source: -1, counter: 1, **{k: int(stats.get(k, 0)) for k in STAT_FIELDS}}
    expression = "ADD " + ", ".join(f"{name} :{name}" for name in adds)
    return {"Update": {
        "TableName": settings.runs_table, "Key": naming.run_key(run_id),
        "UpdateExpression": expression, "ConditionExpression": "attribute_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": contract.RUNS_PARTITION_KEY},
        "ExpressionAttributeValues": {f":{name}": {"N": str(value)} for name, value in adds.items()},
    }}


def finish_job(dynamodb, settings: Settings, run_id: str, user: str, lease: Lease, status: str, stats: dict,
               reason: str = "") -> None:
    """Record the job's final status and add its figures to the run, atomically, once."""
    counter = {COMPLETED: "users_done", SKIPPED: "users_skipped", FAILED: "users_failed"}[status]
    if lease.previous_status == FAILED and status == FAILED:
        counter_update = None   # still failed: already counted
    else:
        counter_update = _run_counter_update(run_id, settings, lease,
                                             counter, stats if status == COMPLETED else {})
    values = {":status": {"S": status}, ":running": {"S": RUNNING}, ":attempt": {"S": lease.attempt_id},
              ":now": {"S": naming.iso(settings.now())}, ":reason": {"S": reason},
              **{f":{k}": {"N": str(int(stats.get(k, 0)))} for k in STAT_FIELDS}}
    user_update = {"Update": {
        "TableName": settings.runs_table, "Key": naming.user_key(run_id, user),
        "UpdateExpression": ("SET #s = :status, finished_at = :now, reason = :reason, "
                             + ", ".join(f"{k} = :{k}" for k in STAT_FIELDS) + " REMOVE lease_until"),
        "ConditionExpression": "#s = :running AND attempt_id = :attempt",
        "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": values,
    }}
    items = [user_update] + ([counter_update] if counter_update else [])
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            raise RetryableJobError(f"user {user} of run {run_id}: lease lost before recording; retrying") from exc
        raise


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


def user_history(dynamodb, settings: Settings, user: str, limit: int = 10) -> list[dict]:
    response = dynamodb.query(
        TableName=settings.runs_table, IndexName=contract.RUNS_BY_USER_INDEX,
        KeyConditionExpression="#u = :user", ExpressionAttributeNames={"#u": "user"},
        ExpressionAttributeValues={":user": {"S": user}}, ScanIndexForward=False, Limit=limit,
    )
    return [from_item(i) for i in response.get("Items", [])]
