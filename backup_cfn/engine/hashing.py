"""SHA-256 of source objects: S3's own stored checksum when it covers the whole object, otherwise
computed by streaming the object in constant memory."""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Callable

CHUNK_BYTES = 1024 * 1024


def b64_to_hex(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def whole_object_sha256(head: dict) -> str | None:
    """The object's SHA-256 from a HeadObject/CopyObject response, if S3 holds one for the whole
    object. A multipart upload's checksum is a checksum of part checksums ("...=-3", type
    COMPOSITE), not the content's hash, so it is ignored."""
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType") == "COMPOSITE":
        return None
    return b64_to_hex(value)


class HashingStopped(Exception):
    """The invocation's time ran out in the middle of an object: nothing of it is kept."""


def sha256_of_stream(body, chunk_bytes: int = CHUNK_BYTES, should_stop: Callable[[], bool] | None = None,
                     sink: Callable[[bytes], object] | None = None) -> tuple[str, int]:
    """(SHA-256 hex, bytes read) of a stream read in constant memory; each chunk also goes to `sink`."""
    digest = hashlib.sha256()
    total = 0
    for chunk in iter(lambda: body.read(chunk_bytes), b""):
        if should_stop is not None and should_stop():
            raise HashingStopped(f"stopped after {total} bytes")
        digest.update(chunk)
        if sink is not None:
            sink(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def stream_sha256(s3, bucket: str, key: str, *, version_id: str | None = None, etag: str,
                  should_stop: Callable[[], bool] | None = None) -> tuple[str, int, dict]:
    """Stream the exact object version (or the object with this ETag); returns (sha256 hex, bytes
    read, the GET response's metadata: ETag, ContentLength, LastModified, VersionId). A changed
    object raises PreconditionFailed rather than hashing different content under the old identity."""
    args = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        args["VersionId"] = version_id
    else:
        args["IfMatch"] = etag
    response = s3.get_object(**args)
    body = response.pop("Body")
    try:
        sha256, read = sha256_of_stream(body, should_stop=should_stop)
    finally:
        body.close()
    return sha256, read, response
