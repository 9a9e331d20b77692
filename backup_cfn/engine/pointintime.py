"""A user's files at any moment: the newest nightly snapshot finished by then (the checkpoint), with
the journal's changes up to that moment applied on top (docs/engine.md, "Point in time").

For each path the last change at or before the moment wins, changes of a path ordered by S3's time
and sequencer; the checkpoint's own entries count as observations at their LastModified, so a
change older than what the checkpoint saw (a late event) never overrides it. The result is a
Manifest, so restore, ls, compare and find take it as they take a snapshot.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine.journal import DELETE, Change
from backup_cfn.engine.manifest import Entry, Manifest, SnapshotRef, list_manifests, read_manifest

READ_THREADS = 8
NOT_CAPTURED = "its content was not captured"


@dataclass
class PointInTime:
    """A user's view at a moment, and what it was built from."""
    manifest: Manifest
    base_run_id: str | None          # the checkpoint (None: the journal alone)
    segments: int = 0                # journal segments read
    changes: int = 0                 # changes applied (at or before the moment)
    snapshot_only: bool = False      # before the retention window: the kept snapshot, no journal
    notes: list[str] = field(default_factory=list)


def fold(base: Manifest | None, changes: Iterable[Change]) -> tuple[dict[str, Entry], dict[str, str]]:
    """The checkpoint's entries with the changes applied, each path's latest winning: (entries,
    skipped). Pure: the property tests call it with any order and any duplicates of the changes."""
    state: dict[str, tuple[tuple, Entry | None, str | None]] = {}
    skipped = dict(base.skipped) if base else {}
    if base is not None:
        for path, entry in base.entries.items():
            state[path] = ((naming.parse_iso(entry.last_modified), ""), entry, None)
    unique = {c.identity(): c for c in changes}
    for change in sorted(unique.values(), key=Change.order):
        current = state.get(change.path)
        if current is not None and change.order() < current[0]:
            continue   # older than what is known of the path: a late delivery
        skipped.pop(change.path, None)
        if change.op == DELETE:
            state[change.path] = (change.order(), None, None)
        elif change.sha256:
            state[change.path] = (change.order(), Entry(change.sha256, change.size, change.etag,
                                                        change.last_modified or change.time, change.version_id), None)
        else:
            state[change.path] = (change.order(), None, change.skipped or NOT_CAPTURED)
    entries = {path: entry for path, (_, entry, _) in state.items() if entry is not None}
    skipped.update({path: reason for path, (_, _, reason) in state.items() if reason})
    return entries, skipped


def journal_changes(s3, bucket: str, user: str, *, since: datetime | None, until: datetime,
                    threads: int = READ_THREADS) -> tuple[list[Change], int]:
    """The user's changes with since <= time <= until, from every segment that can hold one; and
    how many segments were read. An unreadable segment raises (ManifestError): a view that silently
    lacked changes would restore the wrong files."""
    refs = journal.list_segments(s3, bucket, user, since=since)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        segments = list(pool.map(lambda ref: journal.read_segment(s3, bucket, ref.key), refs))
    changes = [c for segment in segments for c in segment.changes
               if naming.parse_iso(c.time) <= until and (since is None or naming.parse_iso(c.time) >= since)]
    return changes, len(refs)


def view_since(s3, bucket: str, user: str, base: Manifest | None, at: datetime) -> PointInTime:
    """`base` (a snapshot finished by `at`, or None) with the journal's changes up to `at`."""
    since = journal.replay_start(base.run_id) if base is not None else None
    changes, segments = journal_changes(s3, bucket, user, since=since, until=at)
    entries, skipped = fold(base, changes)
    manifest = Manifest(user=user, run_id=naming.run_id_for(at), created_at=naming.iso(at), entries=entries,
                        skipped=skipped, stats={})
    return PointInTime(manifest, base.run_id if base else None, segments, len(changes))


def view_from_first_versions(s3, bucket: str, user: str, refs: list[SnapshotRef], at: datetime, *,
                             window_start: datetime | None = None,
                             max_arrival_hours: int | None = contract.VAULT_MAX_ARRIVAL_HOURS) -> PointInTime:
    """`view_at` over a copy others can write into (the vault): the snapshots are the catalogue's
    (`refs`, each at its first version, late ones left out by the caller), the segments are read at
    their first versions, and a segment that arrived long after its capture is left out (and said
    in the notes), as a late snapshot is: a restore from the vault is what was captured, whatever
    was written over it or beside it later."""
    mine = sorted((r for r in refs if r.user == user and r.run_id <= naming.run_id_for(at)), key=lambda r: r.run_id)
    if window_start is not None and at < window_start:
        if not mine:
            raise RestoreError(f"user {user!r} has no backup at or before {naming.iso(at)}")
        snapshot = read_manifest(s3, bucket, mine[-1].key, mine[-1].version_id)
        return PointInTime(snapshot, snapshot.run_id, snapshot_only=True, notes=[
            f"{naming.iso(at)} is before the retention window (from {naming.iso(window_start)}): "
            f"the kept snapshots only; this is run {snapshot.run_id}"])
    base = None
    for ref in reversed(mine):
        candidate = read_manifest(s3, bucket, ref.key, ref.version_id)
        if naming.parse_iso(candidate.created_at) <= at:
            base = candidate
            break
    since = journal.replay_start(base.run_id) if base is not None else None
    segments = journal.first_segments(s3, bucket, user, since=since)
    late = {s.ref.key: s.lateness(max_arrival_hours) for s in segments}
    kept = [s for s in segments if not late[s.ref.key]]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        read = list(pool.map(lambda s: journal.read_segment(s3, bucket, s.ref.key, s.version_id), kept))
    changes = [c for segment in read for c in segment.changes
               if naming.parse_iso(c.time) <= at and (since is None or naming.parse_iso(c.time) >= since)]
    if base is None and not kept:
        raise RestoreError(f"user {user!r} has no backup at or before {naming.iso(at)}")
    entries, skipped = fold(base, changes)
    manifest = Manifest(user=user, run_id=naming.run_id_for(at), created_at=naming.iso(at), entries=entries,
                        skipped=skipped, stats={})
    notes = [f"journal segment {key} left out: {why}" for key, why in sorted(late.items()) if why]
    notes += [f"journal segment {s.ref.key} was written over: its first version used" for s in kept if s.versions > 1]
    return PointInTime(manifest, base.run_id if base else None, len(kept), len(changes), notes=notes)


def view_at(s3, bucket: str, user: str, at: datetime, *, window_start: datetime | None = None) -> PointInTime:
    """The user's files at `at`. Inside the retention window (`at >= window_start`, or no window
    given): the newest snapshot finished by then plus the journal. Before it, only snapshots are
    kept: the newest at or before `at`, said in the notes."""
    manifests = list_manifests(s3, bucket, user)
    limit = naming.run_id_for(at)
    earlier = [key for _, run_id, key in manifests if run_id <= limit]
    if window_start is not None and at < window_start:
        if not earlier:
            raise RestoreError(f"user {user!r} has no backup at or before {naming.iso(at)}"
                               + (f" (oldest: {manifests[0][1]})" if manifests else ""))
        snapshot = read_manifest(s3, bucket, earlier[-1])
        return PointInTime(snapshot, snapshot.run_id, snapshot_only=True, notes=[
            f"{naming.iso(at)} is before the retention window (from {naming.iso(window_start)}): every minute is "
            f"kept inside it, before it the kept snapshots only; this is run {snapshot.run_id}"])
    base = None
    for key in reversed(earlier):
        candidate = read_manifest(s3, bucket, key)
        if naming.parse_iso(candidate.created_at) <= at:
            base = candidate
            break
    view = view_since(s3, bucket, user, base, at)
    if base is None and not view.segments:
        raise RestoreError(f"user {user!r} has no backup at or before {naming.iso(at)}"
                           + (f" (oldest: {manifests[0][1]})" if manifests else ""))
    return view
