"""Reading content back as a restore does: a content object streamed through SHA-256 (and, for a
restore, into its destination) and checked against what the snapshot says of it. Its key is its
hash, so any other hash is damage; the manifest gives its size. The restore drill, a restore to a
folder and verify's re-hashed sample all read content through here, so each names a problem the
same way."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.hashing import sha256_of_stream


@dataclass(kw_only=True)
class ReadTally:
    """What a restore or a drill read back: files, bytes, the problems found, how long it took."""
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read_back(s3, bucket: str, sha: str, size: int | None = None, *,
              sink: Callable[[bytes], object] | None = None) -> tuple[int, str | None]:
    """Stream content `sha` through SHA-256, handing each chunk to `sink`: (bytes read, None), or
    (bytes read, what is wrong: unreadable, another size than `size`, another hash). An OSError
    raised by `sink` (the destination cannot be written) is the caller's to handle."""
    try:
        body = s3.get_object(Bucket=bucket, Key=naming.content_key(sha))["Body"]
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
