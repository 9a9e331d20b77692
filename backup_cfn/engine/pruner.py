"""Garbage collection: expire old snapshots, then delete content no kept snapshot references.

Lock-free and safe against workers running at the same time (argument in docs/engine.md):
1. list manifests and journal segments at T0; keep what the retention rules keep (engine.retention:
   each user's newest, every one inside the retention, the checkpoint before it, and the optional
   weekly, monthly and yearly snapshots) and the journal segments a point-in-time restore inside the
   window can need (journal_cut);
2. read the kept ones: the referenced hashes;
3. delete the expired manifests and segments (and the progress parts of split jobs no message can
   resume);
4. scan the index; a candidate is STORED, unreferenced, and last referenced before T_scan - grace;
5. mark it DELETING on condition that state and last_referenced are still what the scan read
   (a worker's touch in between makes this fail: the worker wins), delete the object, delete the item.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.contentstore import (
    DELETING,
    STORED,
    conditional_update,
    from_item,
    is_conditional_failure,
    key_of,
)
from backup_cfn.engine.errors import ManifestError, PruneAborted
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.retention import BASE, RetentionPolicy, decide
from backup_cfn.engine.settings import Settings

DELETE_BATCH = 1000  # DeleteObjects' maximum
# A split job's progress parts are kept while a message that could resume its chain may exist.
PART_RETENTION_SECONDS = contract.JOB_MESSAGE_RETENTION_SECONDS + contract.DEAD_LETTER_RETENTION_SECONDS


@dataclass
class PruneReport:
    dry_run: bool
    manifests_total: int = 0
    manifests_kept: int = 0
    manifests_expired: list[str] = field(default_factory=list)
    unreadable_manifests: list[str] = field(default_factory=list)
    referenced_hashes: int = 0
    content_entries: int = 0
    content_deleted: list[str] = field(default_factory=list)
    bytes_deleted: int = 0
    content_in_grace: int = 0
    content_raced: int = 0         # touched by a worker between scan and mark: kept
    parts_deleted: int = 0         # progress parts of split jobs whose messages are all gone
    journal_segments_total: int = 0
    journal_segments_expired: list[str] = field(default_factory=list)
    unreadable_segments: list[str] = field(default_factory=list)
    # Per retention rule: (description, snapshots it keeps, snapshots only it keeps).
    rules: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "manifests_total": self.manifests_total,
                "manifests_kept": self.manifests_kept, "manifests_expired": len(self.manifests_expired),
                "kept_by_rule": {rule: kept for rule, (_, kept, _) in self.rules.items()},
                "unreadable_manifests": len(self.unreadable_manifests),
                "journal_segments_total": self.journal_segments_total,
                "journal_segments_expired": len(self.journal_segments_expired),
                "unreadable_journal_segments": len(self.unreadable_segments),
                "referenced_hashes": self.referenced_hashes, "content_entries": self.content_entries,
                "content_deleted": len(self.content_deleted), "bytes_deleted": self.bytes_deleted,
                "content_in_grace": self.content_in_grace, "content_raced": self.content_raced,
                "parts_deleted": self.parts_deleted}


def split_by_retention(manifests: list[tuple[str, str, str]], now, policy: RetentionPolicy) -> tuple[list, list]:
    """(kept, expired) under the retention rules: each user's newest is always kept, whatever its age."""
    decision = decide(manifests, now, policy)
    return decision.kept, decision.expired


def journal_cut(decision, segments: list, users_with_snapshots: set[str]) -> tuple[list, list]:
    """(kept, expired) journal segments. A user's segments are needed from the replay start of its
    oldest checkpoint before the retention window (the `base` rule's): a point-in-time view inside
    the window starts at a checkpoint no older, and replays only changes after its replay start,
    which live in segments captured after it (engine/journal.py, invariant 4). A user without a
    checkpoint before the window (new inside it, or never backed up yet) keeps every segment."""
    oldest_base: dict[str, str] = {}
    for user, run_id, _ in decision.kept_by(BASE):
        oldest_base[user] = min(run_id, oldest_base.get(user, run_id))
    kept, expired = [], []
    for segment in segments:
        base = oldest_base.get(segment.user)
        if base is not None and segment.user in users_with_snapshots and segment.captured_at < journal.replay_start(base):
            expired.append(segment)
        else:
            kept.append(segment)
    return kept, expired


def scheduled_prune(clients, settings: Settings, *, dry_run: bool = False) -> PruneReport:
    """The daily collection as the pruner function runs it: prune, then announce on the topic
    what was deleted (nothing deleted, nothing announced)."""
    report = prune(clients, settings, dry_run=dry_run)
    if clients.sns is not None and settings.topic_arn and (report.content_deleted or report.manifests_expired):
        clients.sns.publish(TopicArn=settings.topic_arn, Subject=f"backup-cfn {settings.stack_name}: pruned",
                            Message="\n".join(f"{k}: {v}" for k, v in report.to_dict().items()))
    return report


def prune(clients, settings: Settings, *, dry_run: bool = False,
          before_mark: Callable[[], None] | None = None) -> PruneReport:
    report = PruneReport(dry_run=dry_run)
    started = settings.now()
    parts: list[tuple[str, str, str]] = []
    manifests = list_manifests(clients.s3, settings.backup_bucket, parts=parts)
    segments = journal.list_segments(clients.s3, settings.backup_bucket)
    policy = settings.retention()
    decision = decide(manifests, started, policy)
    kept = decision.kept
    kept_segments, expired_segments = journal_cut(decision, segments, {user for user, _, _ in manifests})
    report.journal_segments_total = len(segments)
    report.journal_segments_expired = [segment.key for segment in expired_segments]
    parts_cutoff = naming.run_id_for(started - timedelta(seconds=PART_RETENTION_SECONDS))
    stale_parts = [key for _, run_id, key in parts if run_id < parts_cutoff]
    report.manifests_total, report.manifests_kept = len(manifests), len(kept)
    report.manifests_expired = [key for _, _, key in decision.expired]
    report.rules = {rule: (policy.describe(rule), len(decision.kept_by(rule)), len(decision.only_by(rule)))
                    for rule in policy.active_rules()}

    referenced: set[str] = set()
    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        for key, result in zip([k for _, _, k in kept],
                               pool.map(lambda k: _hashes_of(clients.s3, settings.backup_bucket, k), [k for _, _, k in kept])):
            if result is None:
                # An unreadable kept manifest: we cannot know what it references, so delete nothing.
                report.unreadable_manifests.append(key)
            else:
                referenced |= result
        for segment, result in zip(kept_segments, pool.map(
                lambda ref: _segment_hashes(clients.s3, settings.backup_bucket, ref.key), kept_segments)):
            if result is None:
                report.unreadable_segments.append(segment.key)
            else:
                referenced |= result
    report.referenced_hashes = len(referenced)
    if report.unreadable_manifests or report.unreadable_segments:
        return report

    if not dry_run:
        _delete_keys(clients.s3, settings.backup_bucket,
                     report.manifests_expired + report.journal_segments_expired + stale_parts)
    report.parts_deleted = len(stale_parts)

    scan_started = settings.now()
    threshold = naming.iso_precise(scan_started - timedelta(hours=settings.gc_grace_hours))
    candidates = []
    for entry in _scan_index(clients.dynamodb, settings.content_table):
        report.content_entries += 1
        sha = entry[contract.CONTENT_PARTITION_KEY]
        if entry.get("state") == DELETING and _older_than(entry.get("deleting_at"), settings.stale_deleting_after_seconds, settings):
            candidates.append(entry)  # a collector died mid-delete: finish its work
            continue
        if entry.get("state") != STORED or sha in referenced:
            continue
        if entry.get("last_referenced", "") >= threshold:
            report.content_in_grace += 1
            continue
        candidates.append(entry)
    # A job's touch-to-manifest window (at most settings.job_max_seconds, however many invocations
    # it takes) must stay inside the grace period, measured from T0.
    if (settings.now() - started).total_seconds() > settings.gc_grace_hours * 3600 - settings.job_max_seconds:
        raise PruneAborted("the sweep outlasted the grace period minus the longest a job may take; nothing deleted")
    if before_mark is not None:
        before_mark()
    for entry in candidates:
        sha = entry[contract.CONTENT_PARTITION_KEY]
        if dry_run:
            report.content_deleted.append(sha)
            report.bytes_deleted += int(entry.get("size", 0))
            continue
        if not _mark_deleting(clients.dynamodb, settings, entry):
            report.content_raced += 1
            continue
        clients.s3.delete_object(Bucket=settings.backup_bucket, Key=naming.content_key(sha))
        _delete_entry(clients.dynamodb, settings, sha)
        report.content_deleted.append(sha)
        report.bytes_deleted += int(entry.get("size", 0))
    return report


def _older_than(stamp: str | None, seconds: int, settings: Settings) -> bool:
    return stamp is not None and (settings.now() - naming.parse_iso(stamp)).total_seconds() > seconds


def _hashes_of(s3, bucket: str, key: str) -> set[str] | None:
    try:
        return read_manifest(s3, bucket, key).hashes()
    except ManifestError:
        return None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in contract.MISSING_OBJECT_CODES:
            return set()  # deleted since the listing (another collector): references nothing now
        raise


def _segment_hashes(s3, bucket: str, key: str) -> set[str] | None:
    try:
        return journal.read_segment(s3, bucket, key).hashes()
    except ManifestError:
        return None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in contract.MISSING_OBJECT_CODES:
            return set()
        raise


def _scan_index(dynamodb, table: str):
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page.get("Items", []):
            yield from_item(item)


def _mark_deleting(dynamodb, settings: Settings, entry: dict) -> bool:
    now = naming.iso_precise(settings.now())
    if entry.get("state") == DELETING:
        condition, values = "#state = :deleting AND deleting_at = :seen", {":seen": {"S": entry["deleting_at"]}}
    else:
        condition = "#state = :stored AND last_referenced = :seen"
        values = {":stored": {"S": STORED}, ":seen": {"S": entry["last_referenced"]}}
    return conditional_update(
        dynamodb, TableName=settings.content_table, Key=key_of(entry[contract.CONTENT_PARTITION_KEY]),
        UpdateExpression="SET #state = :deleting, deleting_at = :now",
        ConditionExpression=condition, ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":deleting": {"S": DELETING}, ":now": {"S": now}, **values},
    )


def _delete_entry(dynamodb, settings: Settings, sha: str) -> None:
    try:
        dynamodb.delete_item(TableName=settings.content_table, Key=key_of(sha),
                             ConditionExpression="#state = :deleting", ExpressionAttributeNames={"#state": "state"},
                             ExpressionAttributeValues={":deleting": {"S": DELETING}})
    except ClientError as exc:
        # A worker took over a stale DELETING entry and stores the content again: leave it to it.
        if not is_conditional_failure(exc):
            raise


def _delete_keys(s3, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), DELETE_BATCH):
        batch = keys[i:i + DELETE_BATCH]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            raise PruneAborted(f"could not delete {len(errors)} expired manifest(s), e.g. {errors[0].get('Key')}: "
                               f"{errors[0].get('Code')}")
