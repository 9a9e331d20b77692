"""`make bench` scenario 10: every user restored by the stack (the restore service: one job per
user on the restore queue, the restore function's real handler under the runner that reproduces
Lambda's event source mapping), byte-exact: every restored object read back and compared with the
source object it was backed up from. On the rig of scenarios 4 and 2 (their users after two runs,
so each user's newest snapshot is the source as it is now); against raw CopyObject of the same
content at the same number of copies at once."""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

from backup_cfn.bench.rig import progress


def distributed_restore(rig, env) -> dict:
    from backup_cfn import contract
    from backup_cfn.engine import restore_jobs
    from backup_cfn.engine.manifest import read_manifest
    from backup_cfn.engine.restore import every_users_snapshot
    from backup_cfn.local.runner import drain_restore_queue
    from backup_cfn.ops import restore_service
    from backup_cfn.ops.target import DeployedEnvironment

    s3, settings = rig.clients.s3, rig.settings
    source = settings.source_bucket
    target = DeployedEnvironment(env, rig.clients, settings, rig.outputs)
    dead_letters = rig.outputs[contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL]
    arn = rig.clients.sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    workers = env.max_concurrent_restores
    rig.counter.reset()
    started = time.perf_counter()
    restore_id = restore_service.start(target, users=None, source="backup", source_s3=s3, to=f"s3://{source}/dr-stack",
                                       run_id=None, at=None, path_prefix=None)
    enqueued = time.perf_counter() - started
    progress(f"  10 restore by the stack {restore_id}: {workers} restore functions at once, "
             f"{restore_jobs.THREADS} copies each")
    report = drain_restore_queue(rig.clients, settings.with_(restore_dead_letter_queue_arn=arn), dead_letters,
                                 threads=workers)
    seconds = time.perf_counter() - started
    requests = {service: rig.counter.by_operation(service) for service in ("s3", "dynamodb", "sqs")}
    record = restore_jobs.get_restore(rig.clients.dynamodb, settings, restore_id)
    if record["status"] != restore_jobs.RESTORED:
        raise RuntimeError(f"restore {restore_id} ended {record['status']}: {record.get('users_failed')} failed")

    progress("  10 every restored object read back and compared with its source")
    snapshots, _ = every_users_snapshot(s3, settings.backup_bucket)
    with ThreadPoolExecutor(max_workers=32) as pool:
        manifests = list(pool.map(lambda ref: read_manifest(s3, settings.backup_bucket, ref.key), snapshots))
    pairs = [(f"{m.user}/{path}", f"dr-stack/{m.user}/{path}", entry.sha256) for m in manifests
             for path, entry in m.entries.items()]

    def same(pair) -> bool:
        original, restored, sha256 = pair
        data = s3.get_object(Bucket=source, Key=restored)["Body"].read()
        return data == s3.get_object(Bucket=source, Key=original)["Body"].read() \
            and hashlib.sha256(data).hexdigest() == sha256

    with ThreadPoolExecutor(max_workers=32) as pool:
        mismatched = [pair[1] for pair, ok in zip(pairs, pool.map(same, pairs)) if not ok]
    if mismatched or int(record["files"]) != len(pairs):
        raise RuntimeError(f"restore {restore_id}: {len(mismatched)} of {len(pairs)} objects differ "
                           f"({record['files']} restored), e.g. {mismatched[:3]}")

    concurrency = workers * restore_jobs.THREADS
    progress(f"  10 raw CopyObject of the same {len(pairs)} objects at {concurrency} at once")

    def copy(pair):
        s3.copy_object(Bucket=source, Key=f"raw-{pair[1]}", CopySource={"Bucket": source, "Key": pair[0]})

    raw_started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(copy, pairs))
    raw_seconds = time.perf_counter() - raw_started
    files = len(pairs)
    totals = {service: sum(ops.values()) for service, ops in requests.items()}
    return {
        "restore_id": restore_id, "users": int(record["users_total"]), "users_restored": int(record["users_done"]),
        "files": files, "bytes": int(record["bytes"]), "byte_exact": True, "workers": workers,
        "copies_at_once": concurrency, "enqueue_seconds": round(enqueued, 2), "seconds": round(seconds, 2),
        "objects_per_second": round(files / seconds, 1), "invocations": report.invocations,
        "raw_copy_seconds": round(raw_seconds, 2), "raw_copy_objects_per_second": round(files / raw_seconds, 1),
        "over_raw_copy": round(raw_seconds / seconds, 3), "requests": requests,
        "requests_per_file": {service: round(n / files, 2) for service, n in totals.items()},
    }


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 10's row of the bench table."""
    result = results.get("restore_by_stack")
    if not result:
        return []
    return [("10 restore by stack", f"{result['users_restored']} of {result['users']} users, {result['files']} files "
                                    f"byte-exact: {result['objects_per_second']}/s, {result['workers']} functions x "
                                    f"16 copies",
             f"{result['over_raw_copy']} of raw copy ({result['raw_copy_objects_per_second']}/s)",
             "byte-exact")]
