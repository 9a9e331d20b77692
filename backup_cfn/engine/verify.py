"""Check the backups: every manifest and journal segment readable, all content they name present
(right size) and indexed STORED, and a sample of content re-hashed from its bytes."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.contentstore import STORED, from_item
from backup_cfn.engine.errors import ManifestError
from backup_cfn.engine.integrity import ContentVersions, first_versions, versions_under
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.readback import read_back_genuine
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.vault import vault_catalog
from backup_cfn.engine.vault_locks import lock_of, wanted_locks

BATCH_GET = 100
MAX_LISTED_PROBLEMS = 50


@dataclass
class VerifyReport:
    manifests: int = 0
    content_referenced: int = 0
    content_objects: int = 0
    sampled: int = 0
    journal_segments: int = 0       # continuous protection's segments read (their content checked too)
    problems: list[str] = field(default_factory=list)
    locks_checked: int = 0          # the vault: kept snapshots whose manifest lock was read

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(clients, settings: Settings, *, sample_percent: float = 5.0, seed: int | None = None,
           check_index: bool = True, bucket: str | None = None, s3=None) -> VerifyReport:
    """Every manifest and journal segment readable; every content they name stored with the right
    size and (check_index) indexed STORED; `sample_percent` of the stored content re-hashed from its
    bytes."""
    s3 = s3 or clients.s3
    bucket = bucket or settings.backup_bucket
    report = VerifyReport()
    expected = _referenced_content(s3, bucket, [k for _, _, k in list_manifests(s3, bucket)], settings.job_threads,
                                   report)
    _add_journal_content(s3, bucket, [(ref.key, None) for ref in journal.list_segments(s3, bucket)],
                         settings.job_threads, expected, report)
    stored = _stored_content(s3, bucket)
    report.content_objects = len(stored)
    for sha, (size, where) in sorted(expected.items()):
        if sha not in stored:
            report.problems.append(f"{where}: content {sha} is missing")
        elif stored[sha] != size:
            report.problems.append(f"{where}: content {sha} has {stored[sha]} bytes, manifest says {size}")
    if check_index:
        indexed = _index_states(clients.dynamodb, settings.content_table, sorted(expected))
        for sha in sorted(expected):
            if indexed.get(sha) != STORED:
                report.problems.append(f"{expected[sha][1]}: content {sha} is not indexed as STORED "
                                       f"(index: {indexed.get(sha, 'absent')})")
    _rehash_sample(ContentVersions(s3, bucket), settings.job_threads, sorted(sha for sha in expected if sha in stored),
                   expected, sample_percent, seed, report)
    return report


def verify_vault(clients, settings, *, sample_percent: float = 5.0, seed: int | None = None,
                 now=None) -> VerifyReport:
    """The vault, read as a restore from it would be: every trusted snapshot (first versions)
    readable, every content it names present in some version of the right size, a sample re-hashed
    by version; written-over and late manifests reported; and each snapshot the rules keep locked at
    least as long as they keep it (its manifest version's retention)."""
    s3, bucket = clients.s3, settings.bucket
    report = VerifyReport()
    catalog = vault_catalog(s3, bucket, max_arrival_hours=settings.max_arrival_hours)
    report.problems.extend(catalog.problems())
    expected = _referenced_content(s3, bucket, catalog.refs, settings.threads, report)
    # The journal as a restore from the vault reads it: first versions, late segments left out.
    segments = [journal.FirstSegment(journal.SegmentRef(*parsed, key, first.size), first.version_id, first.written,
                                     first.versions)
                for key, first in first_versions(s3, bucket, contract.JOURNAL_PREFIX).items()
                if (parsed := journal.parse_key(key))]
    late = {s.ref.key: s.lateness(settings.max_arrival_hours) for s in segments}
    report.problems += [f"{key}: {why}; left out" for key, why in sorted(late.items()) if why]
    report.problems += [f"{s.ref.key}: written over ({s.versions} versions); its first version is the segment"
                        for s in segments if s.versions > 1]
    _add_journal_content(s3, bucket, [(s.ref.key, s.version_id) for s in segments if not late[s.ref.key]],
                         settings.threads, expected, report)
    sizes: dict[str, set[int]] = {}
    for key, versions in versions_under(s3, bucket, contract.CONTENT_PREFIX).items():
        sha = naming.hash_of_content_key(key)
        if sha:
            sizes[sha] = {v.size for v in versions}
    report.content_objects = len(sizes)
    for sha, (size, where) in sorted(expected.items()):
        if sha not in sizes:
            report.problems.append(f"{where}: content {sha} is missing")
        elif size not in sizes[sha]:
            report.problems.append(f"{where}: content {sha} has no version of {size} bytes")
    _rehash_sample(ContentVersions(s3, bucket, versioned=True), settings.threads,
                   sorted(sha for sha in expected if sha in sizes), expected, sample_percent, seed, report)
    wanted = wanted_locks(catalog.snapshots, now or settings.now(), settings, rounded=False)

    def read_lock(ref):
        return (ref, *lock_of(s3.head_object(Bucket=bucket, Key=ref.key, VersionId=ref.version_id)))

    with ThreadPoolExecutor(max_workers=settings.threads) as pool:
        for ref, mode, until in pool.map(read_lock, sorted(wanted, key=lambda r: r.key)):
            report.locks_checked += 1
            needed = wanted[ref]
            if until is None or mode != settings.lock_mode:
                report.problems.append(f"{ref.key}: not under a {settings.lock_mode} lock")
            elif until < needed:
                report.problems.append(f"{ref.key}: locked until {naming.iso(until)}, the rules keep it until "
                                       f"{naming.iso(needed)}; the lock function has not extended it")
    return report


def _referenced_content(s3, bucket: str, refs: list, threads: int, report: VerifyReport) -> dict[str, tuple[int, str]]:
    """hash -> (size, the first manifest path naming it), from every manifest (keys, or
    SnapshotRefs read at their version); unreadable manifests and one hash named with two sizes
    are problems."""
    expected: dict[str, tuple[int, str]] = {}
    report.manifests = len(refs)

    def load(ref):
        key, version = (ref, None) if isinstance(ref, str) else (ref.key, ref.version_id)
        try:
            return key, read_manifest(s3, bucket, key, version), None
        except ManifestError as exc:
            return key, None, str(exc)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for key, manifest, problem in pool.map(load, refs):
            if problem:
                report.problems.append(problem)
                continue
            for path, entry in manifest.entries.items():
                known = expected.setdefault(entry.sha256, (entry.size, f"{key}:{path}"))
                if known[0] != entry.size:
                    report.problems.append(f"{key}:{path}: size {entry.size} differs from {known[1]} ({known[0]}) "
                                           "for the same hash")
    report.content_referenced = len(expected)
    return expected


def _add_journal_content(s3, bucket: str, segments: list[tuple[str, str | None]], threads: int,
                         expected: dict[str, tuple[int, str]], report: VerifyReport) -> None:
    """The journal's content, as a point-in-time restore reads it (`segments`: keys, each with the
    version to read or None): every segment readable (a segment that is not would make a restore
    inside the window fail), each hash it names with one size across manifests and segments."""
    report.journal_segments = len(segments)

    def load(segment):
        key, version_id = segment
        try:
            return key, journal.read_segment(s3, bucket, key, version_id), None
        except ManifestError as exc:
            return key, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for key, segment, problem in pool.map(load, segments):
            if problem:
                report.problems.append(problem)
                continue
            for change in segment.changes:
                if not change.sha256:
                    continue        # a delete, or a change whose content the journal does not hold
                known = expected.setdefault(change.sha256, (change.size, f"{key}:{change.path}"))
                if known[0] != change.size:
                    report.problems.append(f"{key}:{change.path}: size {change.size} differs from {known[1]} "
                                           f"({known[0]}) for the same hash")
    report.content_referenced = len(expected)


def _stored_content(s3, bucket: str) -> dict[str, int]:
    stored: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=contract.CONTENT_PREFIX):
        for obj in page.get("Contents", []):
            sha = naming.hash_of_content_key(obj["Key"])
            if sha:
                stored[sha] = obj["Size"]
    return stored


def _rehash_sample(reader: ContentVersions, threads: int, present: list[str], expected: dict, sample_percent: float,
                   seed: int | None, report: VerifyReport) -> None:
    """Re-hash a sample as a restore reads it; a content whose first version does not match but a
    later one does is restorable, and reported as tampering."""
    count = min(len(present), max(1 if present and sample_percent > 0 else 0,
                                  round(len(present) * sample_percent / 100)))
    sample = random.Random(seed).sample(present, count)

    def rehash(sha):
        return sha, read_back_genuine(reader, sha)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for sha, back in pool.map(rehash, sample):
            report.sampled += 1
            if back.problem or back.tampered:
                report.problems.append(f"{expected[sha][1]}: {back.problem or back.tampered}")


def _index_states(dynamodb, table: str, hashes: list[str]) -> dict[str, str]:
    states = {}
    for i in range(0, len(hashes), BATCH_GET):
        keys = [{contract.CONTENT_PARTITION_KEY: {"S": h}} for h in hashes[i:i + BATCH_GET]]
        request = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                entry = from_item(item)
                states[entry[contract.CONTENT_PARTITION_KEY]] = entry.get("state")
            request = response.get("UnprocessedKeys") or None
    return states
