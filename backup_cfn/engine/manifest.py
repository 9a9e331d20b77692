"""A manifest is one user's snapshot at one run: path -> content hash and the source object's
identity. Gzipped JSON, self-describing, readable with nothing but the bucket it is in."""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import ManifestError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    etag: str
    last_modified: str
    version_id: str | None = None

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "etag": self.etag,
                "last_modified": self.last_modified, "version_id": self.version_id}


@dataclass(frozen=True)
class Manifest:
    user: str
    run_id: str
    created_at: str
    entries: dict[str, Entry]
    # Objects listed but gone or unreadable by the time they were read: path -> reason.
    skipped: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values())

    def hashes(self) -> set[str]:
        return {e.sha256 for e in self.entries.values()}

    def encode(self) -> bytes:
        document = {
            "format": FORMAT_VERSION, "user": self.user, "run_id": self.run_id, "created_at": self.created_at,
            "entries": {path: entry.to_json() for path, entry in sorted(self.entries.items())},
            "skipped": dict(sorted(self.skipped.items())), "stats": self.stats,
        }
        # mtime=0: the same snapshot always encodes to the same bytes.
        return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)


def decode(data: bytes, where: str = "manifest") -> Manifest:
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        raise ManifestError(f"{where}: not a gzipped JSON manifest ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        raise ManifestError(f"{where}: unknown manifest format {document.get('format') if isinstance(document, dict) else None!r}")
    try:
        entries = {}
        for path, raw in document["entries"].items():
            if not naming.is_sha256(raw["sha256"]):
                raise ManifestError(f"{where}: entry {path!r} has no valid sha256")
            entries[path] = Entry(sha256=raw["sha256"], size=int(raw["size"]), etag=raw["etag"],
                                  last_modified=raw["last_modified"], version_id=raw.get("version_id"))
        return Manifest(user=document["user"], run_id=document["run_id"], created_at=document["created_at"],
                        entries=entries, skipped=dict(document.get("skipped", {})),
                        stats=dict(document.get("stats", {})))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{where}: missing or malformed field {exc}") from None


@dataclass(frozen=True)
class SnapshotRef:
    """A manifest as the bucket listing shows it: whose, which run, and its ETag (which changes
    whenever the object is written); `version_id` when the snapshot is one version of its key (the
    vault's first version: engine/vault.py)."""
    user: str
    run_id: str
    key: str
    etag: str = ""
    size: int = 0
    version_id: str | None = None

    def get_kwargs(self, bucket: str) -> dict:
        return {"Bucket": bucket, "Key": self.key, **({"VersionId": self.version_id} if self.version_id else {})}


def list_snapshots(s3, bucket: str, user: str | None = None, *,
                   parts: list[tuple[str, str, str]] | None = None) -> list[SnapshotRef]:
    """Every manifest, sorted by user then run (one user's when `user` is given); one request per
    1,000. The progress parts of split jobs (naming.part_key) are added to `parts` if given."""
    prefix = naming.manifest_prefix(user) if user is not None else contract.MANIFEST_PREFIX
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            parsed = naming.parse_manifest_key(obj["Key"])
            if parsed and (user is None or parsed[0] == user):
                found.append(SnapshotRef(parsed[0], parsed[1], obj["Key"], obj.get("ETag", ""), obj.get("Size", 0)))
            elif parts is not None and (part := naming.parse_part_key(obj["Key"])):
                parts.append((part[0], part[1], obj["Key"]))
    return sorted(found, key=lambda ref: (ref.user, ref.run_id))


def list_manifests(s3, bucket: str, user: str | None = None, *,
                   parts: list[tuple[str, str, str]] | None = None) -> list[tuple[str, str, str]]:
    """Every manifest as (user, run_id, key), sorted by user then run; one user's when `user` is
    given. The progress parts of split jobs are added to `parts` if given."""
    return [(ref.user, ref.run_id, ref.key) for ref in list_snapshots(s3, bucket, user, parts=parts)]


def read_manifest(s3, bucket: str, key: str, version_id: str | None = None) -> Manifest:
    version = {"VersionId": version_id} if version_id else {}
    body = s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()
    return decode(body, where=f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else ""))


def write_manifest(s3, bucket: str, manifest: Manifest, sse: dict, *, if_absent: bool = False) -> str:
    """`if_absent`: a conditional write (If-None-Match), refused with PreconditionFailed when the
    key holds an object already, so the first snapshot written for a run is the one kept."""
    key = naming.manifest_key(manifest.user, manifest.run_id)
    condition = {"IfNoneMatch": "*"} if if_absent else {}
    s3.put_object(Bucket=bucket, Key=key, Body=manifest.encode(), ContentType="application/gzip",
                  ChecksumAlgorithm="SHA256", **condition, **sse)
    return key
