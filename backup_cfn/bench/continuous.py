"""Scenario 11, continuous protection on the emulator: how long from a change of the source to its
protection (content stored, journal segment written), for a steady stream of changes and for a
burst (10,000 changes within a minute; QUICK: fewer), and how many requests a captured change
costs, against the nightly run's per new object (scenario 4).

The path is the real one: S3's events through EventBridge to the capture queue (the emulator's
patched delivery), the capture function's handler under the stand-in for its event source mapping
with AWS's batching (BatchSize 500, a 5-second window, MaximumConcurrency as the local environment
sets it). A change's latency is from its write returning to the client to its segment's
`captured_at` (both this machine's clock).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from backup_cfn import contract
from backup_cfn.bench.rig import make_rig

BURST_THREADS = 16
USERS = 10
IGNORED_OPERATIONS = {("sqs", "GetQueueAttributes")}   # the bench's own look at the queue


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _latencies(rig, written: dict[str, float]) -> list[float]:
    from backup_cfn.engine import journal

    captured: dict[str, float] = {}
    for ref in journal.list_segments(rig.clients.s3, rig.settings.backup_bucket):
        segment = journal.read_segment(rig.clients.s3, rig.settings.backup_bucket, ref.key)
        at = datetime.fromisoformat(segment.captured_at.replace("Z", "+00:00")).timestamp()
        for change in segment.changes:
            captured.setdefault(f"{segment.user}/{change.path}", at)
    missing = [key for key in written if key not in captured]
    if missing:
        raise RuntimeError(f"{len(missing)} change(s) never captured, e.g. {missing[0]}")
    return [captured[key] - when for key, when in written.items()]


def _summary(latencies: list[float], changes: int, write_seconds: float) -> dict:
    return {"changes": changes, "write_seconds": round(write_seconds, 2),
            "p50_seconds": round(_percentile(latencies, 0.5), 2), "p99_seconds": round(_percentile(latencies, 0.99), 2),
            "max_seconds": round(max(latencies), 2), "mean_seconds": round(statistics.fmean(latencies), 2)}


def continuous_protection(env, steady_rate: float, steady_seconds: float, burst_changes: int) -> dict:
    from backup_cfn import aws
    from backup_cfn.local.capture_source import CaptureSource

    rig = make_rig(env, retention_days=60)
    rig.settings = rig.settings.with_(clock=lambda: datetime.now(timezone.utc))
    writer = aws.client(env, "s3")          # not counted: the clients' writes are not the capture's requests
    source = rig.settings.source_bucket
    body = os.urandom(1024)
    results = {"concurrency": env.capture_concurrency, "batch_size": contract.CAPTURE_BATCH_SIZE,
               "batching_window_seconds": contract.CAPTURE_BATCHING_WINDOW_SECONDS}
    rig.counter.reset()
    with CaptureSource(rig.clients, rig.settings, concurrency=env.capture_concurrency, region=env.region) as capture:
        steady: dict[str, float] = {}
        began = time.monotonic()
        for i in range(round(steady_rate * steady_seconds)):
            time.sleep(max(0.0, began + i / steady_rate - time.monotonic()))
            key = f"bench-{i % USERS:02d}/steady/{i:06d}.txt"
            writer.put_object(Bucket=source, Key=key, Body=body + i.to_bytes(4, "big"))
            steady[key] = time.time()
        steady_write = time.monotonic() - began
        if not capture.wait_until_idle(600):
            raise RuntimeError("the steady stream was not captured within 10 minutes")
        results["steady"] = _summary(_latencies(rig, steady), len(steady), steady_write) | {"rate_per_second": steady_rate}

        burst: dict[str, float] = {}
        lock = threading.Lock()

        def write(i: int) -> None:
            key = f"bench-{i % USERS:02d}/burst/{i:06d}.txt"
            writer.put_object(Bucket=source, Key=key, Body=body + i.to_bytes(4, "big"))
            with lock:
                burst[key] = time.time()

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=BURST_THREADS) as pool:
            list(pool.map(write, range(burst_changes)))
        burst_write = time.monotonic() - began
        if not capture.wait_until_idle(1800):
            raise RuntimeError("the burst was not captured within 30 minutes")
        drained = time.monotonic() - began
        latencies = _latencies(rig, {**steady, **burst})[len(steady):]
        results["burst"] = _summary(latencies, len(burst), burst_write) | {
            "captured_per_second": round(len(burst) / drained, 1), "drain_seconds": round(drained, 1)}
        results["invocations"] = capture.stats.invocations
        results["killed"] = capture.stats.killed
        empty_receives = capture.stats.empty_receives
    changes = len(steady) + len(burst)
    by_service = {}
    for service in ("s3", "dynamodb", "sqs"):
        ops = {op: n for op, n in rig.counter.by_operation(service).items() if (service, op) not in IGNORED_OPERATIONS}
        if service == "sqs":
            # Polls that found the queue empty are the mapping's idle cost (docs/scale.md), not a change's.
            ops["ReceiveMessage"] = max(0, ops.get("ReceiveMessage", 0) - empty_receives)
            results["empty_receives"] = empty_receives
        by_service[service] = {"total": sum(ops.values()), "per_change": round(sum(ops.values()) / changes, 2),
                               "operations": ops}
    results["requests"] = by_service
    # EventBridge's SendMessage of each event is a request too, made by AWS, not by the function.
    results["requests_per_change"] = round(sum(s["total"] for s in by_service.values()) / changes, 2)
    results["requests_per_change_with_eventbridge"] = round(results["requests_per_change"] + 1, 2)
    return results


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 11's rows of the bench table."""
    c = results.get("continuous")
    if not c:
        return []
    s, b = c["steady"], c["burst"]
    rows = [
        ("11 continuous", f"steady {s['rate_per_second']}/s x {s['changes']}: change to protected",
         f"p50 {s['p50_seconds']} s, p99 {s['p99_seconds']} s", f"RPO {contract.RPO_TARGET_SECONDS // 60} min"),
        ("", f"burst {b['changes']} written in {b['write_seconds']} s: change to protected",
         f"p50 {b['p50_seconds']} s, p99 {b['p99_seconds']} s; {b['captured_per_second']}/s",
         f"RPO {contract.RPO_TARGET_SECONDS // 60} min"),
    ]
    nightly = (results.get("end_to_end") or {}).get("profile", {}).get("requests_per_object", {}).get("all")
    rq = c["requests"]
    rows.append(("", f"per captured change: {c['requests_per_change']} requests (S3 {rq['s3']['per_change']}, "
                     f"DDB {rq['dynamodb']['per_change']}, SQS {rq['sqs']['per_change']}) + 1 EventBridge send",
                 f"nightly per new object: {nightly}" if nightly else "nightly: scenario 4 did not run",
                 "(compare)"))
    return rows
