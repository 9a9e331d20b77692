"""Reads that notice tampering and survive it.

A content object is named by its SHA-256, so its bytes can be checked against its name; a
manifest is written once (If-None-Match, enforced by the bucket policy), so a manifest key with a
second version was written over. Versioning and Object Lock keep every earlier version, so:

- content: a reader that finds the current version's SHA-256 wrong reads the key's other versions,
  oldest first, and uses the first whose SHA-256 matches (`ContentVersions.candidates`); in the
  vault every content read is by version (lifecycle puts a delete marker on top of each object once
  its default lock ends, so the current version is usually a marker);
- manifests: the first version of a key is the snapshot (`first_versions`).

Whoever can write into the bucket (a compromised worker, or in the vault whoever assumes the
production replication role) can add versions; none of them changes what these reads return, and
every reader reports what it skipped as tampering.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

from backup_cfn import contract
from backup_cfn.engine import naming

# How a content's bytes are fetched: with the current key, or one version of it.
Candidate = dict


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    last_modified: datetime
    size: int
    is_latest: bool


def key_versions(s3, bucket: str, key: str) -> list[Version]:
    """Every version of exactly `key`, oldest first (delete markers left out): S3 lists a key's
    versions newest first."""
    found: list[Version] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        found += [Version(v["Key"], v["VersionId"], v["LastModified"], v.get("Size", 0), v.get("IsLatest", False))
                  for v in page.get("Versions", []) if v["Key"] == key]
    return list(reversed(found))


def versions_under(s3, bucket: str, prefix: str) -> dict[str, list[Version]]:
    """Every key under `prefix` with its versions, oldest first: one listing for all of them."""
    found: dict[str, list[Version]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            found.setdefault(v["Key"], []).append(
                Version(v["Key"], v["VersionId"], v["LastModified"], v.get("Size", 0), v.get("IsLatest", False)))
    return {key: list(reversed(versions)) for key, versions in found.items()}


@dataclass
class TamperLog:
    """What readers found written over, for the report (thread-safe)."""
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, note: str) -> None:
        with self._lock:
            if note not in self.notes:
                self.notes.append(note)


@dataclass
class ContentVersions:
    """Where the bytes of a content may be read, in the order to try them.

    `versioned`: read only by version (the vault). Otherwise the current key first; its other
    versions are listed only if the current one does not match (one ListObjectVersions then)."""
    s3: object
    bucket: str
    versioned: bool = False
    tampered: TamperLog = field(default_factory=TamperLog)

    def candidates(self, sha256: str) -> Iterator[Candidate]:
        key = naming.content_key(sha256)
        if not self.versioned:
            yield {"Bucket": self.bucket, "Key": key}
        for version in key_versions(self.s3, self.bucket, key):
            if not self.versioned and version.is_latest:
                continue     # already tried as the current key
            yield {"Bucket": self.bucket, "Key": key, "VersionId": version.version_id}

    def note_used(self, sha256: str, tried: int, used: Candidate) -> None:
        """A content read from its `tried`-th candidate: anything after the first is tampering."""
        if tried > 1:
            self.tampered.add(f"content {sha256[:16]}: {tried - 1} version(s) do not match its SHA-256; "
                              f"read version {used.get('VersionId', 'current')}, which does")

    def note_none(self, sha256: str, tried: int) -> str:
        return (f"content {sha256[:16]}: none of its {tried} version(s) matches its SHA-256"
                if tried else f"content {sha256[:16]} is missing")


def copy_source(candidate: Candidate) -> dict:
    """A candidate as CopyObject's CopySource."""
    return {k: v for k, v in candidate.items() if k in ("Bucket", "Key", "VersionId")}


@dataclass(frozen=True)
class FirstVersion:
    """A write-once object's first version: what was written; `versions` > 1 means written over."""
    key: str
    version_id: str
    written: datetime
    size: int
    versions: int


def first_versions(s3, bucket: str, prefix: str) -> dict[str, FirstVersion]:
    """The first version of each key under `prefix` (manifests/: the snapshots as written)."""
    return {key: FirstVersion(key, versions[0].version_id, versions[0].last_modified, versions[0].size, len(versions))
            for key, versions in versions_under(s3, bucket, prefix).items() if versions}


def is_replicated_key(key: str) -> bool:
    return key.startswith(contract.REPLICATED_PREFIXES)
