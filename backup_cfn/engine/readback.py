"""Reading content back as a restore does: a content object streamed through SHA-256 (and, for a
restore, into its destination) and checked against what the snapshot says of it. Its key is its
hash, so any other hash is damage; the manifest gives its size. The restore drill, a restore to a
folder and verify's re-hashed sample all read content through here, so each names a problem the
same way.

Where earlier versions of a content object are kept (versioning; in the vault, Object Lock), the
reads go through `read_back_genuine`: the candidates of an `integrity.ContentVersions` in order, the
first whose bytes match winning, and the versions skipped reported as tampering."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.hashing import sha256_of_stream
from backup_cfn.engine.integrity import Candidate, ContentVersions


@dataclass(kw_only=True)
class ReadTally:
    """What a restore or a drill read back: files, bytes, the problems found, how long it took."""
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ReadBack:
    """What `read_back_genuine` found: the bytes read (of the version used, or the last tried), what
    is wrong when no version matches, and which versions it skipped when one did (tampering)."""
    read: int
    problem: str | None
    tampered: str | None = None


def read_back(s3, bucket: str, sha: str, size: int | None = None, *,
              sink: Callable[[bytes], object] | None = None) -> tuple[int, str | None]:
    """Stream content `sha` through SHA-256, handing each chunk to `sink`: (bytes read, None), or
    (bytes read, what is wrong: unreadable, another size than `size`, another hash). An OSError
    raised by `sink` (the destination cannot be written) is the caller's to handle."""
    return _read_one(s3, {"Bucket": bucket, "Key": naming.content_key(sha)}, sha, size, sink)


def read_back_genuine(reader: ContentVersions, sha: str, size: int | None = None, *,
                      sink: Callable[[bytes], object] | None = None,
                      rewind: Callable[[], object] | None = None) -> ReadBack:
    """`read_back` over the versions of content `sha` that `reader` offers, in its order: the first
    that reads whole with the right size and hash is used. `rewind` is called before each version
    after the first, so that `sink` starts again (a restore truncates its partial file)."""
    tried, read, problem, first = 0, 0, None, None
    for candidate in reader.candidates(sha):
        if tried and rewind:
            rewind()
        tried += 1
        read, problem = _read_one(reader.s3, candidate, sha, size, sink)
        if problem is None:
            reader.note_used(sha, tried, candidate)
            return ReadBack(read, None, None if tried == 1 else (
                f"{first} (tampered: {tried - 1} version(s) skipped; version {candidate.get('VersionId', 'current')}, "
                "which matches its SHA-256, was read)"))
        first = first or problem
    if tried == 0:
        return ReadBack(0, reader.note_none(sha, 0))
    return ReadBack(read, problem if tried == 1 else f"none of its {tried} versions matches (the last: {problem})")


def _read_one(s3, candidate: Candidate, sha: str, size: int | None,
              sink: Callable[[bytes], object] | None) -> tuple[int, str | None]:
    try:
        body = s3.get_object(**candidate)["Body"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return 0, f"content {sha[:16]} unreadable: {error.get('Code')}: {error.get('Message', '')}"
    with body:
        actual, read = sha256_of_stream(body, sink=sink)
    if size is not None and read != size:
        return read, f"content {sha[:16]} has {read} bytes, the snapshot says {size}"
    if actual != sha:
        return read, f"content {sha[:16]} hashes to {actual[:16]}: corrupt"
    return read, None
