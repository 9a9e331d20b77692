"""The progress of a job split over several invocations: each chunk but the last saves what it
covered as a part (manifests/<user>/<run_id>.partNNNNN.json.gz, in the manifest format), and the
last chunk merges the parts of its chain with its own work into the snapshot.

Parts are written by the worker and deleted by the collector once their run is older than a
chain can live (engine/pruner.py); a chain restarted from scratch ignores the parts before it.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.manifest import Entry, Manifest, read_manifest
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.snapshot import UNHASHABLE, Chunk

PART_FIGURES = ("files_changed", "bytes_read", "bytes_new")


WRITTEN_ALREADY = ("PreconditionFailed", "412", "ConditionalRequestConflict")


def write_part(s3, settings: Settings, user: str, run_id: str, part: int, chunk: Chunk) -> Chunk:
    """Save a chunk as part `part`, written once like every object under manifests/ (If-None-Match:
    the bucket policy refuses anything else). A part already there was written by an attempt of
    this same chunk that died before recording it; it covers the listing from the same point, so it
    is adopted as this chunk (the chain continues after its last key) instead of written over."""
    key = naming.part_key(user, run_id, part)
    document = chunk.as_part(user, run_id, naming.iso(settings.now()))
    try:
        s3.put_object(Bucket=settings.backup_bucket, Key=key, Body=document.encode(), ContentType="application/gzip",
                      ChecksumAlgorithm="SHA256", IfNoneMatch="*", **settings.sse())
        return chunk
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in WRITTEN_ALREADY:
            raise
    return adopted(read_manifest(s3, settings.backup_bucket, key), user)


def adopted(part: Manifest, user: str) -> Chunk:
    """A part as the chunk it saved: every listed key is in its entries or skipped paths, in
    listing order, so the last one listed is the highest path."""
    paths = list(part.entries) + list(part.skipped)
    return Chunk(entries=dict(part.entries), skipped=dict(part.skipped),
                 files_changed=int(part.stats.get("files_changed", 0)), bytes_read=int(part.stats.get("bytes_read", 0)),
                 bytes_new=int(part.stats.get("bytes_new", 0)),
                 last_key=f"{user}/{max(paths)}" if paths else None)


def read_parts(s3, settings: Settings, user: str, run_id: str, first: int, last: int) -> list[Manifest]:
    """Parts first..last (inclusive) of a chain, in order."""
    keys = [naming.part_key(user, run_id, n) for n in range(first, last + 1)]
    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        return list(pool.map(lambda key: read_manifest(s3, settings.backup_bucket, key), keys))


def merge(parts: list[Manifest], last: Chunk) -> tuple[dict[str, Entry], dict[str, str], dict[str, int]]:
    """The whole snapshot: every part's entries and skipped paths with the last chunk's, and the
    figures summed over the chain."""
    entries: dict[str, Entry] = {}
    skipped: dict[str, str] = {}
    figures = dict.fromkeys(PART_FIGURES, 0)
    for part in parts:
        entries.update(part.entries)
        skipped.update(part.skipped)
        for name in PART_FIGURES:
            figures[name] += int(part.stats.get(name, 0))
    entries.update(last.entries)
    skipped.update(last.skipped)
    figures["files_changed"] += last.files_changed
    figures["bytes_read"] += last.bytes_read
    figures["bytes_new"] += last.bytes_new
    return entries, skipped, figures


def unhashable(skipped: dict[str, str]) -> list[str]:
    """The paths left out because one invocation could not hash them."""
    return sorted(path for path, reason in skipped.items() if reason.startswith(UNHASHABLE))
