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
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.readback import read_back
from backup_cfn.engine.settings import Settings

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
    expected = _referenced_content(s3, bucket, settings, report)
    _add_journal_content(s3, bucket, settings.job_threads, expected, report)
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
    _rehash_sample(s3, bucket, settings, sorted(sha for sha in expected if sha in stored), expected,
                   sample_percent, seed, report)
    return report


def _referenced_content(s3, bucket: str, settings: Settings, report: VerifyReport) -> dict[str, tuple[int, str]]:
    """hash -> (size, the first manifest path naming it), from every manifest; unreadable manifests
    and one hash named with two sizes are problems."""
    expected: dict[str, tuple[int, str]] = {}
    manifests = list_manifests(s3, bucket)
    report.manifests = len(manifests)

    def load(key):
        try:
            return key, read_manifest(s3, bucket, key), None
        except ManifestError as exc:
            return key, None, str(exc)

    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        for key, manifest, problem in pool.map(load, [k for _, _, k in manifests]):
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


def _add_journal_content(s3, bucket: str, threads: int, expected: dict[str, tuple[int, str]],
                         report: VerifyReport) -> None:
    """The journal's content, as a point-in-time restore reads it: every segment readable (a
    segment that is not would make a restore inside the window fail), each hash it names with one
    size across manifests and segments."""
    refs = journal.list_segments(s3, bucket)
    report.journal_segments = len(refs)

    def load(key):
        try:
            return key, journal.read_segment(s3, bucket, key), None
        except ManifestError as exc:
            return key, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for key, segment, problem in pool.map(load, [ref.key for ref in refs]):
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


def _rehash_sample(s3, bucket: str, settings: Settings, present: list[str], expected: dict, sample_percent: float,
                   seed: int | None, report: VerifyReport) -> None:
    count = min(len(present), max(1 if present and sample_percent > 0 else 0,
                                  round(len(present) * sample_percent / 100)))
    sample = random.Random(seed).sample(present, count)

    def rehash(sha):
        return sha, read_back(s3, bucket, sha)[1]

    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        for sha, problem in pool.map(rehash, sample):
            report.sampled += 1
            if problem:
                report.problems.append(f"{expected[sha][1]}: {problem}")


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
