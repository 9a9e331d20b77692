"""Scenario 6, a user too large for one invocation: one user's folder backed up by the local runner
with a scaled-down function timeout (each invocation killed at its deadline, as Lambda does), a
first full run and then an incremental one. Measured: invocations, objects covered per second of
an invocation's working time; extrapolated to the worker's 900-second timeout (a tenth, at most
60 s, kept back to hand on): the invocations a 200,000-object user needs.

The emulator is far slower per request than S3 and DynamoDB for the listing (it builds each page by
scanning the bucket), so the extrapolation is an upper bound for AWS; the requests per object, also
reported, are what carries over exactly."""
from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

from backup_cfn import contract
from backup_cfn.bench.rig import KIB, Sizes, make_rig, progress

USER = "large-user"
TARGET_OBJECTS = 200_000


def split_user(env, sizes: Sizes) -> dict:
    from backup_cfn.engine import naming, runs
    from backup_cfn.engine.settings import utc_now
    from backup_cfn.local.runner import drain_queue, invoke_initiator

    rig = make_rig(env, 60, job_threads=8)
    deadline = sizes.split_deadline_seconds
    # The scaled-down invocation: real time throughout, the lease as long as an invocation, half of
    # it kept back (an emulator round trip under load is a good part of a second), pages of 100.
    rig.settings = rig.settings.with_(clock=utc_now, stale_after_seconds=deadline + 1, handoff_reserve_share=0.5,
                                      list_page_size=100, retry_base_seconds=1, retry_max_seconds=2)
    objects = sizes.split_objects
    for i in range(objects):
        body = b"%%PDF-1.7 large user %06d " % i + bytes(4 * KIB)
        extra = {"ChecksumAlgorithm": "SHA256"} if i % 2 else {}
        rig.clients.s3.put_object(Bucket=rig.settings.source_bucket, Key=f"{USER}/reports/{i:06d}.pdf", Body=body,
                                  **extra)
    progress(f"  {objects} objects of one user; first run, {deadline} s invocations")
    first = _run(rig, datetime.now(timezone.utc), deadline, drain_queue, invoke_initiator, runs, naming)
    changed = max(1, objects // 100)
    for i in range(0, objects, objects // changed):
        rig.clients.s3.put_object(Bucket=rig.settings.source_bucket, Key=f"{USER}/reports/{i:06d}.pdf",
                                  Body=b"%%PDF-1.7 revised %06d" % i)
    progress("  incremental run, 1% changed")
    incremental = _run(rig, datetime.now(timezone.utc) + timedelta(seconds=1), deadline, drain_queue, invoke_initiator,
                       runs, naming)
    usable = deadline * (1 - rig.settings.handoff_reserve_share)
    aws_usable = contract.WORKER_TIMEOUT_SECONDS - min(60, contract.WORKER_TIMEOUT_SECONDS * 0.1)
    result = {"objects": objects, "deadline_seconds": deadline, "usable_seconds_per_invocation": usable,
              "aws_usable_seconds_per_invocation": aws_usable, "changed_objects": changed}
    for name, measured in (("first_run", first), ("incremental", incremental)):
        rate = objects / (measured["invocations"] * usable)
        result[name] = {**measured, "objects_per_usable_second": round(rate, 1),
                        "invocations_for_200k_at_900s": math.ceil(TARGET_OBJECTS / (rate * aws_usable))}
    return result


def _run(rig, moment, deadline, drain_queue, invoke_initiator, runs, naming) -> dict:
    moment = moment.replace(microsecond=0)
    rig.counter.reset()
    started = time.perf_counter()
    invoke_initiator(rig.clients, rig.settings, moment, [USER])
    report = drain_queue(rig.clients, rig.settings, threads=1, timeout_seconds=deadline, give_up_after=3600)
    seconds = time.perf_counter() - started
    run_id = naming.run_id_for(moment)
    record = runs.get_run(rig.clients.dynamodb, rig.settings, run_id)
    if record.get("status") != "SUCCEEDED":
        raise RuntimeError(f"the large user's run ended {record.get('status')}")
    job = runs.get_user_job(rig.clients.dynamodb, rig.settings, run_id, USER)
    return {"invocations": report.invocations, "killed": report.killed, "parts": int(job.get("next_part", 0)) + 1,
            "seconds": round(seconds, 1), "files_changed": int(record["files_changed"]),
            "s3_requests": rig.counter.total("s3"), "dynamodb_requests": rig.counter.total("dynamodb")}


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 8's rows of the bench table."""
    sp = results.get("split")
    if not sp:
        return []
    f, i = sp["first_run"], sp["incremental"]
    return [("8 large user", f"{sp['objects']} objects, {sp['deadline_seconds']} s invocations: first run "
                             f"{f['invocations']}, incremental {i['invocations']}",
             f"200,000 objects at 900 s: {f['invocations_for_200k_at_900s']} + "
             f"{i['invocations_for_200k_at_900s']} invocations", "bounded")]
