"""Reading many snapshots at once: `find` across users and time, and the restore drill.

A snapshot's key names its user and run, so a listing alone narrows a search by user and time
without reading anything. What must be read is read on a bounded pool of threads (S3 answers
requests in parallel; one at a time, a read costs a round trip each). Manifests never change once
written, so an optional local cache keyed by the listing's ETag saves every read of a manifest
read before: a repeated search costs only the listing.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine.errors import ManifestError
from backup_cfn.engine.manifest import Manifest, SnapshotRef, decode

READ_THREADS = 32        # parallel manifest reads; the clients' pool holds 64 connections
WINDOW_PER_THREAD = 4    # reads queued ahead per thread: memory stays bounded on 60,000 snapshots


def newest_per_user(refs: Iterable[SnapshotRef]) -> dict[str, SnapshotRef]:
    newest: dict[str, SnapshotRef] = {}
    for ref in refs:
        if ref.user not in newest or ref.run_id > newest[ref.user].run_id:
            newest[ref.user] = ref
    return newest


def in_period(refs: Iterable[SnapshotRef], since: str | None, until: str | None) -> list[SnapshotRef]:
    """The snapshots whose run IDs lie in [since, until] (run IDs sort as times)."""
    return [r for r in refs if (since is None or r.run_id >= since) and (until is None or r.run_id <= until)]


class ManifestCache:
    """Manifests read before, by bucket, key and ETag: an object written again with other bytes has
    another ETag, so a hit is the object as listed. Files are private to the user (0600 in a 0700
    folder): they hold file names and hashes of client data, no content."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, bucket: str, ref: SnapshotRef) -> Path:
        name = hashlib.sha256(f"{bucket}/{ref.key}".encode()).hexdigest()
        etag = "".join(c for c in ref.etag if c.isalnum() or c == "-")
        return self.root / bucket / f"{name}-{etag}.json.gz"

    def get(self, bucket: str, ref: SnapshotRef) -> bytes | None:
        if not ref.etag:
            return None
        try:
            return self._path(bucket, ref).read_bytes()
        except OSError:
            return None

    def put(self, bucket: str, ref: SnapshotRef, data: bytes) -> None:
        if not ref.etag:
            return
        path = self._path(bucket, ref)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(partial, path)
        except OSError:
            pass  # a cache that cannot be written is a cache miss next time, not an error

    def forget_except(self, bucket: str, refs: Iterable[SnapshotRef]) -> int:
        """Delete cached manifests the bucket no longer lists (expired snapshots); returns how many."""
        keep = {self._path(bucket, ref).name for ref in refs}
        removed = 0
        folder = self.root / bucket
        for path in folder.glob("*.json.gz") if folder.is_dir() else []:
            if path.name not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


@dataclass
class ReadStats:
    read: int = 0          # GetObject requests made
    cached: int = 0        # served from the local cache
    problems: list[str] = field(default_factory=list)


def read_snapshots(s3, bucket: str, refs: list[SnapshotRef], *, threads: int = READ_THREADS,
                   cache: ManifestCache | None = None, stats: ReadStats | None = None
                   ) -> Iterator[tuple[SnapshotRef, Manifest]]:
    """Each readable snapshot with its manifest, in the order given. An unreadable or vanished one
    (expired by the collector since the listing) is left out and named in `stats.problems`."""
    stats = stats if stats is not None else ReadStats()

    def load(ref: SnapshotRef) -> tuple[SnapshotRef, Manifest | None, str | None]:
        where = f"s3://{bucket}/{ref.key}"
        data = cache.get(bucket, ref) if cache else None
        if data is not None:
            try:
                return ref, decode(data, where), "cached"
            except ManifestError:
                data = None   # a damaged cache file: read the object again
        try:
            data = s3.get_object(**ref.get_kwargs(bucket))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in contract.MISSING_OBJECT_CODES:
                return ref, None, f"{where}: gone since the listing (expired by the collector)"
            raise
        try:
            manifest = decode(data, where)
        except ManifestError as exc:
            return ref, None, str(exc)
        if cache:
            cache.put(bucket, ref, data)
        return ref, manifest, None

    window = max(1, threads) * WINDOW_PER_THREAD
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(refs), window):
            for ref, manifest, note in pool.map(load, refs[start:start + window]):
                if note == "cached":
                    stats.cached += 1
                elif manifest is not None or note:
                    stats.read += 1
                if manifest is None:
                    stats.problems.append(note or f"{ref.key}: unreadable")
                    continue
                yield ref, manifest


def read_one(s3, bucket: str, ref: SnapshotRef, cache: ManifestCache | None = None) -> Manifest:
    """One snapshot; ManifestError when it cannot be read (named in the message)."""
    stats = ReadStats()
    for _, manifest in read_snapshots(s3, bucket, [ref], threads=1, cache=cache, stats=stats):
        return manifest
    raise ManifestError(stats.problems[0] if stats.problems else f"{ref.key}: unreadable")
