"""`make bench` scenario 9: how fast `restore` is, for one user and for every user, to S3
(server-side copies) and to a directory (every file's SHA-256 checked), against the emulator's raw
rate at the same concurrency: CopyObject of the same content objects (what a restore to S3 does
without reading a snapshot), and GetObject read to the end (what a restore to a directory reads).

On the rig of scenarios 4 and 2 (their users after two runs), each user at its newest snapshot.
"""
from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backup_cfn.bench.rig import progress


def _rate(objects: int, size: int, seconds: float) -> dict:
    return {"objects": objects, "bytes": size, "seconds": round(seconds, 3),
            "objects_per_second": round(objects / seconds, 1), "mb_per_second": round(size / 1e6 / seconds, 2)}


def _timed_restore(s3, bucket: str, snapshots, target, users_at_once: int, expected_files: int) -> dict:
    from backup_cfn.engine.restore import restore_users

    started = time.perf_counter()
    reports = restore_users(s3, bucket, snapshots, target, users_at_once=users_at_once)
    seconds = time.perf_counter() - started
    failed = [r for r in reports if not r.ok]
    files = sum(r.files for r in reports)
    if failed or files != expected_files:
        raise RuntimeError(f"restore of {len(snapshots)} user(s) to {target} restored {files} of {expected_files} "
                           f"files; {len(failed)} user(s) failed: {failed[0].problems[:1] if failed else ''}")
    return _rate(files, sum(r.bytes for r in reports), seconds)


def _timed_raw(work, items: list, concurrency: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(work, items))
    return time.perf_counter() - started


def restore_speed(rig, *, one_user: str | None = None) -> dict:
    """One user (the one with most files, unless named) and every user, each to S3 and to a folder,
    with raw CopyObject and GetObject of the same content at the same concurrency."""
    from backup_cfn.engine import naming
    from backup_cfn.engine.manifest import read_manifest
    from backup_cfn.engine.restore import FILE_THREADS, USERS_AT_ONCE, BucketTarget, DirectoryTarget, every_users_snapshot

    s3, bucket = rig.clients.s3, rig.settings.backup_bucket
    snapshots, _ = every_users_snapshot(s3, bucket)
    with ThreadPoolExecutor(max_workers=32) as pool:
        manifests = dict(zip((ref.user for ref in snapshots), pool.map(lambda ref: read_manifest(s3, bucket, ref.key),
                                                                       snapshots)))
    one_user = one_user or max(manifests, key=lambda user: (len(manifests[user].entries), user))
    landing = f"{rig.settings.source_bucket}-restored"
    s3.create_bucket(Bucket=landing)

    def measure(label: str, refs, users_at_once: int) -> dict:
        entries = [(ref.user, path, entry) for ref in refs for path, entry in manifests[ref.user].entries.items()]
        concurrency = min(users_at_once, len(refs)) * FILE_THREADS
        progress(f"  9 restore {label}: {len(refs)} user(s), {len(entries)} files, {concurrency} requests at once")
        to_s3 = _timed_restore(s3, bucket, refs, BucketTarget(landing, label), users_at_once, len(entries))
        with tempfile.TemporaryDirectory(prefix="bench-restore-") as folder:
            to_folder = _timed_restore(s3, bucket, refs, DirectoryTarget(Path(folder)), users_at_once, len(entries))

        def copy(item):
            user, path, entry = item
            s3.copy_object(Bucket=landing, Key=f"raw-{label}/{user}/{path}",
                           CopySource={"Bucket": bucket, "Key": naming.content_key(entry.sha256)})

        def get(item):
            s3.get_object(Bucket=bucket, Key=naming.content_key(item[2].sha256))["Body"].read()

        size = sum(entry.size for _, _, entry in entries)
        raw_copy = _rate(len(entries), size, _timed_raw(copy, entries, concurrency))
        raw_get = _rate(len(entries), size, _timed_raw(get, entries, concurrency))
        return {"users": len(refs), "concurrency": concurrency, "to_s3": to_s3, "to_directory": to_folder,
                "raw_copy": raw_copy, "raw_get": raw_get,
                "to_s3_over_raw_copy": round(raw_copy["seconds"] / to_s3["seconds"], 3),
                "to_directory_over_raw_get": round(raw_get["seconds"] / to_folder["seconds"], 3)}

    one = next(ref for ref in snapshots if ref.user == one_user)
    return {"one_user": {"user": one_user, **measure("one-user", [one], 1)},
            "every_user": measure("every-user", snapshots, USERS_AT_ONCE)}


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 9's rows of the bench table."""
    rows = []
    for key in ("one_user", "every_user"):
        part = (results.get("restore") or {}).get(key)
        if not part:
            continue
        s3_, folder = part["to_s3"], part["to_directory"]
        label = f"user {part['user']}" if key == "one_user" else f"every user ({part['users']})"
        rows.append(("" if rows else "9 restore",
                     f"{label}, {s3_['objects']} files, at {part['concurrency']}: "
                     f"to S3 {s3_['objects_per_second']}/s {s3_['mb_per_second']} MB/s, "
                     f"to a folder {folder['objects_per_second']}/s {folder['mb_per_second']} MB/s",
                     f"{part['to_s3_over_raw_copy']} of raw copy ({part['raw_copy']['objects_per_second']}/s), "
                     f"{part['to_directory_over_raw_get']} of raw get ({part['raw_get']['objects_per_second']}/s)",
                     "(ratio)"))
    return rows
