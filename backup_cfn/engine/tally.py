"""A run's counters and its closing with no key every job writes: sharded tallies.

A record (a backup run, a restore) has a header item and `shards` tally items; each user's job
lives in its shard's partition beside that shard's tally, and its status is written as
`job_status`, which the ByStatus index does not hold. A job moves its user item to a final status
and adds its figures to its shard's tally in one transaction, so each tally counts exactly the user
items of its shard in each state. The job that takes its shard's pending count to zero then reads
every tally and, if none is pending, closes the record with one write conditional on the status it
read: at most one close per transition, and the last job always sees every other job's commit.
docs/engine.md ("Counting and closing") has the argument; docs/scale.md the rates.

The header counts the shards that still have a job pending (`shards_open`): the job that empties
a shard takes one off in the same transaction, so only the job that empties the last one reads the
tallies; anyone may run the close check again (a redelivery, the dead-letter consumer), it closes
only a record with nothing pending.

A header without `shards` (a run started before this layout) is read and written as one: its
counters live on the header itself, its user items under the header's key, with `status`.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.contentstore import from_item, is_conditional_failure, to_item

TALLY_ITEM = "TALLY"
JOB_STATUS = "job_status"       # a sharded record's user items keep their status here, out of ByStatus
LEGACY_STATUS = "status"
USER_COUNTERS = ("users_pending", "users_done", "users_failed", "users_skipped")
# Reasons a cancelled transaction applied nothing and may simply be sent again after a pause.
RETRY_IN_PLACE = ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
CLOSE_TRIES = 5
BATCH_GET_MAX = 100
# A shard per this many users, up to contract.RUN_TALLY_SHARDS: one job in 32 empties its shard (one
# more transaction), and a run of 2,048 users or more has every shard (docs/scale.md: 17 carry the
# writes of 1,000 workers).
USERS_PER_SHARD = 32


def shards_for(users: int, most: int = contract.RUN_TALLY_SHARDS) -> int:
    return max(1, min(most, -(-users // USERS_PER_SHARD)))


def shard_of(user: str, shards: int) -> int:
    """A user's shard: stable across processes and runs (not Python's salted hash)."""
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % shards if shards else 0


@dataclass(frozen=True)
class Layout:
    """Where a record's items are: its header, its tallies, its user items."""
    record_id: str
    header_item: str = naming.RUN_ITEM
    shards: int = 0

    @property
    def status_attribute(self) -> str:
        return JOB_STATUS if self.shards else LEGACY_STATUS

    def partition(self, shard: int) -> str:
        return f"{self.record_id}#{shard:02d}" if self.shards else self.record_id

    def partitions(self) -> list[str]:
        return [self.partition(k) for k in range(self.shards)] if self.shards else [self.record_id]

    def header_key(self) -> dict:
        return _key(self.record_id, self.header_item)

    def user_key(self, user: str) -> dict:
        return _key(self.partition(shard_of(user, self.shards)), naming.user_item(user))

    def tally_key_of(self, user: str) -> dict:
        return _key(self.partition(shard_of(user, self.shards)), TALLY_ITEM) if self.shards else self.header_key()

    def tally_keys(self) -> list[dict]:
        return [_key(p, TALLY_ITEM) for p in self.partitions()] if self.shards else [self.header_key()]


def _key(partition: str, item: str) -> dict:
    return {contract.RUNS_PARTITION_KEY: {"S": partition}, contract.RUNS_SORT_KEY: {"S": item}}


def layout_of(header: dict, header_item: str = naming.RUN_ITEM) -> Layout:
    return Layout(header[contract.RUNS_PARTITION_KEY], header_item, int(header.get("shards") or 0))


# Headers this process has read: a Lambda execution environment runs many jobs of one record, and
# the layout a header names never changes.
_known: dict[tuple[str, str, str], dict] = {}
_known_lock = threading.Lock()


def get_header(dynamodb, table: str, record_id: str, header_item: str = naming.RUN_ITEM) -> dict | None:
    item = dynamodb.get_item(TableName=table, Key=_key(record_id, header_item), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def known_header(dynamodb, table: str, record_id: str, header_item: str = naming.RUN_ITEM) -> dict | None:
    """The header as this process first read it (one read per record per execution environment);
    None, not remembered, for a record that does not exist (yet)."""
    key = (table, record_id, header_item)
    with _known_lock:
        known = _known.get(key)
    if known is not None:
        return known
    header = get_header(dynamodb, table, record_id, header_item)
    if header is not None:
        with _known_lock:
            _known[key] = header
    return header


def layout(dynamodb, table: str, record_id: str, header_item: str = naming.RUN_ITEM) -> Layout:
    """The record's layout (today's for a record that does not exist: its keys then find nothing)."""
    header = known_header(dynamodb, table, record_id, header_item)
    return layout_of(header, header_item) if header else Layout(record_id, header_item)


def job_record(values: dict) -> dict:
    """A user item as the engine reads it: `status` whichever attribute holds it, `run_id` without
    its shard (the ByUser index returns the item's partition key)."""
    record = dict(values)
    if JOB_STATUS in record:
        record[LEGACY_STATUS] = record.pop(JOB_STATUS)
    partition = record.get(contract.RUNS_PARTITION_KEY)
    if isinstance(partition, str) and "#" in partition:
        record[contract.RUNS_PARTITION_KEY], _, shard = partition.partition("#")
        record["shard"] = int(shard) if shard.isdigit() else shard
    return record


# --- creating a record ------------------------------------------------------------------------------

def creation_items(table: str, header: dict, layout_: Layout, users: list[str], stat_fields: tuple[str, ...]) -> list:
    """One transaction: the header (only if absent) and every tally, each shard's pending count its
    users'. A record with no shards carries its counters on the header (the caller's fields)."""
    names = {"#pk": contract.RUNS_PARTITION_KEY}
    items = [{"Put": {"TableName": table, "Item": to_item(header), "ConditionExpression": "attribute_not_exists(#pk)",
                      "ExpressionAttributeNames": names}}]
    if not layout_.shards:
        return items
    pending = [0] * layout_.shards
    for user in users:
        pending[shard_of(user, layout_.shards)] += 1
    items[0]["Put"]["Item"]["shards_open"] = {"N": str(sum(1 for n in pending if n))}
    expires = header.get(contract.RUNS_TTL_ATTRIBUTE)
    for shard, key in enumerate(layout_.tally_keys()):
        tally = {contract.RUNS_PARTITION_KEY: key[contract.RUNS_PARTITION_KEY]["S"], contract.RUNS_SORT_KEY: TALLY_ITEM,
                 "users_pending": pending[shard], **{name: 0 for name in USER_COUNTERS[1:] + stat_fields},
                 contract.RUNS_TTL_ATTRIBUTE: expires}
        items.append({"Put": {"TableName": table, "Item": to_item(tally)}})
    return items


# --- a job's share ----------------------------------------------------------------------------------

def tally_update(table: str, layout_: Layout, user: str, change: dict[str, int], now: str, *,
                 optimistic: bool, expect_last: bool = False) -> dict:
    """The transaction item adding a job's change to its shard's tally. Optimistic: refused (and
    the tally returned) when this change takes the shard's pending count, or for a redriven job its
    failed count with nothing pending, to zero: the caller then commits without the condition and
    runs the close check. Expecting the last (a job told it is probably its shard's last): refused
    unless this change takes the shard's pending count to zero, so the header's open shards can be
    counted down in the same transaction."""
    names = {"#pk": contract.RUNS_PARTITION_KEY}
    values = {f":{name}": {"N": str(value)} for name, value in change.items()}
    values[":now"] = {"S": now}
    condition = "attribute_exists(#pk)"
    if expect_last:
        condition += f" AND {_last_of_shard(change, values)}"
    elif optimistic:
        last = _last_of_shard(change, values)
        if last:
            condition += f" AND NOT ({last})"
    return {"Update": {
        "TableName": table, "Key": layout_.tally_key_of(user),
        "UpdateExpression": "SET last_progress_at = :now ADD " + ", ".join(f"{name} :{name}" for name in change),
        "ConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }}


def _last_of_shard(change: dict[str, int], values: dict) -> str:
    tests = []
    if change.get("users_pending", 0) < 0:
        values[":one_left"] = {"N": "1"}
        tests.append("users_pending <= :one_left")
    if change.get("users_failed", 0) < 0:
        values.update({":one_left": {"N": "1"}, ":none_left": {"N": "0"}})
        tests.append("users_failed <= :one_left AND users_pending <= :none_left")
    # DynamoDB refuses redundant parentheses: one test stands alone.
    return tests[0] if len(tests) == 1 else " OR ".join(f"({test})" for test in tests)


def shard_emptied(table: str, layout_: Layout, *, optimistic: bool) -> dict:
    """The transaction item by which the job that empties its shard takes it off the header's open
    shards. Optimistic: refused when it is the last open shard; the caller then commits without the
    condition and runs the close check."""
    values = {":minus_one": {"N": "-1"}}
    condition = "attribute_exists(#pk)"
    if optimistic:
        values[":one"] = {"N": "1"}
        condition += " AND shards_open > :one"
    return {"Update": {
        "TableName": table, "Key": layout_.header_key(), "UpdateExpression": "ADD shards_open :minus_one",
        "ConditionExpression": condition, "ExpressionAttributeNames": {"#pk": contract.RUNS_PARTITION_KEY},
        "ExpressionAttributeValues": values,
    }}


def progress_update(table: str, layout_: Layout, user: str, now: str) -> dict:
    """A transaction item noting that a job moved (a hand-on): what `runs` reads to tell a stalled run."""
    return {"Update": {
        "TableName": table, "Key": layout_.tally_key_of(user),
        "UpdateExpression": "SET last_progress_at = :now", "ConditionExpression": "attribute_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": contract.RUNS_PARTITION_KEY}, "ExpressionAttributeValues": {":now": {"S": now}},
    }}


class UserRefused(Exception):
    """The job's own item refused its update (its condition): the item as it is, for the caller."""

    def __init__(self, item: dict):
        super().__init__("the job's record refused the update")
        self.item = item


class UnknownRecord(Exception):
    """The tally the job adds to does not exist: the record was never created."""


class StillCancelled(Exception):
    """Cancelled on every try (conflicts or throttling that did not clear, or an unexpected reason)."""


CONFLICT_RETRIES = 8
CONFLICT_BASE_SECONDS = 0.05
COMMIT_TRIES = CONFLICT_RETRIES + 4


def conflict_delay(random_fraction: float, conflicts: int) -> float:
    """Before the n-th retry of a cancelled transaction: 50 ms doubling, times 0.5-1 (at most 6.4 s)."""
    return CONFLICT_BASE_SECONDS * 2 ** (conflicts - 1) * (0.5 + random_fraction / 2)


def commit(dynamodb, table: str, layout_: Layout, user: str, user_update: dict, change: dict[str, int], now: str, *,
           sleep, random, probably_last: bool = False) -> bool:
    """One transaction: the job's own item (`user_update`, an Update with its condition) and, when
    `change` is not empty, its shard's tally. Conflicts and throttled items are sent again in place.
    The job that empties its shard also takes the shard off the header. True when this commit must
    be followed by the close check (it emptied the last open shard, or a redriven job emptied its
    shard's failed count); UserRefused, UnknownRecord or StillCancelled otherwise.

    `probably_last` (the initiator enqueued this job last of its shard): the first try asserts that
    it empties its shard and counts the shard down on the header with it, saving the refused try of
    the optimistic path when the guess is right; when it is wrong, the tally refuses and the job
    commits optimistically, as without the guess. Either way only a commit whose tally condition
    held counts a shard down: the guess changes the number of tries, never the counts."""
    expect_last = bool(probably_last and layout_.shards and change.get("users_pending", 0) < 0
                       and change.get("users_failed", 0) >= 0)
    last_of_shard = last_of_run = False
    retries = 0
    for _ in range(COMMIT_TRIES):
        items = [user_update]
        if change:
            items.append(tally_update(table, layout_, user, change, now, optimistic=not last_of_shard,
                                      expect_last=expect_last))
        empties_shard = bool((last_of_shard or expect_last) and layout_.shards and change.get("users_pending"))
        if empties_shard:
            items.append(shard_emptied(table, layout_, optimistic=not last_of_run))
        try:
            dynamodb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            user_reason, tally_reason, header_reason = ((exc.response.get("CancellationReasons") or []) + [{}] * 3)[:3]
            if retry_in_place(exc) and retries < CONFLICT_RETRIES:
                retries += 1
                sleep(conflict_delay(random(), retries))
                continue
            if user_reason.get("Code") == "ConditionalCheckFailed":
                raise UserRefused(from_item(user_reason["Item"]) if user_reason.get("Item") else {}) from None
            if tally_reason.get("Code") == "ConditionalCheckFailed":
                if not tally_reason.get("Item"):
                    raise UnknownRecord(layout_.record_id) from None
                if expect_last:
                    expect_last = False  # not the last of its shard after all: commit optimistically
                else:
                    last_of_shard = True    # this job empties its shard: say so on the header too
                continue
            if header_reason.get("Code") == "ConditionalCheckFailed":
                last_of_run = True      # ... and it is the last open shard: commit, then close
                continue
            raise StillCancelled(", ".join(cancellation_codes(exc))) from None
        return bool(change) and (last_of_run or (last_of_shard and not empties_shard))
    raise StillCancelled("the record kept changing")


def cancellation_codes(exc: ClientError) -> list[str]:
    return [(reason or {}).get("Code") or "None" for reason in exc.response.get("CancellationReasons") or []]


def retry_in_place(exc: ClientError) -> bool:
    """A cancelled transaction one of whose items met a conflict or throttling (nothing applied)."""
    return any(code in RETRY_IN_PLACE for code in cancellation_codes(exc))


# --- reading and closing ----------------------------------------------------------------------------

def read_tallies(dynamodb, table: str, layout_: Layout) -> list[dict]:
    """Every tally, strongly consistent (BatchGetItem: up to 100 keys a request, unprocessed ones again)."""
    keys, found = layout_.tally_keys(), []
    for start in range(0, len(keys), BATCH_GET_MAX):
        pending = {table: {"Keys": keys[start:start + BATCH_GET_MAX], "ConsistentRead": True}}
        while pending:
            response = dynamodb.batch_get_item(RequestItems=pending)
            found += [from_item(item) for item in response.get("Responses", {}).get(table, [])]
            pending = response.get("UnprocessedKeys") or {}
    return found


def summed(tallies: list[dict], stat_fields: tuple[str, ...]) -> dict:
    totals = {name: sum(int(t.get(name) or 0) for t in tallies) for name in USER_COUNTERS + stat_fields}
    moved = [t.get("last_progress_at") for t in tallies if t.get("last_progress_at")]
    if moved:
        totals["last_progress_at"] = max(moved)
    return totals


def current(dynamodb, table: str, header: dict, header_item: str, stat_fields: tuple[str, ...]) -> dict:
    """The header with its counters as the tallies have them now (a legacy header carries its own)."""
    layout_ = layout_of(header, header_item)
    if not layout_.shards:
        return header
    totals = summed(read_tallies(dynamodb, table, layout_), stat_fields)
    return {**header, **totals, "last_progress_at": max(header.get("last_progress_at") or "",
                                                         totals.get("last_progress_at") or "") or None}


@dataclass(frozen=True)
class Closing:
    """A record's statuses: the one jobs close from, and the two it closes to."""
    in_progress: str
    succeeded: str
    partial: str

    def decide(self, status: str | None, totals: dict) -> str | None:
        if status == self.in_progress and totals["users_pending"] <= 0:
            return self.succeeded if totals["users_failed"] <= 0 else self.partial
        if status == self.partial and totals["users_pending"] <= 0 and totals["users_failed"] <= 0:
            return self.succeeded
        return None


def close_if_done(dynamodb, table: str, record_id: str, header_item: str, closing: Closing, now: str,
                  stat_fields: tuple[str, ...]) -> dict | None:
    """Close the record if no job is pending (or re-close a PARTIAL one whose failed jobs all
    succeeded since): the closed record when this call's write did it, else None. The write is
    conditional on the status (and, on a legacy header, the counters) read, so of concurrent
    callers exactly one closes; a refused one reads again, in case the record moved on."""
    for _ in range(CLOSE_TRIES):
        header = get_header(dynamodb, table, record_id, header_item)
        if header is None or header.get("status") not in (closing.in_progress, closing.partial):
            return None
        layout_ = layout_of(header, header_item)
        record = current(dynamodb, table, header, header_item, stat_fields)
        final = closing.decide(header.get("status"), record)
        if final is None:
            return None
        names = {"#s": "status"}
        values = {":final": {"S": final}, ":now": {"S": now}, ":seen": {"S": header["status"]}}
        sets = ["#s = :final", "completed_at = :now"]
        condition = "#s = :seen"
        if layout_.shards:
            for name in USER_COUNTERS + stat_fields:
                values[f":{name}"] = {"N": str(int(record.get(name) or 0))}
                sets.append(f"{name} = :{name}")
        else:
            for name in ("users_pending", "users_failed"):
                values[f":seen_{name}"] = {"N": str(int(record.get(name) or 0))}
                condition += f" AND {name} = :seen_{name}"
        try:
            dynamodb.update_item(TableName=table, Key=layout_.header_key(), UpdateExpression="SET " + ", ".join(sets),
                                 ConditionExpression=condition, ExpressionAttributeNames=names,
                                 ExpressionAttributeValues=values)
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            continue
        return {**record, "status": final, "completed_at": now}
    return None
