"""The journal: each user's changes between two nightly snapshots, as captured from S3's events.

One object per captured batch of one user's changes (a *segment*), in the backup bucket beside the
manifests, so it replicates with them and a restore from the replica (or the vault) needs nothing
else:

    journal/<user>/<captured_at>-<digest>.json.gz

`captured_at` is the writer's clock (YYYYMMDDTHHMMSSffffffZ), `digest` the first 16 hex digits of the
SHA-256 of the segment's changes, so the same batch captured twice has the same key. Gzipped JSON,
byte-stable (mtime 0), self-describing (`format`, `kind`), and naming every content it references in
`hashes`: the collector and the vault's lock extender read that one field, as they read a manifest's
entries. The invariants (docs/engine.md, "The journal"):

1. every hash a segment names was stored and touched before the segment was written;
2. a segment is written once (If-None-Match) and never changed; only the collector deletes;
3. changes of one path are ordered by (time, sequencer); paths are independent;
4. a segment's `captured_at` is at or after the time of each change it holds (less the replay
   margin), so the changes since X are all in segments whose keys sort after X - margin;
5. a put whose content could not be stored names no hash and says why (`skipped`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import ManifestError

FORMAT_VERSION = 1
KIND = "journal"
PUT, DELETE = "put", "delete"
CAPTURED, RECONCILED = "capture", "reconcile"
SUFFIX = ".json.gz"
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_SEGMENT_NAME = re.compile(r"^(\d{8}T\d{12}Z)-([0-9a-f]{16})$")
SEQUENCER_WIDTH = 32


@dataclass(frozen=True)
class Change:
    """One change of one path: what S3's event said, and what the capture found."""
    path: str
    op: str                        # PUT or DELETE
    time: str                      # when it happened in the source (the event's time, ISO 8601 UTC)
    sequencer: str = ""            # S3's per-key order ("" for a change the reconciliation found)
    event_id: str = ""
    version_id: str | None = None
    sha256: str | None = None      # a put's content (None: not stored, see `skipped`)
    size: int = 0
    etag: str = ""
    last_modified: str = ""
    skipped: str = ""              # a put whose content is not in the store: why

    def order(self) -> tuple:
        """Sort key among the changes of one path: S3's time, then its sequencer (right-padded with
        zeros, as S3's documentation says to compare sequencers of different lengths)."""
        return naming.parse_iso(self.time), self.sequencer.lower().ljust(SEQUENCER_WIDTH, "0")

    def identity(self) -> tuple:
        """Two deliveries of one event, or one change captured and reconciled, are the same change."""
        return self.path, self.op, self.version_id or "", self.sequencer, self.time, self.sha256 or ""

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class Segment:
    user: str
    captured_at: str               # ISO 8601 with microseconds
    changes: tuple[Change, ...]
    source: str = CAPTURED

    def hashes(self) -> set[str]:
        return {c.sha256 for c in self.changes if c.sha256}

    def encode(self) -> bytes:
        document = {"format": FORMAT_VERSION, "kind": KIND, "user": self.user, "captured_at": self.captured_at,
                    "source": self.source, "hashes": sorted(self.hashes()),
                    "changes": [c.to_json() for c in self.changes]}
        return gzip.compress(json.dumps(document, separators=(",", ":"), sort_keys=True).encode(), mtime=0)

    def digest(self) -> str:
        body = json.dumps([c.to_json() for c in self.changes], separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(f"{self.user}\n{self.source}\n{body}".encode()).hexdigest()[:16]

    def key(self) -> str:
        stamp = naming.parse_iso(self.captured_at).strftime(STAMP_FORMAT)
        return f"{prefix(self.user)}{stamp}-{self.digest()}{SUFFIX}"


def prefix(user: str) -> str:
    return f"{contract.JOURNAL_PREFIX}{user}/"


def key_after(user: str, moment: datetime) -> str:
    """A key that sorts just before every segment captured at or after `moment` (ListObjectsV2's StartAfter)."""
    return f"{prefix(user)}{moment.astimezone(timezone.utc).strftime(STAMP_FORMAT)}"


def parse_key(key: str) -> tuple[str, datetime] | None:
    """(user, captured_at) of a segment key, or None for anything else."""
    if not key.startswith(contract.JOURNAL_PREFIX) or not key.endswith(SUFFIX):
        return None
    user, _, name = key[len(contract.JOURNAL_PREFIX):-len(SUFFIX)].rpartition("/")
    match = _SEGMENT_NAME.match(name)
    if not naming.is_valid_user(user) or not match:
        return None
    return user, datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=timezone.utc)


def sorted_changes(changes) -> tuple[Change, ...]:
    """Canonical order inside a segment: by path, then by the path's own order; duplicates dropped."""
    unique = {c.identity(): c for c in changes}
    return tuple(sorted(unique.values(), key=lambda c: (c.path, c.order(), c.op)))


def decode(data: bytes, where: str = "journal segment") -> Segment:
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        raise ManifestError(f"{where}: not a gzipped JSON journal segment ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION or document.get("kind") != KIND:
        raise ManifestError(f"{where}: not a journal segment of format {FORMAT_VERSION}")
    try:
        changes = []
        for raw in document["changes"]:
            sha = raw.get("sha256")
            if raw["op"] not in (PUT, DELETE) or (sha is not None and not naming.is_sha256(sha)):
                raise ManifestError(f"{where}: malformed change of {raw.get('path')!r}")
            naming.parse_iso(raw["time"])
            changes.append(Change(path=raw["path"], op=raw["op"], time=raw["time"],
                                  sequencer=raw.get("sequencer", ""), event_id=raw.get("event_id", ""),
                                  version_id=raw.get("version_id"), sha256=sha, size=int(raw.get("size", 0)),
                                  etag=raw.get("etag", ""), last_modified=raw.get("last_modified", ""),
                                  skipped=raw.get("skipped", "")))
        segment = Segment(document["user"], document["captured_at"], tuple(changes), document.get("source", CAPTURED))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"{where}: missing or malformed field {exc}") from None
    if set(document.get("hashes", [])) != segment.hashes():
        raise ManifestError(f"{where}: its hashes do not match its changes")
    return segment


def write_segment(s3, bucket: str, segment: Segment, sse: dict) -> str:
    """Write once: a segment already there under this key holds exactly these changes (the key is
    their digest), so a refused conditional write is the same outcome."""
    key = segment.key()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=segment.encode(), ContentType="application/gzip",
                      ChecksumAlgorithm="SHA256", IfNoneMatch="*", **sse)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise
    return key


@dataclass(frozen=True)
class SegmentRef:
    user: str
    captured_at: datetime
    key: str
    size: int = 0


def list_segments(s3, bucket: str, user: str | None = None, *, since: datetime | None = None) -> list[SegmentRef]:
    """Segments of one user (captured at or after `since`, when given) or of everyone, in key order;
    one request per 1,000."""
    args = {"Bucket": bucket, "Prefix": prefix(user) if user else contract.JOURNAL_PREFIX}
    if user and since is not None:
        args["StartAfter"] = key_after(user, since)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(**args):
        for obj in page.get("Contents", []):
            parsed = parse_key(obj["Key"])
            if parsed and (user is None or parsed[0] == user):
                found.append(SegmentRef(parsed[0], parsed[1], obj["Key"], obj.get("Size", 0)))
    return found


def read_segment(s3, bucket: str, key: str, version_id: str | None = None) -> Segment:
    extra = {"VersionId": version_id} if version_id else {}
    return decode(s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read(), where=f"s3://{bucket}/{key}")


@dataclass(frozen=True)
class FirstSegment:
    """A segment as first written (the vault: a later version of the key, a write over it, is
    ignored), and when that version arrived."""
    ref: SegmentRef
    version_id: str
    written: datetime
    versions: int

    def lateness(self, max_arrival_hours: int | None) -> str | None:
        """Why this segment cannot be the capture its key claims: written long after its captured_at
        (or before it). A capture writes its segment within seconds; whoever can write into the vault
        could add a segment claiming a past it was not part of."""
        if max_arrival_hours is None:
            return None
        written = self.written if self.written.tzinfo else self.written.replace(tzinfo=timezone.utc)
        if written > self.ref.captured_at + timedelta(hours=max_arrival_hours):
            return f"written {(written - self.ref.captured_at).total_seconds() / 3600:.0f} h after its capture"
        if written < self.ref.captured_at - timedelta(seconds=contract.JOURNAL_REPLAY_MARGIN_SECONDS):
            return "written before its capture"
        return None


def first_segments(s3, bucket: str, user: str, *, since: datetime | None = None) -> list[FirstSegment]:
    """One user's segments at their first versions (captured at or after `since`), in key order:
    the reads of a versioned copy that others can write into (issue 19's vault)."""
    from backup_cfn.engine.integrity import first_versions

    found = []
    for key, first in sorted(first_versions(s3, bucket, prefix(user)).items()):
        parsed = parse_key(key)
        if parsed is None or parsed[0] != user or (since is not None and parsed[1] < since):
            continue
        found.append(FirstSegment(SegmentRef(user, parsed[1], key, first.size), first.version_id, first.written,
                                  first.versions))
    return found


def replay_start(run_id: str | None) -> datetime | None:
    """Where a reader of the journal starts for a checkpoint of this run: its schedule time less the
    margin (the listing began after the schedule time; replaying a change twice is harmless)."""
    if run_id is None:
        return None
    return naming.run_time(run_id) - timedelta(seconds=contract.JOURNAL_REPLAY_MARGIN_SECONDS)
