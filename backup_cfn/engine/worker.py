"""Back up one user for one run: incremental, content-deduplicated, safe to retry at any point.

Steps (each a hook point for the crash tests): leased -> listed -> hashed -> (claimed_content ->
copied -> marked_stored per new content) -> stored -> manifest_written -> recorded -> finalized.
A retry after a crash at any step reaches the same final state: the content index never lets two
attempts copy the same content, the manifest is written once, the counters move once.
"""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import attempts, naming, runs
from backup_cfn.engine.contentstore import Hook, SourceObject, ensure_stored, no_hook
from backup_cfn.engine.errors import InvalidJob, ManifestError, RetryableJobError
from backup_cfn.engine.hashing import read_source_sha256, whole_object_sha256
from backup_cfn.engine.manifest import Entry, Manifest, list_manifests, read_manifest, write_manifest
from backup_cfn.engine.settings import Settings

MESSAGE_VERSION = 1
_CHANGED = ("412", "PreconditionFailed")
READ_ATTEMPTS = 3


@dataclass(frozen=True)
class Job:
    run_id: str
    user: str

    def body(self) -> str:
        return json.dumps({"version": MESSAGE_VERSION, "run_id": self.run_id, "user": self.user},
                          separators=(",", ":"))


def _short(value) -> str:
    """A field of a bad message as it goes into the reason and the logs: at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_job(body: str) -> Job:
    """The job in a queue message; InvalidJob (never retried to success) for anything else."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        raise InvalidJob(f"message body is not JSON: {str(body)[:80]!r}") from None
    if not isinstance(data, dict):
        raise InvalidJob("message body is not a JSON object")
    if data.get("version") != MESSAGE_VERSION:
        raise InvalidJob(f"unsupported job message version {_short(data.get('version'))}")
    if not naming.is_run_id(data.get("run_id")):
        raise InvalidJob(f"job has no valid run_id: {_short(data.get('run_id'))}")
    if not naming.is_valid_user(data.get("user")):
        raise InvalidJob(f"job has no valid user: {_short(data.get('user'))}")
    return Job(run_id=data["run_id"], user=data["user"])


@dataclass
class JobOutcome:
    job: Job
    status: str                       # COMPLETED, SKIPPED, DUPLICATE
    stats: dict = field(default_factory=dict)
    reason: str = ""
    finalized_run: dict | None = None  # the run record, when this job closed the run


@dataclass(frozen=True)
class _Listed:
    path: str
    key: str
    size: int
    etag: str
    last_modified: str


def handle_message(clients, settings: Settings, body: str, *, receive_count: int = 1,
                   hook: Hook = no_hook) -> JobOutcome:
    """One queue message. Raises on failure so the message is retried (and dead-lettered after
    the queue's maxReceiveCount); records the job FAILED on its last delivery."""
    job = parse_job(body)
    run = runs.get_run(clients.dynamodb, settings, job.run_id)
    if run is None:
        raise InvalidJob(f"job names unknown run {job.run_id}")
    lease = attempts.acquire_lease(clients.dynamodb, settings, job.run_id, job.user, uuid.uuid4().hex)
    if lease is None:
        return JobOutcome(job, "DUPLICATE", finalized_run=_finalize(clients, settings, job.run_id))
    hook("leased")
    try:
        outcome = backup_user(clients, settings, job, lease, hook, previous_run_id=run.get("previous_run_id"))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if attempts.is_last_delivery(settings, receive_count):
            runs.finish_job(clients.dynamodb, settings, job.run_id, job.user, lease, runs.FAILED, {}, reason[:1000])
            outcome = JobOutcome(job, runs.FAILED, reason=reason, finalized_run=_finalize(clients, settings, job.run_id))
            exc.outcome = outcome  # the handler reports it in metrics, then lets the message go to the DLQ
        else:
            attempts.release_lease(clients.dynamodb, settings, job.run_id, job.user, lease, reason)
        raise
    return outcome


def _finalize(clients, settings: Settings, run_id: str) -> dict | None:
    record = runs.try_finalize(clients.dynamodb, settings, run_id)
    if record is not None:
        runs.publish_summary(clients.sns, settings, record)
    return record


def backup_user(clients, settings: Settings, job: Job, lease: attempts.Lease, hook: Hook = no_hook, *,
                previous_run_id: str | None = None) -> JobOutcome:
    # Only a retried job can find its manifest written (by an attempt that died before recording it).
    retried = lease.previous_status is not None
    written = _manifest_if_any(clients, settings, naming.manifest_key(job.user, job.run_id)) if retried else None
    if written is not None:
        # An earlier attempt wrote the manifest and died before recording it: record it now.
        return _record(clients, settings, job, lease, runs.COMPLETED, written.stats, "", hook)
    previous = _previous_manifest(clients, settings, job, previous_run_id)
    listed, folder_markers = _list_user_objects(clients.s3, settings.source_bucket, job.user)
    hook("listed")
    if not listed and previous is None:
        reason = f"no objects under '{job.user}/' in the source bucket (unknown user)"
        return _record(clients, settings, job, lease, runs.SKIPPED, {}, reason, hook)

    snapshot = _identify(clients, settings, listed, previous)
    snapshot.skipped.update({p: "folder marker (no content)" for p in folder_markers})
    hook("hashed")
    bytes_new = _store_new_content(clients, settings, job, snapshot, previous, hook)
    hook("stored")
    bytes_scanned = sum(e.size for e in snapshot.entries.values())
    stats = {
        "files_total": len(snapshot.entries), "files_changed": snapshot.files_changed, "bytes_scanned": bytes_scanned,
        "bytes_read": snapshot.bytes_read, "bytes_new": bytes_new, "bytes_deduplicated": bytes_scanned - bytes_new,
        "objects_skipped": len(snapshot.skipped),
    }
    manifest = Manifest(user=job.user, run_id=job.run_id, created_at=naming.iso(settings.now()),
                        entries=snapshot.entries, skipped=snapshot.skipped, stats=stats)
    write_manifest(clients.s3, settings.backup_bucket, manifest, settings.sse())
    hook("manifest_written")
    return _record(clients, settings, job, lease, runs.COMPLETED, stats, "", hook)


@dataclass
class _Snapshot:
    """What the user's folder holds now: each path's entry, where each distinct content can be
    copied from, what could not be backed up and why, and what finding it cost."""
    entries: dict[str, Entry] = field(default_factory=dict)
    sources: dict[str, SourceObject] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    files_changed: int = 0
    bytes_read: int = 0


def _identify(clients, settings: Settings, listed: list[_Listed], previous: Manifest | None) -> _Snapshot:
    """Each listed object's content hash: from the previous snapshot when its size and ETag are
    unchanged (no request at all), otherwise from S3's stored checksum or a streamed read."""
    snapshot = _Snapshot()
    to_hash = []
    for item in listed:
        old = previous.entries.get(item.path) if previous else None
        if old is not None and old.size == item.size and old.etag == item.etag:
            snapshot.entries[item.path] = Entry(old.sha256, item.size, item.etag, item.last_modified, old.version_id)
            # Unversioned copy source: the object is pinned by its unchanged ETag instead.
            snapshot.sources.setdefault(old.sha256, SourceObject(settings.source_bucket, item.key, item.etag,
                                                                 item.size))
        else:
            to_hash.append(item)
    snapshot.files_changed = len(to_hash)
    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        for item, result in zip(to_hash, pool.map(lambda i: _hash_object(clients.s3, settings, i), to_hash)):
            if isinstance(result, str):
                snapshot.skipped[item.path] = result
                continue
            entry, source, read = result
            snapshot.entries[item.path] = entry
            snapshot.sources.setdefault(entry.sha256, source)
            snapshot.bytes_read += read
    return snapshot


def _store_new_content(clients, settings: Settings, job: Job, snapshot: _Snapshot, previous: Manifest | None,
                       hook: Hook) -> int:
    """Make every content the snapshot names stored and safe from the collector; returns the bytes
    copied into the store by this job."""
    owner = naming.job_id(job.run_id, job.user)
    reused = {e.sha256 for e in previous.entries.values()} if previous else set()
    # Content the previous snapshot names needs no touch while that snapshot is certain to outlive
    # this job inside the retention: every collection that cannot see our manifest keeps it, and
    # so keeps its content (docs/engine.md, "Garbage collection").
    covered = reused if previous is not None and _kept_through_job(settings, previous.run_id) else set()
    to_store = sorted(h for h in snapshot.sources if h not in covered)
    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        results = list(pool.map(lambda h: ensure_stored(clients, settings, h, snapshot.sources[h], owner, hook,
                                                        likely_stored=h in reused), to_store))
    return sum(r.copied_bytes for r in results)


# Clock skew allowance between workers and the collector.
KEPT_MARGIN_SECONDS = 3600


def _kept_through_job(settings: Settings, previous_run_id: str) -> bool:
    """Whether a snapshot of that run stays inside the retention until this job has ended."""
    deadline = settings.now() + timedelta(seconds=settings.stale_after_seconds + KEPT_MARGIN_SECONDS)
    return naming.run_time(previous_run_id) > deadline - timedelta(days=settings.retention_days)


def _record(clients, settings: Settings, job: Job, lease: attempts.Lease, status: str, stats: dict, reason: str,
            hook: Hook) -> JobOutcome:
    runs.finish_job(clients.dynamodb, settings, job.run_id, job.user, lease, status, stats, reason)
    hook("recorded")
    finalized = _finalize(clients, settings, job.run_id)
    hook("finalized")
    return JobOutcome(job, status, stats=stats, reason=reason, finalized_run=finalized)


def _manifest_if_any(clients, settings: Settings, key: str) -> Manifest | None:
    try:
        return read_manifest(clients.s3, settings.backup_bucket, key)
    except ManifestError:
        return None   # unreadable: as if absent (an unreadable one of this run is written again)
    except ClientError as exc:
        if _error_code(exc) in contract.MISSING_OBJECT_CODES:
            return None
        raise


def _previous_manifest(clients, settings: Settings, job: Job, previous_run_id: str | None) -> Manifest | None:
    """The user's newest snapshot before this run, used only to skip reading unchanged objects.
    Read by key from the run before; listed only when the user has none there (new, skipped or
    failed then). Without any earlier run there is nothing to look for."""
    if not previous_run_id:
        return None
    found = _manifest_if_any(clients, settings, naming.manifest_key(job.user, previous_run_id))
    if found is not None:
        return found
    earlier = [key for _, run_id, key in list_manifests(clients.s3, settings.backup_bucket, job.user)
               if run_id < job.run_id]
    for key in reversed(earlier):
        found = _manifest_if_any(clients, settings, key)
        if found is not None:
            return found
    return None


def _list_user_objects(s3, bucket: str, user: str) -> tuple[list[_Listed], list[str]]:
    prefix = f"{user}/"
    listed, markers = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = obj["Key"][len(prefix):]
            if not path or path.endswith("/"):
                if path:
                    markers.append(path)
                continue
            listed.append(_Listed(path, obj["Key"], obj["Size"], obj["ETag"],
                                  naming.iso(obj["LastModified"])))
    return listed, markers


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _hash_object(s3, settings: Settings, item: _Listed):
    """(Entry, SourceObject, bytes read) for a new or changed object, or the reason it is skipped.
    The HEAD gives the current identity (it may have changed since the listing) and, when the
    uploader asked S3 for one, a whole-object SHA-256 that saves reading the object."""
    for _ in range(READ_ATTEMPTS):
        try:
            head = s3.head_object(Bucket=settings.source_bucket, Key=item.key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                return "vanished: deleted after the listing"
            raise
        etag, size, version = head["ETag"], head["ContentLength"], head.get("VersionId")
        sha256, read = whole_object_sha256(head), 0
        if sha256 is None:
            try:
                sha256, read = read_source_sha256(s3, settings.source_bucket, item.key, version_id=version, etag=etag)
            except ClientError as exc:
                if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                    return "vanished: deleted after the listing"
                if _error_code(exc) in _CHANGED:
                    continue  # overwritten between HEAD and GET: look again
                raise
        entry = Entry(sha256, size, etag, naming.iso(head["LastModified"]), version)
        return entry, SourceObject(settings.source_bucket, item.key, etag, size, version), read
    raise RetryableJobError(f"{item.key} keeps changing while being read; retrying later")
