"""The scale model (docs/scale.md): the nightly run, the first full run and a full restore at 1x,
10x and 100x, from the engine's requests as the bench measured them and AWS's published limits.
Pure arithmetic, no AWS call.

Method. Every operation's count in a run is fitted as `per_user * users + per_object * objects
written`, through the two runs scenarios 2 and 4 measured on the same users: the first full run
(every object new) and the incremental run (1% changed). The fit reproduces both measurements
exactly and carries the engine's real request mix to any number of users and changed objects.
Times come from published per-request figures (DynamoDB single-digit milliseconds, S3 "tens of
milliseconds" for small requests and one request per 85-90 MB/s) and the design's concurrency;
each limit is checked as demand over limit, and the largest ratio is what breaks first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from backup_cfn import contract
from backup_cfn.bench import scale_restore
from backup_cfn.bench.scale_limits import (  # noqa: F401 - the model's limits, read through this module too
    CONTENT_PREFIXES,
    LIMITS,
    SHARD_PARTITION_WCU_PER_JOB,
    TALLY_WCU_PER_JOB,
    TRIES_PER_JOB,
    conflict_chance,
    first_hard_ceiling,
    first_to_break,
    row,
)
from backup_cfn.engine import restore_jobs, tally

TB = 10**12
SERVICES = ("s3", "dynamodb", "sqs")


@dataclass(frozen=True)
class Scale:
    name: str
    users: int
    objects: int
    bytes: int


SCALES = (Scale("1x", 1_000, 200_000, 1 * TB), Scale("10x", 10_000, 2_000_000, 10 * TB),
          Scale("100x", 100_000, 20_000_000, 100 * TB))


@dataclass(frozen=True)
class Design:
    """The design's own figures: environments.toml and backup_cfn/contract.py."""
    concurrency: int = 50                # prod's max_concurrent_backups
    job_threads: int = 8                 # the worker's threads per job (engine Settings.job_threads)
    initiator_send_threads: int = 8      # engine/initiator.py SEND_THREADS
    backup_window_seconds: int = 4 * 3600  # schedule 02:00 to prune_schedule 06:00
    retention_days: int = 60
    churn: float = 0.01                  # the share of objects a night changes (scenario 2's)
    restore_users_parallel: int = 8      # users restored at once by a restore on one machine
    restore_files_per_user: int = 8      # files in flight per user (ops/restore.py threads)
    restore_workers: int = 100           # prod's max_concurrent_restores: restore jobs at once
    restore_threads: int = restore_jobs.THREADS   # copies at once per restore job
    run_shards: int = contract.RUN_TALLY_SHARDS    # a run's tallies (fewer for a small run: tally.shards_for)
    content_index_warm_writes: int = 0   # the template's WarmThroughput (0: a new on-demand table's 4,000)
    target_seconds: int = 3600           # the first full run and the full restore, at 100x (issue 21)


def design_of(env) -> Design:
    """The design as an environment configures it (the bench models prod's)."""
    return Design(concurrency=env.max_concurrent_backups, retention_days=env.retention_days,
                  restore_workers=env.max_concurrent_restores,
                  content_index_warm_writes=env.content_index_warm_writes)


@dataclass(frozen=True)
class Fit:
    """Requests of one run as `per_user * users + per_object * objects written`, by service and operation."""
    per_user: dict
    per_object: dict
    source: str                          # "measured" or what stood in for a missing measurement

    def requests(self, users: int, written: int) -> dict[str, dict[str, float]]:
        return {service: {op: self.per_user[service].get(op, 0) * users + self.per_object[service].get(op, 0) * written
                          for op in sorted(set(self.per_user[service]) | set(self.per_object[service]))}
                for service in SERVICES}


def fit(first: dict, incremental: dict, users: int, first_written: int, incremental_written: int,
        source: str = "measured") -> Fit:
    """Solve, per operation, a*users + b*written through the two runs (same users). Never negative:
    an operation only the first run makes is carried per object; one whose incremental count the
    line would need a negative per-user part for is carried per changed object, so the
    incremental run, the one that recurs every night, is always given back exactly."""
    per_user, per_object = {}, {}
    for service in SERVICES:
        per_user[service], per_object[service] = {}, {}
        for op in set(first.get(service, {})) | set(incremental.get(service, {})):
            f, i = first.get(service, {}).get(op, 0), incremental.get(service, {}).get(op, 0)
            b = max(0.0, (f - i) / (first_written - incremental_written))
            a = (i - b * incremental_written) / users
            if a < 0:
                # Fewer per changed object in the incremental run than per object in the first: no
                # per-user part, and the nightly figure (the one that recurs) kept exact.
                a, b = 0.0, i / incremental_written
            per_user[service][op], per_object[service][op] = a, b
    return Fit(per_user, per_object, source)


# Scenario 2's incremental requests per user and per changed object on the design, for when the
# bench ran without scenario 4's request counts (results from before they were recorded): the
# engine's writes by the data model (docs/bench minimum_definition), named as a fallback.
FALLBACK_FIRST_PER_OBJECT = {"s3": {"HeadObject": 1, "GetObject": 1, "CopyObject": 1},
                             "dynamodb": {"PutItem": 1, "UpdateItem": 1}, "sqs": {}}


def fit_from_results(results: dict) -> Fit | None:
    r, e = results.get("requests"), results.get("end_to_end")
    if not r:
        return None
    incremental = {s: r.get(s, {}) for s in SERVICES}
    users, changed = r["users"], r["changed_objects"]
    if e and e.get("requests"):
        return fit(e["requests"], incremental, users, e["objects"], changed)
    # Only the incremental run measured: per object the fallback, per user the rest.
    per_object = FALLBACK_FIRST_PER_OBJECT
    per_user = {s: {op: max(0.0, (n - per_object[s].get(op, 0) * changed) / users) for op, n in incremental[s].items()}
                for s in SERVICES}
    return Fit(per_user, {s: dict(per_object[s]) for s in SERVICES},
               "incremental measured; per new object the data model's minimum (scenario 4 counted no requests)")


# --- one scale -------------------------------------------------------------------------------------

@dataclass
class Run:
    requests: dict
    jobs: int
    job_seconds: float
    concurrency: int
    seconds: float
    finish_rate: float                 # jobs recorded per second at full concurrency


def job_seconds(fit_: Fit, written_per_user: float, object_bytes: float, design: Design) -> float:
    """One job's time on AWS: its per-user requests one after another, its per-object requests
    and bytes (read to hash, then copied) over the job's threads."""
    lat = {"s3": LIMITS["s3_request_seconds"].value, "dynamodb": LIMITS["dynamodb_request_seconds"].value,
           "sqs": LIMITS["sqs_request_seconds"].value}
    serial = sum(n * lat[s] for s in SERVICES for n in fit_.per_user[s].values())
    per_object = sum(n * lat[s] for s in SERVICES for n in fit_.per_object[s].values())
    transfer = 2 * object_bytes / LIMITS["s3_bytes_per_request_second"].value
    return serial + written_per_user * (per_object + transfer) / design.job_threads


def run(fit_: Fit, scale: Scale, written: int, design: Design, concurrency: int | None = None) -> Run:
    per_user_written = written / scale.users
    seconds_per_job = job_seconds(fit_, per_user_written, scale.bytes / scale.objects, design)
    concurrency = min(concurrency or design.concurrency, int(LIMITS["lambda_account_concurrency"].value))
    waves = math.ceil(scale.users / concurrency)
    seconds = (initiator_seconds(scale.users, design) + scale_restore.esm_ramp_seconds(concurrency)
               + waves * seconds_per_job)
    return Run(fit_.requests(scale.users, written), scale.users, seconds_per_job, concurrency, seconds,
               concurrency / seconds_per_job)


def initiator_seconds(users: int, design: Design) -> float:
    """The user listing (1,000 prefixes a page, one page after another) and the enqueuing
    (SendMessageBatch of 10, on the initiator's send threads)."""
    return scale_restore.enqueue_seconds(users, design.initiator_send_threads)


def first_run_in(fit_: Fit, scale: Scale, design: Design) -> Run | None:
    """The first full run with the fewest workers that end it within the target; None when even
    the account's concurrency cannot."""
    for workers in range(design.concurrency, int(LIMITS["lambda_account_concurrency"].value) + 1):
        first = run(fit_, scale, scale.objects, design, workers)
        if first.seconds <= design.target_seconds:
            return first
    return None


def index_writes_per_second(fit_: Fit, scale: Scale, first: Run) -> float:
    """The content index's writes during a first full run: every DynamoDB write per object (the
    claim-or-touch and the mark; the per-user writes go to the runs table)."""
    per_object = sum(n for op, n in fit_.per_object["dynamodb"].items() if op in ("PutItem", "UpdateItem"))
    return per_object * scale.objects / first.seconds


def dynamodb_items(fit_: Fit, scale: Scale, design: Design, first: Run) -> dict:
    """Runs table: a header, its tallies and one item per user per run, kept the retention plus
    the extra days (TTL), and the LATEST pointer. Content index: one item per distinct content kept."""
    days = design.retention_days + contract.RUN_RECORD_EXTRA_DAYS
    first_contents = first.requests["s3"].get("CopyObject", 0)
    nightly_new = fit_.requests(scale.users, round(scale.objects * design.churn))["s3"].get("CopyObject", 0)
    shards = tally.shards_for(scale.users, design.run_shards)
    return {"runs_table": (scale.users + shards + 1) * days + 1,
            "content_index": round(first_contents + nightly_new * design.retention_days)}


def checks(fit_: Fit, scale: Scale, nightly: Run, first: Run, design: Design) -> list[dict]:
    """Each bound as demand over limit at the design's concurrency (1.0 or more: broken)."""
    shards = tally.shards_for(scale.users, design.run_shards)
    finish_rate = max(nightly.finish_rate, first.finish_rate)
    index_writes = index_writes_per_second(fit_, scale, first)
    first_copies = first.requests["s3"].get("CopyObject", 0) / first.seconds
    first_gets = sum(first.requests["s3"].get(op, 0) for op in ("GetObject", "HeadObject")) / first.seconds
    needed = math.ceil(scale.users * nightly.job_seconds / max(1.0, design.backup_window_seconds
                                                                - initiator_seconds(scale.users, design)))
    one_machine = scale_restore.on_one_machine(scale, design)
    by_stack = scale_restore.by_the_stack(scale, design)
    warm = max(design.content_index_warm_writes, LIMITS["dynamodb_new_table_writes"].value)
    at = {"at_users": scale.users, "at_workers": nightly.concurrency}
    rows = [
        row("initiator timeout", initiator_seconds(scale.users, design), contract.INITIATOR_TIMEOUT_SECONDS, "s", **at),
        row("backup window", nightly.seconds, design.backup_window_seconds, "s", **at),
        row("first run in a day", first.seconds, 24 * 3600, "s", **at),
        row("Lambda concurrency", needed, LIMITS["lambda_account_concurrency"].value, "workers the window needs", **at),
        row("tally item writes", finish_rate * TALLY_WCU_PER_JOB / shards, LIMITS["dynamodb_partition_wcu"].value,
            f"WCU/s on one tally ({shards} shards)", **at),
        row("shard partition writes", finish_rate * SHARD_PARTITION_WCU_PER_JOB / shards,
            LIMITS["dynamodb_partition_wcu"].value, "WCU/s on one shard's partition key", **at),
        row("tally conflicts", scale.users * conflict_chance(finish_rate / shards) ** TRIES_PER_JOB, 1,
            "users failed a night (every try of every delivery conflicted)", **at),
        row("runs table writes (quota)", finish_rate * SHARD_PARTITION_WCU_PER_JOB,
            LIMITS["dynamodb_table_writes_quota"].value, "WRU/s", **at),
        row("content index writes (new table)", index_writes, warm, "writes/s", **at),
        row("content index writes (quota)", index_writes, LIMITS["dynamodb_table_writes_quota"].value, "WRU/s", **at),
        row("backup content/ PUT rate", first_copies / CONTENT_PREFIXES, LIMITS["s3_put_per_prefix"].value,
            f"COPY/s per content/ prefix ({CONTENT_PREFIXES})", **at),
        row("source GET rate", first_gets / min(scale.users, first.concurrency), LIMITS["s3_get_per_prefix"].value,
            "GET+HEAD/s per user prefix", **at),
        row("restore copy rate (one machine)", one_machine["copies_per_second"], LIMITS["s3_get_per_prefix"].value,
            "copies/s", **at),
        *(row(name, demand, limit, unit, **at) for name, demand, limit, unit
          in scale_restore.source_and_target_rows(by_stack, scale)),
    ]
    return rows


def model(fit_: Fit, design: Design = Design(), scales: tuple[Scale, ...] = SCALES) -> dict:
    out = []
    for scale in scales:
        nightly = run(fit_, scale, round(scale.objects * design.churn), design)
        first = run(fit_, scale, scale.objects, design)
        rows = checks(fit_, scale, nightly, first, design)
        in_an_hour = first_run_in(fit_, scale, design)
        by_stack = scale_restore.by_the_stack(scale, design)
        ceiling = first_hard_ceiling(rows)
        out.append({
            "scale": scale.name, "users": scale.users, "objects": scale.objects, "bytes": scale.bytes,
            "nightly": _run_dict(nightly), "first_run": _run_dict(first),
            "first_run_in_an_hour": _run_dict(in_an_hour) | {
                "index_writes_per_second": round(index_writes_per_second(fit_, scale, in_an_hour))} if in_an_hour
            else None,
            "invocations": {"nightly": nightly.jobs + 1, "first_run": first.jobs + 1},
            "dynamodb_items": dynamodb_items(fit_, scale, design, first),
            "restore": scale_restore.on_one_machine(scale, design),
            "restore_by_stack": by_stack | {"workers_for_an_hour": scale_restore.workers_for_an_hour(
                scale, design, design.target_seconds)},
            "checks": rows, "first_to_break": first_to_break(rows)["check"],
            "first_to_break_published": first_to_break(rows, published_only=True)["check"],
            "first_hard_ceiling": ceiling["check"],
            "hard_ceiling_workers": ceiling["reached_at_concurrency"],
        })
    return {"source": fit_.source, "design": design.__dict__, "scales": out,
            "limits": {name: {"value": limit.value, "unit": limit.unit, "source": limit.source}
                       for name, limit in LIMITS.items()}}


def _run_dict(r: Run) -> dict:
    totals = {s: round(sum(ops.values())) for s, ops in r.requests.items()}
    return {"requests": {s: {op: round(n) for op, n in ops.items()} for s, ops in r.requests.items()},
            "totals": totals, "job_seconds": round(r.job_seconds, 3), "concurrency": r.concurrency,
            "seconds": round(r.seconds), "jobs_per_second": round(r.finish_rate, 1)}


def from_results(results: dict, design: Design = Design()) -> dict | None:
    """The model over a bench run's results; None without scenario 2."""
    fitted = fit_from_results(results)
    if fitted is None:
        return None
    modelled = model(fitted, design)
    split = results.get("split")
    modelled["large_user_invocations"] = (
        {"first_run": split["first_run"]["invocations_for_200k_at_900s"],
         "incremental": split["incremental"]["invocations_for_200k_at_900s"], "source": "measured (scenario 8)"}
        if split else {"source": "scenario 8 did not run"})
    return modelled


# --- the printed table -----------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _count(n: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def table(modelled: dict) -> str:
    """The scale model as the bench prints it: one column per scale."""
    scales = modelled["scales"]
    design = modelled["design"]

    def requests(run_: dict) -> str:
        t = run_["totals"]
        return f"S3 {_count(t['s3'])}, DDB {_count(t['dynamodb'])}, SQS {_count(t['sqs'])}"

    def worst(key: str):
        def cell(s: dict) -> str:
            found = next(r for r in s["checks"] if r["check"] == s[key])
            return f"{found['check']} {found['ratio']:.2f}x"
        return cell

    def ceiling(s: dict) -> str:
        found = next(r for r in s["checks"] if r["check"] == s["first_hard_ceiling"])
        return f"{found['check']} at {found['reached_at_concurrency']:,} workers"

    rows = [
        ("users / objects / TB", lambda s: f"{s['users']:,} / {_count(s['objects'])} / {s['bytes'] // TB}"),
        ("nightly requests", lambda s: requests(s["nightly"])),
        ("first run requests", lambda s: requests(s["first_run"])),
        ("invocations (nightly)", lambda s: f"{s['invocations']['nightly']:,} at {s['nightly']['concurrency']} workers"),
        ("DynamoDB items", lambda s: f"runs {_count(s['dynamodb_items']['runs_table'])}, "
                                     f"index {_count(s['dynamodb_items']['content_index'])}"),
        ("nightly run", lambda s: _duration(s["nightly"]["seconds"])),
        ("first full run", lambda s: _duration(s["first_run"]["seconds"])),
        ("... within 1 hour", _in_an_hour),
        ("full restore (stack)", lambda s: f"{_duration(s['restore_by_stack']['seconds'])} at "
                                           f"{s['restore_by_stack']['workers']}x{design['restore_threads']} "
                                           f"({s['restore_by_stack']['copies_per_second']:,}/s)"),
        ("full restore (1 machine)", lambda s: f"{_duration(s['restore']['seconds'])} "
                                               f"({s['restore']['copies_per_second']}/s)"),
        ("first to break", worst("first_to_break")),
        ("... on published limits", worst("first_to_break_published")),
        ("first hard ceiling", ceiling),
    ]
    header = ("scale model", *(s["scale"] for s in scales))
    body = [(label, *(fmt(s) for s in scales)) for label, fmt in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    lines.append(f"(requests per operation: {modelled['source']}; {design['concurrency']} workers, "
                 f"{design['restore_users_parallel']} users x {design['restore_files_per_user']} files restored at once; "
                 f"large user: {_large(modelled)})")
    return "\n".join(lines)


def _in_an_hour(s: dict) -> str:
    first = s.get("first_run_in_an_hour")
    if not first:
        return "not with 1,000 workers"
    return (f"{_duration(first['seconds'])} at {first['concurrency']} workers, "
            f"index {first['index_writes_per_second']:,} writes/s")


def _large(modelled: dict) -> str:
    large = modelled.get("large_user_invocations", {})
    if "first_run" not in large:
        return large.get("source", "not measured")
    return f"200,000 objects in {large['first_run']} + {large['incremental']} invocations ({large['source']})"
