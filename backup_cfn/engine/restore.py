"""Restore a user's snapshot, or many users' at once: to a directory (every file's SHA-256 checked)
or to S3 (server-side copies). Needs only a bucket holding manifests/ and content/, so it works from
the replica: the disaster-recovery path."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.errors import ManifestError, RestoreError
from backup_cfn.engine.hashing import whole_object_sha256
from backup_cfn.engine.integrity import ContentVersions, copy_source
from backup_cfn.engine.manifest import Manifest, SnapshotRef, list_snapshots, read_manifest
from backup_cfn.engine.readback import ReadTally, read_back_genuine

COPY_LIMIT = 5 * 1024**3
FILE_THREADS = 8      # one user's files at once
USERS_AT_ONCE = 8     # users at once, each with its own file pool: 64 requests, the clients' pool


@dataclass
class RestoreReport(ReadTally):
    user: str
    run_id: str
    to: str = ""
    # Content read from another version than the first tried, because the first did not match its
    # SHA-256 (engine/integrity.py): restored correctly, and reported as tampering.
    tampered: list[str] = field(default_factory=list)
    problems_total: int | None = None   # when more problems happened than `problems` lists

    @property
    def ok(self) -> bool:
        return not self.problems


def choose_snapshot(refs: list[SnapshotRef], user: str, bucket: str, *, run_id: str | None = None,
                    at: datetime | None = None) -> SnapshotRef:
    """The snapshot of a run ID, the newest at or before `at`, or the newest, of one user's
    snapshots sorted by run."""
    if not refs:
        raise RestoreError(f"no backups of user {user!r} in s3://{bucket}")
    if run_id is not None:
        for ref in refs:
            if ref.run_id == run_id:
                return ref
        raise RestoreError(f"user {user!r} has no backup from run {run_id} "
                           f"(runs: {', '.join(r.run_id for r in refs[-5:])})")
    if at is not None:
        limit = naming.run_id_for(at)
        eligible = [r for r in refs if r.run_id <= limit]
        if not eligible:
            raise RestoreError(f"user {user!r} has no backup at or before {naming.iso(at)} "
                               f"(oldest: {refs[0].run_id})")
        return eligible[-1]
    return refs[-1]


def choose_manifest(s3, bucket: str, user: str, *, run_id: str | None = None, at: datetime | None = None) -> str:
    """The manifest key for a run ID, the newest at or before `at`, or the newest."""
    return choose_snapshot(list_snapshots(s3, bucket, user), user, bucket, run_id=run_id, at=at).key


def select(manifest: Manifest, path_prefix: str | None) -> dict:
    """The entries under a path prefix (a plain string prefix, like S3's), or all of them."""
    if not path_prefix:
        return dict(manifest.entries)
    return {p: e for p, e in manifest.entries.items() if p.startswith(path_prefix)}


def safe_relative(path: str) -> PurePosixPath | None:
    """A manifest path as a relative path that stays inside the target directory, or None."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or "\\" in path or "\0" in path:
        return None
    return pure


def restore_to_directory(s3, bucket: str, manifest: Manifest, target: Path, *, path_prefix: str | None = None,
                         threads: int = FILE_THREADS, progress: Callable[[int], None] | None = None,
                         reader: ContentVersions | None = None) -> RestoreReport:
    """Each file streamed through SHA-256 into place; a content whose bytes do not match its name is
    read from the next version `reader` offers (integrity.ContentVersions: the current key first,
    or in the vault by version), and the substitution reported."""
    report = RestoreReport(manifest.user, manifest.run_id)
    entries = select(manifest, path_prefix)
    target.mkdir(parents=True, exist_ok=True)
    reader = reader or ContentVersions(s3, bucket)

    def restore_one(item):
        path, entry = item
        relative = safe_relative(path)
        if relative is None:
            return f"{path}: unsafe path (absolute or with '..'); not restored"
        destination = target.joinpath(*relative.parts)
        partial = destination.with_name(destination.name + ".restoring")
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                def rewind():
                    out.seek(0)
                    out.truncate()
                back = read_back_genuine(reader, entry.sha256, entry.size, sink=out.write, rewind=rewind)
            problem = back.problem
        except OSError as exc:
            # A name this file system cannot hold (a segment over 255 bytes, say): that file only.
            back, problem = None, f"cannot write here: {exc.strerror or exc}"
        if problem:
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass
            return f"{path}: {problem}; not restored"
        if back.tampered:
            report.tampered.append(f"{path}: {back.tampered}")
        os.replace(partial, destination)
        if progress:
            progress(entry.size)
        return None

    return _restore_all(report, entries, restore_one, threads)


def copy_entry(s3, bucket: str, path: str, entry, target_bucket: str, key: str, *,
               transient: tuple[str, ...] = (), source: dict | None = None) -> str | None:
    """One file back to S3 by a server-side copy of its content (`source`: a CopySource, default
    the content's current version), the copy's S3-computed SHA-256 compared with the snapshot's;
    None, or the problem (naming the path). An error whose code is in `transient` is raised instead
    (the caller retries the whole job)."""
    source = source or {"Bucket": bucket, "Key": naming.content_key(entry.sha256)}
    try:
        if entry.size > COPY_LIMIT:
            from boto3.s3.transfer import TransferConfig
            s3.copy(source, target_bucket, key, Config=TransferConfig(multipart_threshold=COPY_LIMIT))
        else:
            result = s3.copy_object(Bucket=target_bucket, Key=key, CopySource=source,
                                    ChecksumAlgorithm="SHA256", TaggingDirective="REPLACE")
            stored = whole_object_sha256(result.get("CopyObjectResult", {}))
            if stored is not None and stored != entry.sha256:
                return f"{path}: SHA-256 mismatch after copy (expected {entry.sha256[:16]})"
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in transient:
            raise
        return f"{path}: copy failed: {error.get('Code')}: {error.get('Message')}"
    return None


def target_key(prefix: str, path: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{path}" if prefix else path


def restore_to_s3(s3, bucket: str, manifest: Manifest, target_bucket: str, target_prefix: str, *,
                  path_prefix: str | None = None, threads: int = FILE_THREADS,
                  progress: Callable[[int], None] | None = None, reader: ContentVersions | None = None) -> RestoreReport:
    """Server-side copies; S3 computes each copy's SHA-256, and a copy that does not match is made
    again from the next version `reader` offers (the target key's last write wins)."""
    report = RestoreReport(manifest.user, manifest.run_id)
    entries = select(manifest, path_prefix)
    reader = reader or ContentVersions(s3, bucket)

    def restore_one(item):
        path, entry = item
        tried, problem = 0, f"{path}: content {entry.sha256[:16]} is missing"
        for candidate in reader.candidates(entry.sha256):
            tried += 1
            problem = copy_entry(s3, bucket, path, entry, target_bucket, target_key(target_prefix, path),
                                 source=copy_source(candidate))
            if problem is not None:
                continue
            if tried > 1:
                report.tampered.append(f"{path}: " + _substituted(entry.sha256, tried, candidate))
            if progress:
                progress(entry.size)
            return None
        return problem

    return _restore_all(report, entries, restore_one, threads)


def _substituted(sha256: str, tried: int, used: dict) -> str:
    return (f"tampered: {tried - 1} version(s) of content {sha256[:16]} do not match its SHA-256; restored from "
            f"version {used.get('VersionId', 'current')}, which does")


def _restore_all(report: RestoreReport, entries: dict, restore_one: Callable, threads: int) -> RestoreReport:
    """Restore every entry on `threads` threads; each returns None or its problem, in path order."""
    items = sorted(entries.items())
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for (path, entry), problem in zip(items, pool.map(restore_one, items)):
            if problem:
                report.problems.append(problem)
            else:
                report.files += 1
                report.bytes += entry.size
    return report


def load_for_restore(s3, bucket: str, user: str, *, run_id: str | None = None, at: datetime | None = None) -> Manifest:
    return read_manifest(s3, bucket, choose_manifest(s3, bucket, user, run_id=run_id, at=at))


# --- many users at once (disaster recovery) -------------------------------------------------------

@dataclass(frozen=True)
class DirectoryTarget:
    """A local folder; many users go to <folder>/<user>/."""
    root: Path

    def for_user(self, user: str) -> "DirectoryTarget":
        return DirectoryTarget(self.root / user)

    def restore(self, s3, bucket: str, manifest: Manifest, **options) -> RestoreReport:
        return restore_to_directory(s3, bucket, manifest, self.root, **options)

    def __str__(self) -> str:
        return str(self.root)


@dataclass(frozen=True)
class BucketTarget:
    """A bucket and key prefix; many users go to <prefix>/<user>/."""
    bucket: str
    prefix: str = ""

    def for_user(self, user: str) -> "BucketTarget":
        return BucketTarget(self.bucket, "/".join(p for p in (self.prefix.strip("/"), user) if p))

    def restore(self, s3, bucket: str, manifest: Manifest, **options) -> RestoreReport:
        return restore_to_s3(s3, bucket, manifest, self.bucket, self.prefix, **options)

    def __str__(self) -> str:
        prefix = self.prefix.strip("/")
        return f"s3://{self.bucket}/{prefix + '/' if prefix else ''}"


def every_users_snapshot(s3, bucket: str, *, limit: str | None = None,
                         refs: list[SnapshotRef] | None = None) -> tuple[list[SnapshotRef], dict[str, str]]:
    """Every user's newest snapshot at or before run ID `limit` (or the newest), from one listing of
    manifests/ (or the given `refs`: the vault's catalogue); and the users with only later
    snapshots, each with the reason."""
    listed: dict[str, list[SnapshotRef]] = {}
    for ref in refs if refs is not None else list_snapshots(s3, bucket):          # sorted by user, then run
        listed.setdefault(ref.user, []).append(ref)
    chosen, missing = [], {}
    for user, refs in listed.items():
        eligible = [ref for ref in refs if limit is None or ref.run_id <= limit]
        if eligible:
            chosen.append(eligible[-1])
        else:
            missing[user] = f"no backup at or before {limit} (oldest: {refs[0].run_id})"
    return chosen, missing


def named_snapshots(s3, bucket: str, users: list[str], *, run_id: str | None = None, at: datetime | None = None,
                    threads: int = USERS_AT_ONCE,
                    refs: list[SnapshotRef] | None = None) -> tuple[list[SnapshotRef], dict[str, str]]:
    """Each named user's snapshot as `choose_snapshot` picks it (one listing per user, in parallel,
    or from the given `refs`); and the users without one, each with the reason."""
    def choose(user: str) -> SnapshotRef | str:
        mine = [r for r in refs if r.user == user] if refs is not None else list_snapshots(s3, bucket, user)
        try:
            return choose_snapshot(mine, user, bucket, run_id=run_id, at=at)
        except RestoreError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = dict(zip(users, pool.map(choose, users)))
    return ([ref for ref in found.values() if isinstance(ref, SnapshotRef)],
            {user: reason for user, reason in found.items() if isinstance(reason, str)})


def restore_users(s3, bucket: str, snapshots: list[SnapshotRef], target, *, path_prefix: str | None = None,
                  users_at_once: int = USERS_AT_ONCE, threads: int = FILE_THREADS,
                  progress: Callable[[int], None] | None = None,
                  user_done: Callable[[RestoreReport], None] | None = None,
                  load: Callable[[SnapshotRef], Manifest] | None = None,
                  reader: ContentVersions | None = None) -> list[RestoreReport]:
    """Restore each snapshot to `target.for_user(user)`, `users_at_once` users in parallel, each on
    its own pool of `threads`. A user that fails (an unreadable manifest or content, a target it
    cannot write) is reported with its problems; the others go on. Reports in the snapshots' order.
    `load` gives each user's files (default: the snapshot's manifest; a point-in-time view instead)."""
    load = load or (lambda ref: read_manifest(s3, bucket, ref.key, ref.version_id))
    def restore_one_user(ref: SnapshotRef) -> RestoreReport:
        started = time.perf_counter()
        destination = target.for_user(ref.user)
        try:
            manifest = load(ref)
            report = destination.restore(s3, bucket, manifest, path_prefix=path_prefix, threads=threads,
                                         progress=progress, reader=reader)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            report = RestoreReport(ref.user, ref.run_id, problems=[
                f"snapshot {ref.key} unreadable: {error.get('Code')}: {error.get('Message')}"])
        except ManifestError as exc:
            report = RestoreReport(ref.user, ref.run_id, problems=[str(exc)])
        except OSError as exc:     # the user's folder itself: a file in the way, no space, read-only
            report = RestoreReport(ref.user, ref.run_id, problems=[
                f"cannot restore to {destination}: {exc.strerror or exc}"])
        report.seconds = time.perf_counter() - started
        report.to = str(destination)
        if user_done:
            user_done(report)
        return report

    with ThreadPoolExecutor(max_workers=users_at_once) as pool:
        return list(pool.map(restore_one_user, snapshots))
