"""Load: one run over 1,000 users and 20,000 objects on the emulator, through the real handlers.
Every user must end COMPLETED and every distinct content be stored once. The test records the
wall time and the S3 and DynamoDB requests (counted as sent, SDK retries included) in
`load-results.json` under the test's tmp dir and in `bench-results/load.json`, and prints them.

Excluded from `make test` (it takes several minutes); run it with `make load-test`."""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backup_cfn import aws
from backup_cfn.engine import runs
from backup_cfn.engine.contentstore import STORED

from engine_support import all_content_versions, backup, make_engine, sha

pytestmark = pytest.mark.load

USERS = 1000
OBJECTS_PER_USER = 20
SHARED_DOCUMENTS = 50          # identical files many users hold (terms, circulars)
SHARED_SHARE = 0.2             # share of each user's files that are one of the shared documents
CHECKSUM_SHARE = 0.5           # uploads that ask S3 for a SHA-256 (no read needed to hash them)
THREADS = 16
ROOT = Path(__file__).resolve().parent.parent


def dataset(seed: int = 7) -> dict[str, tuple[bytes, bool]]:
    """key -> (body, checksummed upload): small objects, some content shared between users."""
    rng = random.Random(seed)
    shared = [b"%%PDF-1.7 shared circular %d " % i * 8 for i in range(SHARED_DOCUMENTS)]
    objects = {}
    for u in range(USERS):
        user = f"load-{u:04d}"
        for j in range(OBJECTS_PER_USER):
            if rng.random() < SHARED_SHARE:
                k = rng.randrange(SHARED_DOCUMENTS)
                objects[f"{user}/shared/circular-{k:02d}-{j:02d}.pdf"] = (shared[k], rng.random() < CHECKSUM_SHARE)
            else:
                body = b"PK\x03\x04 %s report %d " % (user.encode(), j) + rng.randbytes(rng.randrange(64, 512))
                objects[f"{user}/reports/r-{j:02d}.xlsx"] = (body, rng.random() < CHECKSUM_SHARE)
    return objects


class RequestCounter:
    """Counts every HTTP request a client sends, per operation (botocore's before-send event
    fires once per attempt, so the SDK's own retries are included)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def attach(self, client, service: str) -> None:
        def count(event_name: str, **_):
            operation = event_name.rsplit(".", 1)[-1]
            with self._lock:
                self.counts[(service, operation)] += 1
        client.meta.events.register("before-send", count)

    def total(self, service: str) -> int:
        return sum(n for (s, _), n in self.counts.items() if s == service)

    def by_operation(self, service: str) -> dict[str, int]:
        return {op: n for (s, op), n in sorted(self.counts.items()) if s == service}


def test_a_run_over_1000_users_and_20000_objects_completes(local_env, tmp_path, capsys):
    engine = make_engine(local_env, job_threads=4)
    objects = dataset()
    assert len(objects) == USERS * OBJECTS_PER_USER >= 20_000
    uploader = aws.client(engine.env, "s3")
    bucket = engine.settings.source_bucket
    started = time.monotonic()

    def upload(item):
        key, (body, checksum) = item
        uploader.put_object(Bucket=bucket, Key=key, Body=body, **({"ChecksumAlgorithm": "SHA256"} if checksum else {}))

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(upload, objects.items()))
    upload_seconds = time.monotonic() - started

    counter = RequestCounter()
    counter.attach(engine.clients.s3, "s3")
    counter.attach(engine.clients.dynamodb, "dynamodb")
    started = time.monotonic()
    run = backup(engine, threads=THREADS)
    run_seconds = time.monotonic() - started

    assert run["status"] == runs.SUCCEEDED
    assert (run["users_total"], run["users_done"], run["users_failed"], run["users_skipped"]) == (USERS, USERS, 0, 0)
    assert run["files_total"] == len(objects)
    statuses = Counter(job["status"] for job in runs.user_jobs(engine.clients.dynamodb, engine.settings, run["run_id"]))
    assert statuses == {runs.COMPLETED: USERS}
    distinct = {sha(body) for body, _ in objects.values()}
    versions = all_content_versions(engine)
    assert len(versions) == len(distinct) and set(versions.values()) == {1}
    entries = 0
    for page in engine.clients.dynamodb.get_paginator("scan").paginate(TableName=engine.settings.content_table):
        assert all(item["state"]["S"] == STORED for item in page["Items"])
        entries += len(page["Items"])
    assert entries == len(distinct)

    figures = {
        "users": USERS, "objects": len(objects), "distinct_contents": len(distinct),
        "bytes": sum(len(b) for b, _ in objects.values()), "worker_threads": THREADS,
        "upload_seconds": round(upload_seconds, 1), "run_wall_seconds": round(run_seconds, 1),
        "s3_requests": counter.total("s3"), "dynamodb_requests": counter.total("dynamodb"),
        "s3_by_operation": counter.by_operation("s3"), "dynamodb_by_operation": counter.by_operation("dynamodb"),
    }
    text = json.dumps(figures, indent=2)
    (tmp_path / "load-results.json").write_text(text)
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / "load.json").write_text(text)
    with capsys.disabled():
        print("\nload test:", text)
