"""Monthly cost estimate of an environment, steady state, from a dated price file: no AWS calls.

Three scenarios for the same workload:
- this design: content stored once (by SHA-256), changed content kept for the retention period,
  lifecycle from `stack.storage.content_transition_day`, bucket keys, replica with noncurrent
  versions kept `retention_days`;
- the reference design: a full copy per daily run, IA at 30 days, Glacier Flexible at 45, expiry
  at 60, noncurrent versions kept 60 more days, no bucket keys (same replica, keys, endpoints);
- AWS Backup for S3: incremental, no cross-user deduplication, per-GB-month warm storage, with a
  cross-region copy for the same disaster recovery.

Counts that the template decides (keys, interface endpoints x zones, alarms, dashboards, tables)
are read from the built templates, lifecycle days from `storage`, memory from `functions`, so the
estimate follows the environment as configured. Everything else the model assumes is a named
constant in `workload`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.ops.cost.continuous import continuous_items
from backup_cfn.ops.cost.prices import Prices, load_prices
from backup_cfn.ops.cost.workload import (  # noqa: F401 (the model's assumptions, read here by tests)
    CONTENT_INDEX_ITEM_BYTES,
    CUSTOM_METRICS,
    DRILLS_PER_DAY,
    ESM_IDLE_POLLS_PER_MONTH,
    GIB,
    HASH_BYTES_PER_SECOND,
    JOB_OVERHEAD_SECONDS,
    KIB,
    LIST_PAGE_KEYS,
    MANIFEST_BYTES_PER_ENTRY,
    REFERENCE_EXPIRY_DAY,
    REFERENCE_GLACIER_DAY,
    REFERENCE_IA_DAY,
    REFERENCE_NONCURRENT_DAYS,
    REQUEST_SECONDS,
    RUN_ITEM_BYTES,
    RUNS_TABLE_READ_UNITS_PER_JOB,
    RUNS_TABLE_WRITE_UNITS_PER_JOB,
    SERVICE_KMS_REQUESTS_PER_MONTH,
    SQS_MESSAGE_BYTES,
    WORKER_THREADS,
    Facts,
    Workload,
    environment_facts,
)

STANDARD, IA, GLACIER = "Standard", "Standard-IA", "Glacier Flexible"


# --- storage: how long each byte stays in which class -------------------------------------------

@dataclass
class Holdings:
    """Steady-state stock per bucket and class: GB, and objects (for per-object minimums)."""
    gb: dict[tuple[str, str], float] = field(default_factory=dict)
    objects: dict[tuple[str, str], float] = field(default_factory=dict)
    early_gb: dict[tuple[str, str], float] = field(default_factory=dict)  # GB-months billed for minimums

    def add(self, bucket: str, klass: str, gb: float, objects: float = 0.0, early_gb: float = 0.0) -> None:
        key = (bucket, klass)
        self.gb[key] = self.gb.get(key, 0.0) + gb
        self.objects[key] = self.objects.get(key, 0.0) + objects
        self.early_gb[key] = self.early_gb.get(key, 0.0) + early_gb

    def total_gb(self, bucket: str | None = None) -> float:
        return sum(v for (b, _), v in self.gb.items() if bucket is None or b == bucket)


def cohort_days(lifetime: float, schedule: list[tuple[str, float]], minimum_days: dict[str, float]
                ) -> dict[str, tuple[float, float]]:
    """(days stored, days billed for the class's minimum) per class, for an object that follows
    `schedule` [(class, from day), ...] and is deleted at `lifetime`. Leaving a class early, by
    transition or deletion, is charged the rest of the class's minimum."""
    result = {}
    for index, (klass, start) in enumerate(schedule):
        if start >= lifetime:
            break
        end = min(schedule[index + 1][1], lifetime) if index + 1 < len(schedule) else lifetime
        stored = end - start
        result[klass] = (stored, max(0.0, minimum_days.get(klass, 0.0) - stored))
    return result


def ia_billable_gb(gb: float, objects: float, min_kib: float = 128) -> float:
    """Standard-IA bills every object as at least 128 KiB."""
    if objects <= 0:
        return gb
    return max(gb, objects * min_kib * KIB / GIB)


def long_term_share(facts: Facts, daily_change: float) -> float:
    """Content kept only by the weekly, monthly and yearly snapshots, as a share of the data: each
    such snapshot holds the objects replaced between it and the next newer kept snapshot."""
    share, newer = 0.0, float(facts.retention_days)
    for age in facts.long_term_ages():
        share += 1 - (1 - daily_change) ** (age - newer)
        newer = age
    return share


def our_holdings(facts: Facts, w: Workload) -> Holdings:
    """Content stored once; superseded content kept `kept_after_change_days`, and what the longer-term
    snapshots hold (all of it old enough for IA); large content in IA from the transition day (it
    always lives past it: the storage module guarantees the minimum)."""
    h = Holdings()
    c, kept = w.daily_change, facts.kept_after_change_days
    long_term = long_term_share(facts, c)
    growth = 1 + c * kept + long_term          # current content plus superseded-but-referenced content
    # The vault keeps no deleted version (it receives no deletes); what its locks hold a few days past
    # need is the slack (docs/vault.md): counted like noncurrent days.
    dr_noncurrent = facts.vault_slack_days if facts.vault else facts.retention_days
    for bucket, noncurrent_days in (("primary", facts.deleted_version_days), ("replica", dr_noncurrent)):
        for size_gb, count, large in ((w.large_gb * w.unique, w.large_objects * w.unique, True),
                                      (w.small_gb * w.unique, w.small_objects * w.unique, False)):
            if large and facts.transition_day is not None:
                standard_share = min(c * facts.transition_day, growth - long_term)
                ia_days_min = kept - facts.transition_day
                early = c * size_gb * max(0.0, contract.IA_MINIMUM_STORAGE_DAYS - ia_days_min)
                h.add(bucket, STANDARD, size_gb * standard_share, count * standard_share)
                h.add(bucket, IA, size_gb * (growth - standard_share), count * (growth - standard_share), early)
                klass = IA
            else:
                h.add(bucket, STANDARD, size_gb * growth, count * growth)
                klass = STANDARD
            # Deleted content stays as a noncurrent version, in the class it had.
            h.add(bucket, klass, size_gb * c * noncurrent_days, count * c * noncurrent_days)
        manifests = w.users * (facts.retention_days + 1 + len(facts.long_term_ages()) + noncurrent_days)
        h.add(bucket, STANDARD, manifests * manifest_gb(w), manifests)
    return h


def manifest_gb(w: Workload) -> float:
    return w.objects / w.users * MANIFEST_BYTES_PER_ENTRY / GIB


def reference_holdings(w: Workload, prices: Prices) -> Holdings:
    """A full copy per day. Large objects: Standard, IA at 30, Glacier at 45, expired at 60 (a
    delete marker in a versioned bucket), deleted 60 days later. Small objects never move: S3's
    default minimum transition size is 128 KiB since September 2024."""
    s3 = prices["s3"]
    h = Holdings()
    lifetime = REFERENCE_EXPIRY_DAY + REFERENCE_NONCURRENT_DAYS
    minimums = {IA: s3["standard_ia_min_days"], GLACIER: s3["glacier_flexible_min_days"]}
    large = cohort_days(lifetime, [(STANDARD, 0), (IA, REFERENCE_IA_DAY), (GLACIER, REFERENCE_GLACIER_DAY)], minimums)
    overhead_standard = s3["glacier_overhead_standard_kib"] * KIB / GIB
    overhead_glacier = s3["glacier_overhead_glacier_kib"] * KIB / GIB
    for bucket in ("primary", "replica"):
        for klass, (days, early_days) in large.items():
            gb = w.large_gb * days
            objects = w.large_objects * days
            early = w.large_gb * early_days
            if klass == GLACIER:
                # Each archived object also bills 8 KiB at Standard and 32 KiB at Glacier rates.
                h.add(bucket, STANDARD, objects * overhead_standard)
                gb += objects * overhead_glacier
                early += w.large_objects * early_days * overhead_glacier
            h.add(bucket, klass, gb, objects, early)
        h.add(bucket, STANDARD, w.small_gb * lifetime, w.small_objects * lifetime)
    return h


# --- requests and compute per day ---------------------------------------------------------------

@dataclass
class Activity:
    """What one day of backups and collection does."""
    s3_put: float = 0.0          # PUT, COPY, POST, LIST
    s3_get: float = 0.0          # GET, HEAD
    s3_delete: float = 0.0       # free, counted for the trail
    trail_events: float = 0.0    # object-level calls on the audited backup bucket
    kms_without_bucket_keys: float = 0.0
    ddb_write_units: float = 0.0
    ddb_read_units: float = 0.0
    sqs_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    lambda_invocations: float = 0.0
    replicated_objects: float = 0.0
    replicated_gb: float = 0.0
    vault_get: float = 0.0            # the lock extender's HEADs and GETs in the vault
    vault_put: float = 0.0            # its listings and PutObjectRetention calls
    transitions_ia: float = 0.0
    transitions_glacier: float = 0.0
    ddb_storage_gb: float = 0.0


def _pages(items: float) -> float:
    return max(1.0, math.ceil(items / LIST_PAGE_KEYS))


def our_activity(facts: Facts, w: Workload) -> Activity:
    """The worker, initiator and pruner of backup_cfn.engine, one daily run each."""
    a = Activity()
    users, c = w.users, w.daily_change
    per_user = w.objects / users
    changed = w.objects * c
    new_contents = changed * w.unique
    new_gb = w.data_gb * w.unique * c
    manifests_kept = users * (facts.retention_days + 1 + len(facts.long_term_ages()))
    index_items = w.objects * w.unique * (1 + c * facts.kept_after_change_days)
    source_lists = users * _pages(per_user)
    source_reads = 0.0 if w.source_checksums else changed

    # worker: read the previous manifest (the run record names it), list the source, HEAD (+GET) changed,
    # copy new content, PUT the manifest
    worker_calls = users * 3 + source_lists + changed + source_reads + new_contents * 3
    a.s3_put += source_lists + new_contents + users
    a.s3_get += users + changed + source_reads
    # initiator: list users; pruner: list all manifests, read every kept one, delete expired and unreferenced
    a.s3_put += _pages(users) + _pages(manifests_kept)
    a.s3_get += manifests_kept
    a.s3_delete += users + new_contents
    a.trail_events += users * 2 + new_contents + manifests_kept + users + new_contents

    a.kms_without_bucket_keys = (users * 2 + source_reads + new_contents * 2 + manifests_kept
                                 + 2 * (new_contents + users))
    # content index: a claim and a mark per new content (content the previous snapshot names needs no
    # touch), a mark and a delete per content the collector removes; the runs table per job
    a.ddb_write_units = new_contents * 2 + new_contents * 2 + users * RUNS_TABLE_WRITE_UNITS_PER_JOB + 2
    a.ddb_read_units = (users * RUNS_TABLE_READ_UNITS_PER_JOB
                        + math.ceil(index_items * CONTENT_INDEX_ITEM_BYTES / (4 * KIB)))
    runs_kept_days = facts.retention_days + contract.RUN_RECORD_EXTRA_DAYS
    a.ddb_storage_gb = (index_items * CONTENT_INDEX_ITEM_BYTES + users * runs_kept_days * RUN_ITEM_BYTES * 3) / GIB

    batches = math.ceil(users / contract.WORKER_BATCH_SIZE)
    a.sqs_requests = math.ceil(users / 10) + 2 * batches
    worker_seconds = (users * JOB_OVERHEAD_SECONDS + worker_calls * REQUEST_SECONDS / WORKER_THREADS
                      + (new_gb * GIB if not w.source_checksums else 0) / HASH_BYTES_PER_SECOND)
    pruner_seconds = 5 + (manifests_kept + new_contents * 3 + index_items / 1000) * REQUEST_SECONDS / WORKER_THREADS
    initiator_seconds = 2 + users / 10 * REQUEST_SECONDS
    a.lambda_gb_seconds = (worker_seconds * facts.worker_gb + pruner_seconds * facts.pruner_gb
                           + initiator_seconds * facts.initiator_gb)
    a.lambda_invocations = batches + 2

    # the restore drill: list the manifests, read the sampled users' newest, GET every content they name
    if facts.drill_users:
        drilled = min(facts.drill_users, users)
        drill_gets = (drilled + drilled * per_user * w.unique) * DRILLS_PER_DAY
        a.s3_put += _pages(manifests_kept) * DRILLS_PER_DAY
        a.s3_get += drill_gets
        a.trail_events += drill_gets
        a.kms_without_bucket_keys += drill_gets
        a.ddb_write_units += DRILLS_PER_DAY
        drill_seconds = (5 + drill_gets / DRILLS_PER_DAY * REQUEST_SECONDS / WORKER_THREADS
                         + drilled / users * w.data_gb * GIB / HASH_BYTES_PER_SECOND)
        a.lambda_gb_seconds += drill_seconds * facts.drill_gb * DRILLS_PER_DAY
        a.lambda_invocations += DRILLS_PER_DAY

    # every new object is a PUT in the replica, and so is every delete marker, except into the vault
    # (its replication sends none)
    a.replicated_objects = new_contents + users + (0 if facts.vault else new_contents + users)
    a.replicated_gb = new_gb + users * manifest_gb(w)
    if facts.vault:
        _vault_activity(facts, w, a, new_contents, per_user)
    if facts.transition_day is not None:
        a.transitions_ia = 2 * w.large_objects * w.unique * c
    return a


def _vault_activity(facts: Facts, w: Workload, a: Activity, new_contents: float, per_user: float) -> None:
    """The lock extender (engine/vault_locks.py), per day: each arriving manifest's user pass lists
    the user's manifests, reads the new snapshot and the one covering it, HEADs and locks every new
    content to its snapshot's grid date (arrivals are locked for the retention alone), and once per
    step re-locks everything each user keeps (a HEAD and a PutObjectRetention per content),
    recording each snapshot; the daily pass lists every manifest; the weekly vault drill reads like
    the primary's."""
    users = w.users
    manifests_kept = users * (facts.retention_days + 1 + len(facts.long_term_ages()))
    relocked = w.objects * w.unique / facts.vault_step_days
    a.vault_get += users * 2 + new_contents + relocked
    a.vault_put += (users * _pages(manifests_kept / users) + _pages(manifests_kept) + relocked + new_contents
                    + users / facts.vault_step_days)
    a.kms_without_bucket_keys += users * 2
    a.ddb_write_units += users
    a.ddb_read_units += users
    seconds = (users * JOB_OVERHEAD_SECONDS + (users * 3 + new_contents + 2 * relocked) * REQUEST_SECONDS / WORKER_THREADS)
    a.lambda_gb_seconds += seconds * 1.0
    a.lambda_invocations += users + 1


def reference_activity(facts: Facts, w: Workload) -> Activity:
    """A full server-side copy of every object every day, no content index, no collector."""
    a = Activity()
    users, n = w.users, w.objects
    source_lists = users * _pages(n / users)
    a.s3_put = source_lists + n + _pages(users)
    a.trail_events = n
    # no bucket keys: a Decrypt of the source and a GenerateDataKey per copy, the same again to replicate
    a.kms_without_bucket_keys = 2 * n + 2 * n
    a.ddb_write_units = users * RUNS_TABLE_WRITE_UNITS_PER_JOB + 2
    a.ddb_read_units = users * RUNS_TABLE_READ_UNITS_PER_JOB
    a.ddb_storage_gb = users * (facts.retention_days + contract.RUN_RECORD_EXTRA_DAYS) * RUN_ITEM_BYTES * 3 / GIB
    batches = math.ceil(users / contract.WORKER_BATCH_SIZE)
    a.sqs_requests = math.ceil(users / 10) + 2 * batches
    worker_seconds = users * JOB_OVERHEAD_SECONDS + (source_lists + n) * REQUEST_SECONDS / WORKER_THREADS
    a.lambda_gb_seconds = worker_seconds * facts.worker_gb + (2 + users / 10 * REQUEST_SECONDS) * facts.initiator_gb
    a.lambda_invocations = batches + 1
    # Lifecycle expirations are not replicated: the replica runs the same rules itself.
    a.replicated_objects = n
    a.replicated_gb = w.data_gb
    a.transitions_ia = 2 * w.large_objects
    a.transitions_glacier = 2 * w.large_objects
    return a


# --- line items ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineItem:
    component: str
    quantity: str
    usd: float
    in_total: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    items: tuple[LineItem, ...]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(i.usd for i in self.items if i.in_total)

    def usd(self, component: str) -> float:
        return sum(i.usd for i in self.items if i.component == component)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def storage_items(h: Holdings, prices: Prices, dr_label: str = "replica") -> list[LineItem]:
    s3 = prices["s3"]
    items = []
    for bucket in ("primary", "replica"):
        label = {"replica": dr_label}.get(bucket, bucket)
        standard = h.gb.get((bucket, STANDARD), 0.0)
        if standard:
            items.append(LineItem(f"S3 {label}: {STANDARD}", f"{standard:,.1f} GB-mo", prices.standard_storage(standard)))
        ia = h.gb.get((bucket, IA), 0.0)
        if ia:
            billed = ia_billable_gb(ia, h.objects.get((bucket, IA), 0.0), s3["standard_ia_min_billable_kib"])
            items.append(LineItem(f"S3 {label}: {IA}", f"{billed:,.1f} GB-mo", billed * s3["standard_ia_gb_month"]))
        glacier = h.gb.get((bucket, GLACIER), 0.0)
        if glacier:
            items.append(LineItem(f"S3 {label}: {GLACIER}", f"{glacier:,.1f} GB-mo",
                                  glacier * s3["glacier_flexible_gb_month"]))
        early = (h.early_gb.get((bucket, IA), 0.0) * s3["standard_ia_gb_month"]
                 + h.early_gb.get((bucket, GLACIER), 0.0) * s3["glacier_flexible_gb_month"])
        if early:
            early_gb = h.early_gb.get((bucket, IA), 0.0) + h.early_gb.get((bucket, GLACIER), 0.0)
            items.append(LineItem(f"S3 {label}: early deletion/transition", f"{early_gb:,.1f} GB-mo", early))
    return items


def activity_items(facts: Facts, a: Activity, prices: Prices, *, bucket_keys: bool) -> list[LineItem]:
    s3, kms, m = prices["s3"], prices["kms"], prices.days_per_month
    items = [
        LineItem("S3 requests: PUT/COPY/LIST", f"{_n(a.s3_put * m)}/mo", a.s3_put * m / 1000 * s3["put_copy_post_list_per_1000"]),
        LineItem("S3 requests: GET/HEAD", f"{_n(a.s3_get * m)}/mo", a.s3_get * m / 1000 * s3["get_head_other_per_1000"]),
    ]
    transitions = (a.transitions_ia * s3["transition_to_standard_ia_per_1000"]
                   + a.transitions_glacier * s3["transition_to_glacier_flexible_per_1000"]) * m / 1000
    items.append(LineItem("S3 lifecycle transitions", f"{_n((a.transitions_ia + a.transitions_glacier) * m)}/mo", transitions))
    items.append(LineItem("Replication: inter-region transfer", f"{a.replicated_gb * m:,.1f} GB/mo",
                          a.replicated_gb * m * s3["replication_transfer_inter_region_gb"]))
    items.append(LineItem(f"Replication: PUTs in the {facts.dr_label}", f"{_n(a.replicated_objects * m)}/mo",
                          a.replicated_objects * m / 1000 * s3["put_copy_post_list_per_1000"]))
    if facts.vault:
        items.append(LineItem("Vault locks: HEAD/GET, list and PutObjectRetention",
                              f"{_n(a.vault_get * m)} + {_n(a.vault_put * m)}/mo",
                              a.vault_get * m / 1000 * s3["get_head_other_per_1000"]
                              + a.vault_put * m / 1000 * s3["put_copy_post_list_per_1000"]))
    # Replication metrics are on in every environment: the replication alarms read them.
    items.append(LineItem("Replication metrics (alarms)", f"{s3['replication_metrics_per_rule']} metrics",
                          s3["replication_metrics_per_rule"] * prices["cloudwatch"]["custom_metric_month"]))
    if facts.rtc:
        items.append(LineItem("Replication Time Control", f"{a.replicated_gb * m:,.1f} GB/mo",
                              a.replicated_gb * m * s3["replication_time_control_gb"]))
    rotated_key = kms["key_month"] + kms["rotation_extra_month_max"]
    items.append(LineItem("KMS keys (rotating)", f"{facts.keys} keys", facts.keys * rotated_key))
    without = a.kms_without_bucket_keys * m + SERVICE_KMS_REQUESTS_PER_MONTH
    with_keys = a.kms_without_bucket_keys * m * (1 - kms["bucket_key_request_reduction"]) + SERVICE_KMS_REQUESTS_PER_MONTH
    price = kms["requests_per_10000"] / 10000
    if bucket_keys:
        items.append(LineItem("KMS requests (bucket keys on)", f"{_n(with_keys)}/mo", with_keys * price))
        items.append(LineItem("  KMS requests if bucket keys were off", f"{_n(without)}/mo", without * price, in_total=False))
    else:
        items.append(LineItem("KMS requests (no bucket keys)", f"{_n(without)}/mo", without * price))
    ddb = prices["dynamodb"]
    items.append(LineItem("DynamoDB requests", f"{_n(a.ddb_write_units * m)} WRU + {_n(a.ddb_read_units * m)} RRU",
                          (a.ddb_write_units * ddb["write_request_unit_per_million"]
                           + a.ddb_read_units * ddb["read_request_unit_per_million"]) * m / 1e6))
    items.append(LineItem("DynamoDB storage + PITR", f"{a.ddb_storage_gb:,.2f} GB",
                          a.ddb_storage_gb * (ddb["storage_gb_month"] + ddb["pitr_gb_month"])))
    lam = prices["lambda"]
    items.append(LineItem("Lambda (arm64)", f"{_n(a.lambda_gb_seconds * m)} GB-s",
                          a.lambda_gb_seconds * m * lam["arm64_gb_second"]
                          + a.lambda_invocations * m / 1e6 * lam["requests_per_million"]))
    sqs_requests = a.sqs_requests * m + ESM_IDLE_POLLS_PER_MONTH
    items.append(LineItem("SQS (jobs + event source polling)", f"{_n(sqs_requests)}/mo",
                          sqs_requests / 1e6 * prices["sqs"]["standard_requests_per_million"]))
    sns = prices["sns"]
    items.append(LineItem("SNS (run summaries)", f"{_n(m)} publishes",
                          m / 1e6 * sns["publish_per_million"] + (m / 1e5 * sns["email_per_100000"] if facts.email else 0)))
    if facts.interface_endpoint_azs:
        vpc = prices["vpc"]
        endpoint_gb = a.sqs_requests * m * SQS_MESSAGE_BYTES / GIB
        items.append(LineItem("VPC interface endpoints", f"{facts.interface_endpoint_azs} endpoint-AZs",
                              facts.interface_endpoint_azs * prices.hours_per_month * vpc["interface_endpoint_az_hour"]
                              + endpoint_gb * vpc["interface_endpoint_gb"]))
    items.append(LineItem("CloudTrail S3 data events", f"{_n(a.trail_events * m)}/mo",
                          a.trail_events * m / 1e5 * prices["cloudtrail"]["data_events_per_100000"]))
    cw = prices["cloudwatch"]
    items.append(LineItem("CloudWatch alarms, dashboard, metrics",
                          f"{facts.alarms} alarms, {facts.dashboards} dashboard, {CUSTOM_METRICS} metrics",
                          facts.alarms * cw["alarm_month"] + facts.dashboards * cw["dashboard_month"]
                          + CUSTOM_METRICS * cw["custom_metric_month"]))
    return items


def aws_backup_scenario(facts: Facts, w: Workload, prices: Prices) -> Scenario:
    """Incremental backups, each kept `retention_days`: the full data once plus every day's
    changes, per vault, without cross-user deduplication; copied to a vault in the replica region."""
    stored = w.data_gb * (1 + w.daily_change * facts.retention_days)
    price = prices["backup"]["s3_warm_storage_gb_month"]
    transfer = w.data_gb * w.daily_change * prices.days_per_month
    return Scenario("AWS Backup for S3", (
        LineItem("AWS Backup: primary vault", f"{stored:,.1f} GB-mo", stored * price),
        LineItem("AWS Backup: copy in the replica region", f"{stored:,.1f} GB-mo", stored * price),
        LineItem("Replication: inter-region transfer", f"{transfer:,.1f} GB/mo",
                 transfer * prices["s3"]["replication_transfer_inter_region_gb"]),
    ), notes=("AWS Backup: warm storage and the cross-region copy's transfer only; its source requests, "
              "restores and the rest of the service are not counted",))


@dataclass(frozen=True)
class Estimate:
    env: Environment
    workload: Workload
    facts: Facts
    prices: Prices
    scenarios: tuple[Scenario, ...]


def estimate(env: Environment, workload: Workload, prices: Prices | None = None,
             facts: Facts | None = None) -> Estimate:
    prices = prices or load_prices(env.region)
    facts = facts or environment_facts(env)
    ours = Scenario("this design", tuple(
        storage_items(our_holdings(facts, workload), prices, facts.dr_label)
        + activity_items(facts, our_activity(facts, workload), prices, bucket_keys=facts.bucket_keys)
        + continuous_items(facts, workload, prices, LineItem)))
    reference = Scenario("reference lifecycle", tuple(
        storage_items(reference_holdings(workload, prices), prices)
        + activity_items(facts, reference_activity(facts, workload), prices, bucket_keys=False)),
        notes=("reference: a full copy per daily run; IA at 30, Glacier Flexible at 45, expiry at 60, "
               "noncurrent kept 60 more days; no bucket keys; same replica, keys, endpoints and alarms",))
    return Estimate(env, workload, facts, prices, (ours, reference, aws_backup_scenario(facts, workload, prices)))
