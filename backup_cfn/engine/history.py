"""What the snapshots say about files over time: which versions of a path existed and when (find),
and what changed between two snapshots of a user (compare). Pure functions over manifests and
journal changes."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Iterable

from backup_cfn.engine import naming
from backup_cfn.engine.journal import PUT
from backup_cfn.engine.journal import Change as CapturedChange
from backup_cfn.engine.manifest import Entry, Manifest, SnapshotRef

SHA256_PREFIX = "sha256:"
MIN_SHA256_PREFIX = 8
_HEX = re.compile(r"^[0-9a-f]+$")

# A version's state against the user's newest snapshot.
CURRENT, CHANGED, DELETED = "current", "changed", "deleted"

Matcher = Callable[[str, Entry], bool]


def matcher(pattern: str) -> Matcher:
    """What `find` looks for: a full SHA-256 (64 hex digits), `sha256:` and at least 8 hex digits
    of one, or a glob. A glob without '/' is matched against each file's name, one with '/'
    against its whole path (as restic does); `*` also matches '/' in a path."""
    if naming.is_sha256(pattern):
        return lambda path, entry: entry.sha256 == pattern
    if pattern.startswith(SHA256_PREFIX):
        prefix = pattern[len(SHA256_PREFIX):]
        if len(prefix) < MIN_SHA256_PREFIX or len(prefix) > 64 or not _HEX.match(prefix):
            raise ValueError(f"{pattern!r}: after 'sha256:' give {MIN_SHA256_PREFIX} to 64 lower-case hex digits")
        return lambda path, entry: entry.sha256.startswith(prefix)
    if not pattern:
        raise ValueError("the pattern is empty")
    if "/" in pattern:
        return lambda path, entry: fnmatchcase(path, pattern)
    return lambda path, entry: fnmatchcase(path.rsplit("/", 1)[-1], pattern)


@dataclass
class Version:
    """One content at one path of one user, and the snapshots it was seen in."""
    user: str
    path: str
    sha256: str
    size: int
    first_run: str
    last_run: str
    snapshots: int
    last_modified: str
    state: str = ""            # against the user's newest snapshot: current, changed or deleted
    newest_run: str = ""       # that snapshot
    first_captured: str = ""   # the journal's first and last change that wrote it (continuous protection)
    last_captured: str = ""

    def last_seen(self) -> str:
        """The later of its last run and its last capture, as a run ID (they sort as times)."""
        captured = naming.run_id_for(naming.parse_iso(self.last_captured)) if self.last_captured else ""
        return max(self.last_run, captured)

    def to_json(self) -> dict:
        return {"user": self.user, "path": self.path, "sha256": self.sha256, "size": self.size,
                "first_run": self.first_run or None, "last_run": self.last_run or None, "snapshots": self.snapshots,
                "last_modified": self.last_modified, "state": self.state, "newest_run": self.newest_run,
                "first_captured": self.first_captured or None, "last_captured": self.last_captured or None}


def collect_versions(snapshots: Iterable[tuple[SnapshotRef, Manifest]], match: Matcher) -> dict[tuple, Version]:
    """(user, path, sha256) -> Version over the snapshots given."""
    versions: dict[tuple, Version] = {}
    for ref, manifest in snapshots:
        for path, entry in manifest.entries.items():
            if not match(path, entry):
                continue
            key = (ref.user, path, entry.sha256)
            found = versions.get(key)
            if found is None:
                versions[key] = Version(ref.user, path, entry.sha256, entry.size, ref.run_id, ref.run_id, 1,
                                        entry.last_modified)
                continue
            found.snapshots += 1
            found.first_run = min(found.first_run, ref.run_id)
            if ref.run_id > found.last_run:
                found.last_run, found.last_modified = ref.run_id, entry.last_modified
    return versions


def add_journal_versions(versions: dict[tuple, Version], user: str, changes: Iterable[CapturedChange],
                         match: Matcher) -> None:
    """The versions the journal captured (each put whose content it holds), matched as a
    snapshot's entries are: first and last capture time on each; a version no snapshot searched
    holds (written and gone between two runs) is added with no run and `snapshots` 0."""
    for change in changes:
        if change.op != PUT or not change.sha256:
            continue
        entry = Entry(change.sha256, change.size, change.etag, change.last_modified or change.time, change.version_id)
        if not match(change.path, entry):
            continue
        found = versions.get((user, change.path, change.sha256))
        if found is None:
            found = versions[(user, change.path, change.sha256)] = Version(
                user, change.path, change.sha256, change.size, "", "", 0, entry.last_modified)
        found.first_captured = min(found.first_captured or change.time, change.time)
        found.last_captured = max(found.last_captured, change.time)


def mark_states(versions: Iterable[Version], newest: dict[str, Manifest]) -> None:
    """Set each version's state against its user's newest snapshot."""
    for version in versions:
        latest = newest.get(version.user)
        if latest is None:
            continue
        version.newest_run = latest.run_id
        entry = latest.entries.get(version.path)
        version.state = DELETED if entry is None else CURRENT if entry.sha256 == version.sha256 else CHANGED


def newest_first(versions: Iterable[Version]) -> list[Version]:
    """Last seen newest first; then by user and path (a stable sort keeps that order within a run)."""
    return sorted(sorted(versions, key=lambda v: (v.user, v.path, v.first_run or v.first_captured)),
                  key=Version.last_seen, reverse=True)


# --- compare ------------------------------------------------------------------------------------

ADDED, REMOVED, MODIFIED, METADATA = "added", "removed", "modified", "metadata"
METADATA_FIELDS = ("etag", "last_modified", "version_id")


@dataclass(frozen=True)
class Change:
    kind: str                      # added, removed, modified (content), metadata (same content)
    path: str
    before: Entry | None
    after: Entry | None
    fields: tuple[str, ...] = ()   # for metadata changes: which of METADATA_FIELDS differ

    def to_json(self) -> dict:
        side = lambda e: None if e is None else {"sha256": e.sha256, "size": e.size, "etag": e.etag,  # noqa: E731
                                                "last_modified": e.last_modified, "version_id": e.version_id}
        return {"kind": self.kind, "path": self.path, "before": side(self.before), "after": side(self.after),
                "fields": list(self.fields)}


@dataclass
class Comparison:
    user: str
    run_a: str
    run_b: str
    changes: list[Change] = field(default_factory=list)
    files_a: int = 0
    files_b: int = 0
    bytes_a: int = 0
    bytes_b: int = 0
    unchanged: int = 0

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def totals(self) -> dict:
        def size(changes, side):
            return sum(getattr(c, side).size for c in changes)
        added, removed = self.of_kind(ADDED), self.of_kind(REMOVED)
        modified, metadata = self.of_kind(MODIFIED), self.of_kind(METADATA)
        return {
            "added": len(added), "added_bytes": size(added, "after"),
            "removed": len(removed), "removed_bytes": size(removed, "before"),
            "modified": len(modified), "modified_bytes_before": size(modified, "before"),
            "modified_bytes_after": size(modified, "after"),
            "metadata": len(metadata), "unchanged": self.unchanged,
            "files_a": self.files_a, "files_b": self.files_b, "bytes_a": self.bytes_a, "bytes_b": self.bytes_b,
        }


def compare(a: Manifest, b: Manifest) -> Comparison:
    """From snapshot `a` to snapshot `b` of one user, path by path."""
    result = Comparison(a.user, a.run_id, b.run_id, files_a=len(a.entries), files_b=len(b.entries),
                        bytes_a=a.total_bytes, bytes_b=b.total_bytes)
    for path in sorted(set(a.entries) | set(b.entries)):
        before, after = a.entries.get(path), b.entries.get(path)
        if before is None:
            result.changes.append(Change(ADDED, path, None, after))
        elif after is None:
            result.changes.append(Change(REMOVED, path, before, None))
        elif before.sha256 != after.sha256:
            result.changes.append(Change(MODIFIED, path, before, after))
        else:
            differ = tuple(name for name in METADATA_FIELDS if getattr(before, name) != getattr(after, name))
            if differ:
                result.changes.append(Change(METADATA, path, before, after, differ))
            else:
                result.unchanged += 1
    return result
