"""The nightly run as the reconciliation of continuous protection: what the journal says a user's
files are, against what the listing finds.

S3's events reach the journal at least once, but late, and not always: EventBridge drops an event
it could not deliver for 24 hours (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html),
and S3 may send one event for two writes to one key of an unversioned bucket made at the same time
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html). So each job starts
from the previous snapshot plus the journal (`expected`: also the worker's "previous snapshot", so
a change already captured costs the nightly a touch instead of a read), and after the listing
counts a difference as a missed change when it is older than the RPO target before the job
started (a younger one may still be on its way). Missed changes are written to the journal as one
reconcile segment, so a point-in-time view includes them from the reconciliation on.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.journal import DELETE, PUT, RECONCILED, Change, Segment
from backup_cfn.engine.manifest import Entry, Manifest
from backup_cfn.engine.pointintime import view_since


def expected_view(s3, bucket: str, user: str, previous: Manifest | None, now: datetime) -> Manifest | None:
    """The previous snapshot with the journal's changes since, as of now; None when there is neither.
    It keeps the previous snapshot's run ID (the worker's shortcut asks how long that run stays kept:
    segments since it are kept at least as long)."""
    view = view_since(s3, bucket, user, previous, now)
    if previous is None and not view.segments:
        return None
    run_id = previous.run_id if previous is not None else naming.run_id_for(now)
    return replace(view.manifest, run_id=run_id)


def missed_changes(expected: Manifest | None, entries: dict[str, Entry], skipped: dict[str, str], *,
                   job_started: datetime, previous: Manifest | None) -> tuple[list[Change], int]:
    """The changes the listing shows and the journal lacks: (changes to record, how many were missed).
    A path the journal knew as changed without its content is recorded but not counted: its event
    arrived, only its content could not be read then."""
    if expected is None:
        return [], 0
    settled = job_started - timedelta(seconds=contract.RPO_TARGET_SECONDS)
    floor = naming.run_time(previous.run_id) if previous is not None else None
    changes, missed = [], 0
    for path, entry in sorted(entries.items()):
        known = expected.entries.get(path)
        if known is not None and known.sha256 == entry.sha256:
            continue
        modified = naming.parse_iso(entry.last_modified)
        if modified >= settled:
            continue
        when = max(modified, floor) if floor is not None else modified
        changes.append(Change(path=path, op=PUT, time=naming.iso(when), version_id=entry.version_id,
                              sha256=entry.sha256, size=entry.size, etag=entry.etag,
                              last_modified=entry.last_modified))
        missed += path not in expected.skipped
    for path, known in sorted(expected.entries.items()):
        if path in entries or path in skipped or naming.parse_iso(known.last_modified) >= settled:
            continue
        changes.append(Change(path=path, op=DELETE, time=naming.iso(job_started)))
        missed += 1
    return changes, missed


def record(s3, bucket: str, user: str, changes: list[Change], now: datetime, sse: dict) -> str | None:
    """Write the reconciliation's changes as one segment (before the snapshot, like any segment)."""
    if not changes:
        return None
    segment = Segment(user, naming.iso_precise(now), journal.sorted_changes(changes), source=RECONCILED)
    return journal.write_segment(s3, bucket, segment, sse)
