"""What a cost estimate is for: the workload (data, objects, users, churn), what the environment
decides (lifecycle days, keys, endpoints, alarms, read from the built templates), and the model's
assumptions that are not prices, each a named constant."""
from __future__ import annotations

from dataclasses import dataclass

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.errors import UserError
from backup_cfn.stack import functions, storage

KIB = 1024
GIB = 1024**3

# --- model assumptions (not prices) ---------------------------------------------------------------
LIST_PAGE_KEYS = 1000                 # ListObjectsV2 page size
MANIFEST_BYTES_PER_ENTRY = 100        # gzipped manifest; the engine's encoder measured ~91 B per entry
CONTENT_INDEX_ITEM_BYTES = 300        # hash, state, size, key, timestamps (+ DynamoDB's 100 B overhead)
RUN_ITEM_BYTES = 600                  # one user job record; stored again in each of the two ALL-projection GSIs
RUNS_TABLE_WRITE_UNITS_PER_JOB = 10   # lease, transactional finish (2 items x 2), finalize, GSI upkeep
RUNS_TABLE_READ_UNITS_PER_JOB = 2     # run record read, finalize check
WORKER_THREADS = 8                    # the engine's parallel calls per job (engine Settings.job_threads)
REQUEST_SECONDS = 0.02                # mean latency of one S3/DynamoDB call inside the region
JOB_OVERHEAD_SECONDS = 0.5            # per user job: start, lease, listing, manifest, records
HASH_BYTES_PER_SECOND = 100e6         # streaming SHA-256 of source objects in a 1 GB arm64 function
ESM_IDLE_POLLS_PER_MONTH = 5 * 3 * 60 * 730   # Lambda's 5 SQS pollers, one 20-second long poll each
SERVICE_KMS_REQUESTS_PER_MONTH = 20_000      # DynamoDB, SQS, SNS, Logs and CloudTrail key use (cached)
SQS_MESSAGE_BYTES = 2 * KIB           # a job message and its envelope, through the interface endpoint
CUSTOM_METRICS = 12                   # contract.METRIC_* published with one dimension (the stack)
DRILLS_PER_DAY = 1 / 7                # the default drill_schedule: one restore drill a week
DAYS_PER_MONTH = 365.25 / 12          # for the ages of monthly and yearly snapshots

# The reference design's lifecycle, as the issue states it.
REFERENCE_IA_DAY = 30
REFERENCE_GLACIER_DAY = 45
REFERENCE_EXPIRY_DAY = 60
REFERENCE_NONCURRENT_DAYS = 60



# --- the workload -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    data_gb: float = 1000.0          # source data, GB (billing GB: 2^30 bytes)
    objects: int = 200_000
    users: int = 1000
    daily_change: float = 0.01       # share of objects replaced by new content each day
    small_share: float = 0.2         # share of objects at or under 128 KiB (never moved to IA)
    small_object_kib: float = 32.0   # their mean size
    duplicate_share: float = 0.0     # share of content that is a copy of another user's (whole-file dedup)
    source_checksums: bool = False   # uploaders store SHA-256 checksums: changed objects need no GET

    def __post_init__(self) -> None:
        checks = [
            (self.data_gb > 0, f"--data-gb must be more than 0, got {self.data_gb:g}"),
            (self.objects >= 1, f"--objects must be at least 1, got {self.objects}"),
            (self.users >= 1, f"--users must be at least 1, got {self.users}"),
            (self.users <= self.objects, f"--users ({self.users}) cannot exceed --objects ({self.objects})"),
            (0 <= self.daily_change <= 1, f"--daily-change must be between 0 and 100 %, got {self.daily_change * 100:g}"),
            (0 <= self.small_share <= 1, f"small object share must be between 0 and 1, got {self.small_share:g}"),
            (0 < self.small_object_kib <= 128, f"small objects must be at most 128 KiB, got {self.small_object_kib:g}"),
            (0 <= self.duplicate_share < 1, f"duplicate share must be in [0, 1), got {self.duplicate_share:g}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.small_gb >= self.data_gb:
            raise UserError(f"{self.objects:,} objects of which {self.small_share:.0%} are {self.small_object_kib:g} KiB "
                            f"leave no room for larger objects in {self.data_gb:g} GB")

    @property
    def small_objects(self) -> float:
        return self.objects * self.small_share

    @property
    def large_objects(self) -> float:
        return self.objects - self.small_objects

    @property
    def small_gb(self) -> float:
        return self.small_objects * self.small_object_kib * KIB / GIB

    @property
    def large_gb(self) -> float:
        return self.data_gb - self.small_gb

    @property
    def unique(self) -> float:
        return 1.0 - self.duplicate_share


# --- what the environment decides ---------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """The environment's cost-relevant choices, read from its built templates and modules."""
    retention_days: int
    deleted_version_days: int
    transition_day: int | None
    keys: int
    interface_endpoint_azs: int
    alarms: int
    dashboards: int
    rtc: bool
    bucket_keys: bool
    object_lock: str
    multi_region_trail: bool
    worker_gb: float
    pruner_gb: float
    initiator_gb: float
    email: bool
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    drill_users: int = 0              # 0: no drill counted
    drill_gb: float = 1.0
    vault: bool = False               # the disaster-recovery copy is the vault (docs/vault.md)
    vault_step_days: int = contract.VAULT_LOCK_STEP_DAYS

    @property
    def dr_label(self) -> str:
        return "vault" if self.vault else "replica"

    @property
    def vault_slack_days(self) -> float:
        """Days the vault holds content past the last snapshot that needed it: the lock's margin,
        half the step grid on average, and lifecycle's day after a lock ends."""
        return contract.VAULT_LOCK_MARGIN_DAYS + self.vault_step_days / 2 + 1

    @property
    def kept_after_change_days(self) -> float:
        """Days superseded content stays: its last snapshot's retention plus the collector's grace."""
        return self.retention_days + contract.GC_GRACE_HOURS / 24

    def long_term_ages(self) -> list[float]:
        """Ages in days of the snapshots keep_weekly/monthly/yearly keep beyond `retention_days` (one
        per period, each period's newest taken at its end; ages within 3 days of each other are one
        snapshot: the same one kept by two rules)."""
        ages = sorted({7.0 * k for k in range(1, self.keep_weekly)}
                      | {DAYS_PER_MONTH * k for k in range(1, self.keep_monthly)}
                      | {365.25 * k for k in range(1, self.keep_yearly)})
        kept: list[float] = []
        for age in ages:
            if age > self.retention_days and (not kept or age - kept[-1] > 3):
                kept.append(age)
        return kept


def environment_facts(env: Environment) -> Facts:
    from backup_cfn.stack.template import build_dr_template, build_template

    resources = [*build_template(env).to_dict()["Resources"].values(),
                 *build_dr_template(env).to_dict()["Resources"].values()]

    def of_type(kind: str) -> list[dict]:
        return [r.get("Properties", {}) for r in resources if r["Type"] == kind]

    endpoint_azs = sum(len(p.get("SubnetIds", [])) for p in of_type("AWS::EC2::VPCEndpoint")
                       if p.get("VpcEndpointType") == "Interface")
    bucket_keys = all(rule.get("BucketKeyEnabled") for p in of_type("AWS::S3::Bucket")
                      for rule in p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
                      if rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "aws:kms")
    return Facts(
        retention_days=env.retention_days, deleted_version_days=env.deleted_version_days,
        transition_day=storage.content_transition_day(env),
        keys=len(of_type("AWS::KMS::Key")), interface_endpoint_azs=endpoint_azs,
        alarms=len(of_type("AWS::CloudWatch::Alarm")), dashboards=len(of_type("AWS::CloudWatch::Dashboard")),
        rtc=env.replication_time_control, bucket_keys=bucket_keys, object_lock=env.object_lock_mode,
        multi_region_trail=env.multi_region_trail,
        worker_gb=functions.WORKER.memory_mb / 1024, pruner_gb=functions.PRUNER.memory_mb / 1024,
        initiator_gb=functions.INITIATOR.memory_mb / 1024, email=bool(env.notification_email),
        keep_weekly=env.keep_weekly, keep_monthly=env.keep_monthly, keep_yearly=env.keep_yearly,
        drill_users=env.drill_users, drill_gb=functions.DRILL.memory_mb / 1024, vault=env.has_vault,
    )
