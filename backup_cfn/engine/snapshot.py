"""One chunk of a user's folder, in listing order, inside an invocation's deadline: each object's
content hash and each content it needs stored once.

An object whose key, size and ETag match the previous snapshot reuses its hash without a request;
a new or changed one is read once (S3's stored SHA-256 when the listing says it has one, else a
streamed GET pinned to the listed ETag) and its content, if the previous snapshot does not name
it, is stored through the store-once protocol (engine/contentstore.py). Reading and storing run
as one pipeline on the job's threads, so no thread waits for a phase to end.

The chunk ends where the listing ends, or where the deadline leaves only the reserve: work not
finished by then is dropped and done again by the next chunk (storing is idempotent), so the chunk
covers exactly the keys up to `last_key`.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterator

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.attempts import Deadline
from backup_cfn.engine.contentstore import Hook, SourceObject, ensure_stored, fresh_claim, store_claimed
from backup_cfn.engine.errors import RetryableJobError
from backup_cfn.engine.hashing import HashingStopped, stream_sha256, whole_object_sha256
from backup_cfn.engine.manifest import Entry, Manifest
from backup_cfn.engine.settings import Settings

READ_ATTEMPTS = 3
_CHANGED = ("412", "PreconditionFailed")
# Clock skew allowance between workers and the collector.
KEPT_MARGIN_SECONDS = 3600
# Reasons an object is left out of a snapshot.
VANISHED = "vanished: deleted after the listing"
FOLDER_MARKER = "folder marker (no content)"
UNHASHABLE = "too large to hash in one invocation"


@dataclass(frozen=True)
class Listed:
    path: str
    key: str
    size: int
    etag: str
    last_modified: str
    sha256_stored: bool      # the listing says S3 keeps a whole-object SHA-256 for it


@dataclass
class Chunk:
    """What one invocation covered: the entries and skipped paths of keys up to `last_key`."""
    entries: dict[str, Entry] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    files_changed: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    last_key: str | None = None
    complete: bool = False       # the listing ended inside this chunk

    @property
    def covered(self) -> int:
        return len(self.entries) + len(self.skipped)

    def as_part(self, user: str, run_id: str, created_at: str) -> Manifest:
        return Manifest(user=user, run_id=run_id, created_at=created_at, entries=self.entries, skipped=self.skipped,
                        stats={"files_changed": self.files_changed, "bytes_read": self.bytes_read,
                               "bytes_new": self.bytes_new})


class OutOfTime(Exception):
    """Only the reserve is left: stop taking on work."""


def list_pages(s3, bucket: str, user: str, after: str | None, page_size: int = 1000) -> Iterator[list[Listed | str]]:
    """The user's objects in key order from just after `after`, a page at a time; a folder marker
    (a key ending in '/') comes as its path alone."""
    prefix = f"{user}/"
    args = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
    if after:
        args["StartAfter"] = after
    for page in s3.get_paginator("list_objects_v2").paginate(**args):
        items: list[Listed | str] = []
        for obj in page.get("Contents", []):
            path = obj["Key"][len(prefix):]
            if not path or path.endswith("/"):
                items.append(obj["Key"])
                continue
            sha256_stored = "SHA256" in obj.get("ChecksumAlgorithm", []) and obj.get("ChecksumType") != "COMPOSITE"
            items.append(Listed(path, obj["Key"], obj["Size"], obj["ETag"], naming.iso(obj["LastModified"]),
                                sha256_stored))
        yield items


def kept_through_job(settings: Settings, previous_run_id: str) -> bool:
    """Whether a snapshot of that run stays inside the retention until this job has ended, however
    many invocations it takes (contract.JOB_MAX_SECONDS)."""
    deadline = settings.now() + timedelta(seconds=settings.job_max_seconds + KEPT_MARGIN_SECONDS)
    return naming.run_time(previous_run_id) > deadline - timedelta(days=settings.retention_days)


class _StoreOnce:
    """Each hash stored at most once per attempt: the first task to need it stores it (taking the
    job's lease first), the others wait for that. With `lease_with` (a fresh job of an incremental
    run), content probably new is claimed in the same request as the lease, when the lease is not
    held yet (the job's first content to store): `lease_with(item)` is True when it took both."""

    def __init__(self, clients, settings: Settings, owner: str, hook: Hook, lease: Callable[[], None],
                 lease_with: Callable[[dict], bool] | None = None):
        self.clients, self.settings, self.owner, self.hook, self.lease = clients, settings, owner, hook, lease
        self.lease_with = lease_with
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    def ensure(self, sha256: str, source: SourceObject, likely_stored: bool) -> int:
        with self._lock:
            future = self._futures.get(sha256)
            first = future is None
            if first:
                future = self._futures[sha256] = Future()
        if not first:
            future.result()
            return 0
        try:
            if (not likely_stored and self.lease_with is not None
                    and self.lease_with(fresh_claim(self.settings, sha256, source.size, self.owner))):
                copied = store_claimed(self.clients, self.settings, sha256, source, self.owner, self.hook).copied_bytes
            else:
                self.lease()
                copied = ensure_stored(self.clients, self.settings, sha256, source, self.owner, self.hook,
                                       likely_stored=likely_stored).copied_bytes
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(copied)
        return copied


@dataclass
class _Done:
    entry: Entry | None = None
    skip: str | None = None
    read: int = 0
    new: int = 0
    stopped_after: float | None = None   # seconds the object was being read when time ran out
    changed: bool = False                 # new or changed since the previous snapshot


class ChunkReader:
    """Reads one chunk: see the module's docstring."""

    def __init__(self, clients, settings: Settings, *, user: str, owner: str, previous: Manifest | None,
                 deadline: Deadline, lease: Callable[[], None], hook: Hook,
                 lease_with: Callable[[dict], bool] | None = None):
        self.clients, self.settings, self.user, self.deadline, self.hook = clients, settings, user, deadline, hook
        self.previous = previous
        self.reused = previous.hashes() if previous else set()
        self.covered = self.reused if previous is not None and kept_through_job(settings, previous.run_id) else set()
        self.store = _StoreOnce(clients, settings, owner, hook, lease, lease_with)
        self.stop = threading.Event()

    def read(self, after: str | None) -> Chunk:
        chunk = Chunk(last_key=after)
        in_flight: deque[tuple[Listed | str, Future | _Done]] = deque()
        limit = self.settings.job_threads   # no more in flight than threads: the oldest is always being worked on
        with ThreadPoolExecutor(max_workers=self.settings.job_threads) as pool:
            try:
                for page in list_pages(self.clients.s3, self.settings.source_bucket, self.user, after,
                                       self.settings.list_page_size):
                    self.hook("listed")
                    for item in page:
                        if self.deadline.passed():
                            raise OutOfTime()
                        in_flight.append((item, self._start(pool, item)))
                        self._apply_finished(in_flight, chunk, wait=len(in_flight) > limit)
                chunk.complete = True
            except OutOfTime:
                self.stop.set()   # reading in flight stops at its next block; copies in flight end
            except BaseException:
                self._abandon(in_flight)
                raise
            try:
                self._apply_finished(in_flight, chunk, wait=True, until_empty=True)
            except BaseException:
                self._abandon(in_flight)
                raise
        if in_flight:
            chunk.complete = False
        return chunk

    def _abandon(self, in_flight: deque) -> None:
        self.stop.set()
        for _, work in in_flight:
            if isinstance(work, Future):
                work.cancel()

    def _start(self, pool: ThreadPoolExecutor, item: Listed | str) -> Future | _Done:
        if isinstance(item, str):
            return _Done(skip=FOLDER_MARKER)
        old = self.previous.entries.get(item.path) if self.previous else None
        if old is not None and old.size == item.size and old.etag == item.etag:
            entry = Entry(old.sha256, item.size, item.etag, item.last_modified, old.version_id)
            if entry.sha256 in self.covered:
                return _Done(entry=entry)
            # Unversioned copy source: the object is pinned by its unchanged ETag instead.
            source = SourceObject(self.settings.source_bucket, item.key, item.etag, item.size)
            return pool.submit(self._store_known, entry, source)
        if not item.sha256_stored and item.size > self.settings.max_hash_bytes:
            return _Done(skip=self._unhashable(item.size), changed=True)
        return pool.submit(self._identify_and_store, item)

    def _unhashable(self, size: int) -> str:
        limit = self.settings.max_hash_bytes / 1024**3
        return (f"{UNHASHABLE}: {size / 1024**3:.1f} GiB and no SHA-256 stored by S3 (limit {limit:.0f} GiB "
                "without one); upload it with a SHA-256 checksum (e.g. aws s3 cp --checksum-algorithm SHA256)")

    def _apply_finished(self, in_flight: deque, chunk: Chunk, *, wait: bool, until_empty: bool = False) -> None:
        """Add finished work to the chunk in listing order; stop at the first unfinished item (or,
        at the end, at the first item whose reading the deadline stopped)."""
        while in_flight:
            item, work = in_flight[0]
            if isinstance(work, Future):
                if not (wait or work.done()):
                    return
                try:
                    done = work.result()
                except OutOfTime:
                    return   # not started before the time ran out
            else:
                done = work
            if done.stopped_after is not None:
                if done.stopped_after < self.deadline.budget / 2:
                    return   # started late: the next chunk reads it with its whole budget
                done = _Done(skip=f"{UNHASHABLE}: still reading it after {done.stopped_after:.0f} s", changed=True)
            in_flight.popleft()
            key = item if isinstance(item, str) else item.key
            path = key[len(self.user) + 1:]
            if done.entry is not None:
                chunk.entries[path] = done.entry
            else:
                chunk.skipped[path] = done.skip or ""
            chunk.bytes_read += done.read
            chunk.bytes_new += done.new
            chunk.files_changed += done.changed
            chunk.last_key = key
            wait = wait and (until_empty or len(in_flight) > self.settings.job_threads)

    def _store_known(self, entry: Entry, source: SourceObject) -> _Done:
        if self.stop.is_set():
            raise OutOfTime()
        return _Done(entry=entry, new=self.store.ensure(entry.sha256, source, likely_stored=True))

    def _identify_and_store(self, item: Listed) -> _Done:
        if self.stop.is_set():
            raise OutOfTime()
        started = self.deadline.elapsed()
        try:
            found = self._identify(item)
        except HashingStopped:
            return _Done(stopped_after=self.deadline.elapsed() - started)
        if isinstance(found, str):
            return _Done(skip=found, changed=True)
        entry, source, read = found
        self.hook("hashed")
        new = 0
        if entry.sha256 not in self.covered:
            new = self.store.ensure(entry.sha256, source, likely_stored=entry.sha256 in self.reused)
        return _Done(entry=entry, read=read, new=new, changed=True)

    def _should_stop(self) -> bool:
        return self.stop.is_set() or self.deadline.remaining_seconds() <= 0

    def _identify(self, item: Listed):
        """(Entry, SourceObject, bytes read) for a new or changed object, or the reason it is left out."""
        s3, bucket = self.clients.s3, self.settings.source_bucket
        if not item.sha256_stored:
            # One GET, pinned to the listed ETag, gives the content and its identity at once.
            try:
                sha256, read, meta = stream_sha256(s3, bucket, item.key, etag=item.etag, should_stop=self._should_stop)
                return self._found(item, sha256, read, meta)
            except ClientError as exc:
                if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                    return VANISHED
                if _error_code(exc) not in _CHANGED:
                    raise
        for _ in range(READ_ATTEMPTS):
            # The HEAD gives the current identity and, when the uploader asked S3 for one, a
            # whole-object SHA-256 that saves reading the object.
            try:
                head = s3.head_object(Bucket=bucket, Key=item.key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                    return VANISHED
                raise
            sha256, read = whole_object_sha256(head), 0
            if sha256 is None:
                try:
                    sha256, read, _ = stream_sha256(s3, bucket, item.key, version_id=head.get("VersionId"),
                                                    etag=head["ETag"], should_stop=self._should_stop)
                except ClientError as exc:
                    if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                        return VANISHED
                    if _error_code(exc) in _CHANGED:
                        continue  # overwritten between HEAD and GET: look again
                    raise
            return self._found(item, sha256, read, head)
        raise RetryableJobError(f"{item.key} keeps changing while being read; retrying later")

    def _found(self, item: Listed, sha256: str, read: int, meta: dict):
        etag, size, version = meta["ETag"], meta["ContentLength"], meta.get("VersionId")
        entry = Entry(sha256, size, etag, naming.iso(meta["LastModified"]), version)
        return entry, SourceObject(self.settings.source_bucket, item.key, etag, size, version), read


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
