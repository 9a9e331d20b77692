"""The scale model's rows for continuous protection (docs/scale.md): at 1x, 10x and 100x, the day's
changes and their peak, the capture's invocations and requests, its throughput at the configured
MaximumConcurrency, the RPO through a burst of 10,000 changes within a minute and through one user
rewriting 100,000 files at once, and the first limit it hits. Requests per captured change are scenario 11's when it ran, else the data model's.
Pure arithmetic, no AWS call; the limits and latencies are scale.py's, with EventBridge's own."""
from __future__ import annotations

import math

from backup_cfn import contract
from backup_cfn.bench.scale import SCALES, Design, _count, _duration
from backup_cfn.bench.scale_limits import LIMITS, Limit

# A day's changes arrive over working hours, the busiest hour at three times the day's mean.
CHANGE_HOURS = 10
PEAK_FACTOR = 3
BURST_PER_MINUTE = 10_000
# Issue 20's hostile case: one user rewriting this many files at once (ransomware-shaped).
REWRITE_FILES = 100_000
EVENTBRIDGE_INVOCATIONS = Limit(18_750, "rule target invocations per s (us-east-1, adjustable quota)",
                                "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html")
# Per captured change when scenario 11 did not run: the capture's reads and writes by the data model
# (a GET, a claim, a copy and a mark for new content), its share of the mapping's receives and
# deletes and of the journal segment and burst counter of its batch.
FALLBACK_PER_CHANGE = {"s3": 2.1, "dynamodb": 2.1, "sqs": 0.3}


def per_change(measured: dict | None) -> tuple[dict, str]:
    if measured and measured.get("requests"):
        return {s: measured["requests"][s]["per_change"] for s in ("s3", "dynamodb", "sqs")}, "measured (scenario 11)"
    return dict(FALLBACK_PER_CHANGE), "the data model (scenario 11 did not run)"


def change_seconds(requests: dict, object_bytes: float) -> float:
    """One change inside an invocation: its requests one after another, and its bytes read (to
    hash) and copied."""
    latency = {"s3": LIMITS["s3_request_seconds"].value, "dynamodb": LIMITS["dynamodb_request_seconds"].value,
               "sqs": LIMITS["sqs_request_seconds"].value}
    return (sum(n * latency[s] for s, n in requests.items())
            + 2 * object_bytes / LIMITS["s3_bytes_per_request_second"].value)


def model(measured: dict | None, env, design: Design = Design()) -> dict:
    requests, source = per_change(measured)
    concurrency = env.capture_concurrency
    rows = []
    for scale in SCALES:
        daily = scale.objects * design.churn
        peak = daily / (CHANGE_HOURS * 3600) * PEAK_FACTOR
        one_change = change_seconds(requests, scale.bytes / scale.objects)
        per_invocation = design.job_threads / one_change
        throughput = per_invocation * concurrency
        burst = BURST_PER_MINUTE / 60
        backlog = max(0.0, (burst - throughput) * 60)
        # The oldest change of the burst waits the window, the backlog ahead of it, and its own capture.
        burst_rpo = contract.CAPTURE_BATCHING_WINDOW_SECONDS + backlog / throughput + one_change
        # One user's files rewritten at once: the last of them waits for all the others.
        rewrite_rpo = contract.CAPTURE_BATCHING_WINDOW_SECONDS + REWRITE_FILES / throughput + one_change
        index_writes = burst * requests["dynamodb"]
        checks = [
            ("capture throughput (burst)", burst, throughput, "changes/s",
             "raise capture_concurrency (up to 1,000)"),
            ("capture throughput (peak hour)", peak, throughput, "changes/s", "raise capture_concurrency"),
            ("RPO through the burst", burst_rpo, contract.RPO_TARGET_SECONDS, "s", "raise capture_concurrency"),
            (f"RPO through one user rewriting {REWRITE_FILES:,} files", rewrite_rpo, contract.RPO_TARGET_SECONDS, "s",
             "raise capture_concurrency (the minute before the rewrite is restorable throughout)"),
            ("content index writes", index_writes, LIMITS["dynamodb_new_table_writes"].value, "writes/s",
             "on-demand doubles its peak as it goes"),
            ("EventBridge deliveries", burst, EVENTBRIDGE_INVOCATIONS.value, "events/s", "ask for a higher quota"),
            ("Lambda concurrency", concurrency, LIMITS["lambda_account_concurrency"].value, "invocations",
             "ask for a higher account quota"),
        ]
        out = [{"check": name, "demand": float(f"{demand:.4g}"), "limit": limit, "unit": unit,
                "ratio": float(f"{demand / limit:.4g}"), "answer": answer}
               for name, demand, limit, unit, answer in checks]
        # Raising capture_concurrency: the first of the per-concurrency bounds it meets.
        ceiling = min((LIMITS["dynamodb_new_table_writes"].value / (per_invocation * requests["dynamodb"]),
                       "content index writes (new table, adaptive)"),
                      (LIMITS["lambda_account_concurrency"].value, "Lambda account concurrency (quota)"),
                      (LIMITS["esm_maximum_concurrency"].value, "MaximumConcurrency's maximum"))
        batches = daily / max(1.0, min(contract.CAPTURE_BATCH_SIZE,
                                       daily / (CHANGE_HOURS * 3600) * contract.CAPTURE_BATCHING_WINDOW_SECONDS))
        rows.append({
            "scale": scale.name, "changes_per_day": round(daily), "peak_per_second": round(peak, 2),
            "invocations_per_day": math.ceil(batches),
            "requests_per_day": {s: round(n * daily) for s, n in requests.items()} | {"eventbridge_sends": round(daily)},
            "throughput_per_second": round(throughput, 1), "burst_rpo_seconds": round(burst_rpo, 1),
            "rewrite_rpo_seconds": round(rewrite_rpo, 1),
            "checks": out, "first_limit": max(out, key=lambda row: row["ratio"])["check"],
            "hard_ceiling": {"concurrency": int(ceiling[0]), "bound": ceiling[1]},
        })
    return {"source": source, "concurrency": concurrency, "per_change": requests, "scales": rows}


def table(modelled: dict) -> str:
    rows = [
        ("changes a day / peak", lambda s: f"{_count(s['changes_per_day'])} / {s['peak_per_second']}/s"),
        ("capture invocations a day", lambda s: _count(s["invocations_per_day"])),
        ("requests a day", lambda s: f"S3 {_count(s['requests_per_day']['s3'])}, DDB "
                                     f"{_count(s['requests_per_day']['dynamodb'])}, SQS "
                                     f"{_count(s['requests_per_day']['sqs'] + s['requests_per_day']['eventbridge_sends'])}"),
        ("capture throughput", lambda s: f"{s['throughput_per_second']:.0f}/s at {modelled['concurrency']}"),
        ("RPO, 10,000 changes in a minute", lambda s: _duration(s["burst_rpo_seconds"])),
        (f"RPO, one user rewriting {REWRITE_FILES:,}", lambda s: _duration(s["rewrite_rpo_seconds"])),
        ("first limit", lambda s: next(f"{r['check']} {r['ratio']:.2f}x" for r in s["checks"]
                                       if r["check"] == s["first_limit"])),
        ("raising capture_concurrency", lambda s: f"{s['hard_ceiling']['bound']} at {s['hard_ceiling']['concurrency']}"),
    ]
    scales = modelled["scales"]
    header = ("continuous path", *(s["scale"] for s in scales))
    body = [(label, *(fmt(s) for s in scales)) for label, fmt in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    lines.append(f"(requests per captured change: {modelled['source']}: " + ", ".join(
        f"{s} {n}" for s, n in modelled["per_change"].items()) + ", + 1 EventBridge send)")
    return "\n".join(lines)
