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
from backup_cfn.engine import runs

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
class Limit:
    value: float
    unit: str
    source: str


S3_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"
S3_WHITEPAPER = ("https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/"
                 "timeouts-and-retries-for-latency-sensitive-applications.html")
# AWS's published limits and latencies the model uses (docs/scale.md lists them with the quotes).
LIMITS = {
    "s3_put_per_prefix": Limit(3_500, "PUT/COPY/POST/DELETE per s per partitioned prefix", S3_DOC),
    "s3_get_per_prefix": Limit(5_500, "GET/HEAD per s per partitioned prefix", S3_DOC),
    "s3_request_seconds": Limit(0.05, "s per small request (median 'tens of milliseconds')", S3_WHITEPAPER),
    "s3_bytes_per_request_second": Limit(85e6, "bytes per s per request ('85-90 MB/s')",
                                         "https://docs.aws.amazon.com/AmazonS3/latest/userguide/"
                                         "optimizing-performance-guidelines.html"),
    "lambda_account_concurrency": Limit(1_000, "concurrent executions per Region (default quota)",
                                        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"),
    "lambda_scaling_per_10s": Limit(1_000, "new execution environments per function per 10 s",
                                    "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"),
    "sqs_esm_start": Limit(5, "concurrent batches an SQS event source starts with",
                           "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"),
    "sqs_esm_ramp_per_minute": Limit(300, "more concurrent batches per minute (SQS event source)",
                                     "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"),
    "esm_maximum_concurrency": Limit(1_000, "MaximumConcurrency at most (minimum 2)",
                                     "https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html"),
    "sqs_batch": Limit(10, "messages per SendMessageBatch; standard queue API calls 'nearly unlimited'",
                       "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"),
    "sqs_request_seconds": Limit(0.02, "s per request (assumed: SQS publishes no latency)", "assumption"),
    "dynamodb_partition_wcu": Limit(1_000, "write units per s per partition (and per item)",
                                    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                                    "warm-throughput-scenarios.html"),
    "dynamodb_partition_rcu": Limit(3_000, "read units per s per partition",
                                    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                                    "warm-throughput-scenarios.html"),
    "dynamodb_new_table_writes": Limit(4_000, "writes per s a new on-demand table sustains",
                                       "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                                       "on-demand-capacity-mode.html"),
    "dynamodb_transaction_wcu": Limit(2, "write units per transactional write of an item up to 1 KB",
                                      "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                                      "transaction-apis.html"),
    "dynamodb_transaction_window_seconds": Limit(0.005, "s a transaction holds its items against another "
                                                 "(assumed: DynamoDB publishes the conflict, not its window)",
                                                 "assumption"),
    "dynamodb_request_seconds": Limit(0.01, "s per request ('single-digit millisecond')",
                                      "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                                      "on-demand-capacity-mode.html"),
}

# What the design does when a bound is reached, named in the output (docs/scale.md says more).
ANSWERS = {
    "initiator timeout": "enqueue in parallel batches of 10; past ~1M users fan the initiator out by user prefix",
    "backup window": "raise max_concurrent_backups (up to 1,000) within the DynamoDB bound below",
    "first run in a day": "raise max_concurrent_backups for the first run, or seed users over several nights",
    "Lambda concurrency": "MaximumConcurrency caps the worker; ask for a higher account quota past 1,000",
    "run record writes": "shard the run counters (docs/scale.md, what would change)",
    "run record conflicts": "retried in place by the worker (8 times, 50 ms doubling); shard the run counters",
    "content index writes (new table)": "on-demand doubles its peak as it goes; SDK standard retries back off meanwhile",
    "backup content/ PUT rate": "content keys are hash-spread, so S3 partitions the prefix; SDK retries SlowDown",
    "source GET rate": "one prefix per user; SDK retries SlowDown while S3 partitions",
    "restore copy rate": "more users and files in flight; the replica's content/ prefix is the ceiling",
}


@dataclass(frozen=True)
class Design:
    """The design's own figures: environments.toml and backup_cfn/contract.py."""
    concurrency: int = 50                # prod's max_concurrent_backups
    job_threads: int = 8                 # the worker's threads per job (engine Settings.job_threads)
    initiator_send_threads: int = 8      # engine/initiator.py SEND_THREADS
    backup_window_seconds: int = 4 * 3600  # schedule 02:00 to prune_schedule 06:00
    retention_days: int = 60
    churn: float = 0.01                  # the share of objects a night changes (scenario 2's)
    restore_users_parallel: int = 8      # users restored at once by a disaster-recovery restore
    restore_files_per_user: int = 8      # files in flight per user (ops/restore.py threads)
    run_record_bytes: int = 1024         # the RUN item is under 1 KB: one write unit per write


def design_of(env) -> Design:
    """The design as an environment configures it (the bench models prod's)."""
    return Design(concurrency=env.max_concurrent_backups, retention_days=env.retention_days)


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


def ramp_seconds(concurrency: int) -> float:
    """How long the SQS event source takes to reach `concurrency` from its start."""
    start, per_minute = LIMITS["sqs_esm_start"].value, LIMITS["sqs_esm_ramp_per_minute"].value
    return max(0.0, (concurrency - start) / per_minute * 60)


def run(fit_: Fit, scale: Scale, written: int, design: Design) -> Run:
    per_user_written = written / scale.users
    seconds_per_job = job_seconds(fit_, per_user_written, scale.bytes / scale.objects, design)
    concurrency = min(design.concurrency, int(LIMITS["lambda_account_concurrency"].value))
    waves = math.ceil(scale.users / concurrency)
    seconds = initiator_seconds(scale.users, design) + ramp_seconds(concurrency) + waves * seconds_per_job
    return Run(fit_.requests(scale.users, written), scale.users, seconds_per_job, concurrency, seconds,
               concurrency / seconds_per_job)


def initiator_seconds(users: int, design: Design) -> float:
    """The user listing (1,000 prefixes a page, one page after another) and the enqueuing
    (SendMessageBatch of 10, on the initiator's send threads)."""
    pages = math.ceil(users / 1000)
    batches = math.ceil(users / LIMITS["sqs_batch"].value)
    return (pages * LIMITS["s3_request_seconds"].value
            + batches / design.initiator_send_threads * LIMITS["sqs_request_seconds"].value)


def restore_seconds(scale: Scale, design: Design) -> tuple[float, str, float]:
    """A full disaster-recovery restore from the replica: server-side copies, users in parallel x
    files per user in parallel. The wall time, what bounds it, and the copy rate."""
    in_flight = design.restore_users_parallel * design.restore_files_per_user
    object_bytes = scale.bytes / scale.objects
    per_copy = LIMITS["s3_request_seconds"].value + object_bytes / LIMITS["s3_bytes_per_request_second"].value
    client_rate = in_flight / per_copy
    # A copy reads the replica's content/ prefix (GET) and writes the user's prefix (PUT).
    ceiling = LIMITS["s3_get_per_prefix"].value
    rate, bound = (client_rate, f"copies in flight ({in_flight})") if client_rate < ceiling else \
        (ceiling, "the replica content/ prefix GET rate until S3 partitions it")
    manifests = scale.users * 2 * LIMITS["s3_request_seconds"].value / design.restore_users_parallel
    return scale.objects / rate + manifests, bound, rate


def dynamodb_items(fit_: Fit, scale: Scale, design: Design, first: Run) -> dict:
    """Runs table: a RUN item and one per user per run, kept the retention plus the extra days
    (TTL), and the LATEST pointer. Content index: one item per distinct content kept."""
    days = design.retention_days + contract.RUN_RECORD_EXTRA_DAYS
    first_contents = first.requests["s3"].get("CopyObject", 0)
    nightly_new = fit_.requests(scale.users, round(scale.objects * design.churn))["s3"].get("CopyObject", 0)
    return {"runs_table": (scale.users + 1) * days + 1,
            "content_index": round(first_contents + nightly_new * design.retention_days)}


# Each bound: what it limits ("time" grows with the users, "rate" with the concurrency) and
# whether AWS adapts past it (S3 partitions a busy prefix, on-demand doubles its peak) or not.
BOUNDS = {
    "initiator timeout": ("time", "hard"), "backup window": ("time", "hard"), "first run in a day": ("time", "hard"),
    "Lambda concurrency": ("time", "quota"), "run record writes": ("rate", "hard"),
    "run record conflicts": ("conflict", "hard"),
    "content index writes (new table)": ("rate", "adaptive"), "backup content/ PUT rate": ("rate", "adaptive"),
    "source GET rate": ("rate", "adaptive"), "restore copy rate": ("restore", "adaptive"),
}


def checks(fit_: Fit, scale: Scale, nightly: Run, first: Run, restore_rate: float, design: Design) -> list[dict]:
    """Each bound as demand over limit (1.0 or more: broken), and how far it is: the users (a time
    bound) or the worker concurrency (a rate bound) at which it would be reached."""
    wcu = LIMITS["dynamodb_transaction_wcu"].value * math.ceil(design.run_record_bytes / 1024)
    finish_rate = max(nightly.finish_rate, first.finish_rate)
    index_writes = sum(n for op, n in fit_.per_object["dynamodb"].items() if op != "GetItem") * scale.objects
    first_copies = first.requests["s3"].get("CopyObject", 0) / first.seconds
    first_gets = sum(first.requests["s3"].get(op, 0) for op in ("GetObject", "HeadObject")) / first.seconds
    needed = math.ceil(scale.users * nightly.job_seconds / max(1.0, design.backup_window_seconds
                                                                - initiator_seconds(scale.users, design)))
    rows = [
        ("initiator timeout", initiator_seconds(scale.users, design), contract.INITIATOR_TIMEOUT_SECONDS, "s"),
        ("backup window", nightly.seconds, design.backup_window_seconds, "s"),
        ("first run in a day", first.seconds, 24 * 3600, "s"),
        ("Lambda concurrency", needed, LIMITS["lambda_account_concurrency"].value, "workers the window needs"),
        ("run record writes", finish_rate * wcu, LIMITS["dynamodb_partition_wcu"].value, "WCU/s on one item"),
        ("run record conflicts", scale.users * conflict_chance(nightly.finish_rate) ** TRIES_PER_JOB, 1,
         "users failed a night (every try of every delivery conflicted)"),
        ("content index writes (new table)", index_writes / first.seconds, LIMITS["dynamodb_new_table_writes"].value,
         "writes/s"),
        ("backup content/ PUT rate", first_copies, LIMITS["s3_put_per_prefix"].value, "COPY/s"),
        ("source GET rate", first_gets, LIMITS["s3_get_per_prefix"].value, "GET+HEAD/s"),
        ("restore copy rate", restore_rate, LIMITS["s3_get_per_prefix"].value, "copies/s"),
    ]
    out = []
    for name, demand, limit, unit in rows:
        kind, nature = BOUNDS[name]
        ratio = demand / limit
        row = {"check": name, "demand": float(f"{demand:.4g}"), "limit": limit, "unit": unit,
               "ratio": float(f"{ratio:.4g}"),
               "kind": kind, "nature": nature, "answer": ANSWERS[name]}
        if kind in ("time", "conflict") and ratio:
            row["reached_at_users"] = int(scale.users / ratio)
        if kind == "rate" and ratio:
            row["reached_at_concurrency"] = int(nightly.concurrency / ratio)
        out.append(row)
    return out


# The closing transaction's tries before a job is dead-lettered: finish_job retries a conflict in
# place (engine/runs.py CONFLICT_RETRIES) on each of the queue's deliveries.
TRIES_PER_JOB = (runs.CONFLICT_RETRIES + 1) * contract.JOB_MAX_RECEIVES


def conflict_chance(finish_rate: float) -> float:
    """The chance a job's closing transaction overlaps another on the one run item (Poisson
    arrivals): DynamoDB cancels one of two overlapping transactions with TransactionConflict; the
    worker (engine/runs.py finish_job) retries it in place after a short backoff, up to
    CONFLICT_RETRIES times, and then fails the attempt, retried by SQS."""
    return 1 - math.exp(-finish_rate * LIMITS["dynamodb_transaction_window_seconds"].value)


ASSUMED = ("run record conflicts",)   # rests on an assumed figure (the transaction window)


def first_to_break(rows: list[dict], *, published_only: bool = False) -> dict:
    """At the design's concurrency: the bound closest to (or past) its limit; with published_only,
    among the bounds resting on published figures alone."""
    return max((row for row in rows if not (published_only and row["check"] in ASSUMED)), key=lambda row: row["ratio"])


def first_hard_ceiling(rows: list[dict]) -> dict:
    """Raising the worker concurrency: the first bound AWS does not adapt past."""
    return min((row for row in rows if row["kind"] == "rate" and row["nature"] == "hard"),
               key=lambda row: row["reached_at_concurrency"])


def model(fit_: Fit, design: Design = Design(), scales: tuple[Scale, ...] = SCALES) -> dict:
    out = []
    for scale in scales:
        nightly = run(fit_, scale, round(scale.objects * design.churn), design)
        first = run(fit_, scale, scale.objects, design)
        restore, bound, rate = restore_seconds(scale, design)
        rows = checks(fit_, scale, nightly, first, rate, design)
        out.append({
            "scale": scale.name, "users": scale.users, "objects": scale.objects, "bytes": scale.bytes,
            "nightly": _run_dict(nightly), "first_run": _run_dict(first),
            "invocations": {"nightly": nightly.jobs + 1, "first_run": first.jobs + 1},
            "dynamodb_items": dynamodb_items(fit_, scale, design, first),
            "restore": {"seconds": round(restore), "copies_per_second": round(rate), "bound": bound,
                        "in_flight": design.restore_users_parallel * design.restore_files_per_user},
            "checks": rows, "first_to_break": first_to_break(rows)["check"],
            "first_to_break_published": first_to_break(rows, published_only=True)["check"],
            "first_hard_ceiling": first_hard_ceiling(rows)["check"],
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
            row = next(r for r in s["checks"] if r["check"] == s[key])
            return f"{row['check']} {row['ratio']:.2f}x"
        return cell

    def ceiling(s: dict) -> str:
        row = next(r for r in s["checks"] if r["check"] == s["first_hard_ceiling"])
        return f"{row['check']} at {row['reached_at_concurrency']} workers"

    rows = [
        ("users / objects / TB", lambda s: f"{s['users']:,} / {_count(s['objects'])} / {s['bytes'] // TB}"),
        ("nightly requests", lambda s: requests(s["nightly"])),
        ("first run requests", lambda s: requests(s["first_run"])),
        ("invocations (nightly)", lambda s: f"{s['invocations']['nightly']:,} at {s['nightly']['concurrency']} workers"),
        ("DynamoDB items", lambda s: f"runs {_count(s['dynamodb_items']['runs_table'])}, "
                                     f"index {_count(s['dynamodb_items']['content_index'])}"),
        ("nightly run", lambda s: _duration(s["nightly"]["seconds"])),
        ("first full run", lambda s: _duration(s["first_run"]["seconds"])),
        ("full restore", lambda s: f"{_duration(s['restore']['seconds'])} ({s['restore']['copies_per_second']}/s)"),
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


def _large(modelled: dict) -> str:
    large = modelled.get("large_user_invocations", {})
    if "first_run" not in large:
        return large.get("source", "not measured")
    return f"200,000 objects in {large['first_run']} + {large['incremental']} invocations ({large['source']})"
