"""The environments file: one human-edited TOML file, loaded into frozen, validated objects.

Every problem is reported as one line naming the file, the environment and the field, because
the person reading it is about to deploy and needs to know exactly what to fix.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from backup_cfn import contract
from backup_cfn.errors import UserError

DEFAULT_ENVIRONMENTS_FILE = Path(__file__).resolve().parent.parent / "environments.toml"

OBJECT_LOCK_MODES = ("none", "governance", "compliance")
# Regions this tool knows how to reach; an unknown name is almost always a typo.
KNOWN_REGIONS = frozenset(
    """af-south-1 ap-east-1 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2
    ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ca-central-1 ca-west-1
    eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2 eu-west-1 eu-west-2 eu-west-3
    il-central-1 me-central-1 me-south-1 mx-central-1 sa-east-1 us-east-1 us-east-2 us-west-1
    us-west-2""".split()
)
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEDULE = re.compile(r"^(cron\(([^ ]+ ){5}[^ ]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_USER_NAME = re.compile(r"^[^/]{1,512}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/[a-f0-9-]{36}$")
_PROFILE = re.compile(r"^[\w.+@-]{1,128}$")
VAULT_LOCK_MODES = ("compliance", "governance")


@dataclass(frozen=True)
class Vault:
    """The disaster-recovery copy in an account of its own (docs/vault.md): where it is, how its
    credentials are chosen, and what the production side needs to know of it."""

    account_id: str
    region: str
    stack_name: str
    profile: str = ""                  # a named AWS profile holding the vault account's credentials, or
    role_arn: str = ""                 # a role in the vault account, assumed from the current credentials
    key_arn: str = ""                  # the vault key (VaultKeyArn output), for a primary deploy without them
    lock_mode: str = "compliance"
    notification_email: str = ""
    recovery_account_ids: tuple[str, ...] = ()

    @property
    def bucket_name(self) -> str:
        """Fixed, so the production side can name it without reading the vault's stack."""
        return f"{self.stack_name}-{self.account_id}".lower()


@dataclass(frozen=True)
class Environment:
    """One deployment target. Field docs live in the environments file and docs/configuration.md."""

    name: str
    stack_name: str
    region: str
    replica_region: str
    retention_days: int = 60
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    schedule: str = "cron(0 2 * * ? *)"
    prune_schedule: str = "cron(0 6 * * ? *)"
    drill_schedule: str = "cron(0 8 ? * SUN *)"
    drill_users: int = 10
    max_concurrent_backups: int = 10
    capture_concurrency: int = 10
    burst_changes: int = 1000
    max_concurrent_restores: int = 20
    content_index_warm_writes: int = 0
    vpc_endpoints: bool = True
    notification_email: str = ""
    trusted_account_ids: tuple[str, ...] = ()
    object_lock_mode: str = "none"
    source_bucket: str = ""
    multi_region_trail: bool = False
    deleted_version_days: int = 7
    replication_time_control: bool = False
    priority_users: tuple[str, ...] = ()
    retry_base_seconds: int = contract.RETRY_BASE_SECONDS
    retry_max_seconds: int = contract.RETRY_MAX_SECONDS
    account_id: str = ""
    termination_protection: bool = False
    endpoint_url: str = ""
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    vault: Vault | None = None

    @property
    def has_vault(self) -> bool:
        """The disaster-recovery copy is a vault in another account (else: the same-account replica)."""
        return self.vault is not None

    @property
    def is_local(self) -> bool:
        """True for the offline emulator target."""
        return bool(self.endpoint_url)

    @property
    def is_production(self) -> bool:
        return self.termination_protection

    @property
    def replica_stack_name(self) -> str:
        return f"{self.stack_name}-replica"

    @property
    def dr_stack_name(self) -> str:
        """The stack holding the disaster-recovery copy: the vault's, or the replica's."""
        return self.vault.stack_name if self.vault else self.replica_stack_name

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


_FIELD_TYPES: dict[str, type] = {
    "stack_name": str,
    "region": str,
    "replica_region": str,
    "retention_days": int,
    "keep_weekly": int,
    "keep_monthly": int,
    "keep_yearly": int,
    "schedule": str,
    "prune_schedule": str,
    "drill_schedule": str,
    "drill_users": int,
    "max_concurrent_backups": int,
    "capture_concurrency": int,
    "burst_changes": int,
    "max_concurrent_restores": int,
    "content_index_warm_writes": int,
    "vpc_endpoints": bool,
    "notification_email": str,
    "trusted_account_ids": list,
    "object_lock_mode": str,
    "source_bucket": str,
    "multi_region_trail": bool,
    "deleted_version_days": int,
    "replication_time_control": bool,
    "priority_users": list,
    "retry_base_seconds": int,
    "retry_max_seconds": int,
    "account_id": str,
    "termination_protection": bool,
    "endpoint_url": str,
    "tags": dict,
    "vault": dict,
}
assert set(_FIELD_TYPES) == {f.name for f in fields(Environment)} - {"name"}
_REQUIRED = ("stack_name", "region")
_VAULT_FIELDS: dict[str, type] = {
    "account_id": str, "region": str, "stack_name": str, "profile": str, "role_arn": str, "key_arn": str,
    "lock_mode": str, "notification_email": str, "recovery_account_ids": list,
}
# Longer-term retention: how many ISO weeks, months and years keep their newest snapshot (0: off).
KEEP_LIMITS = {"keep_weekly": 520, "keep_monthly": 120, "keep_yearly": 100}
DRILL_USERS_LIMIT = 1000


class ConfigError(UserError):
    """A problem in the environments file."""


def load_environments(path: Path | str = DEFAULT_ENVIRONMENTS_FILE) -> dict[str, Environment]:
    """Every environment in the file, validated; raises ConfigError on the first problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: environments file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read environments file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown_top = set(raw) - {"defaults", "env"}
    if unknown_top:
        raise ConfigError(f"{path}: unknown top-level table(s) {sorted(unknown_top)}; expected [defaults] and [env.NAME]")
    defaults = raw.get("defaults", {})
    envs = raw.get("env", {})
    if not isinstance(defaults, dict) or not isinstance(envs, dict):
        raise ConfigError(f"{path}: [defaults] and [env.NAME] must be tables")
    if not envs:
        raise ConfigError(f"{path}: no environments defined; add an [env.NAME] table")
    _check_fields(path, "defaults", defaults)
    result = {}
    for name, values in envs.items():
        where = f"{path}: env '{name}'"
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{where}: environment names are lower-case letters, digits and '-', at most 16 characters")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_fields(path, name, values)
        merged = {**defaults, **values}
        merged["tags"] = {**defaults.get("tags", {}), **values.get("tags", {})}
        if "vault" in defaults or "vault" in values:
            merged["vault"] = {**defaults.get("vault", {}), **values.get("vault", {})}
        result[name] = _build(path, name, merged)
    return result


def load_environment(name: str, path: Path | str = DEFAULT_ENVIRONMENTS_FILE) -> Environment:
    """One environment by name; an unknown name lists the known ones."""
    envs = load_environments(path)
    if name not in envs:
        raise ConfigError(f"{path}: unknown environment '{name}' (known: {', '.join(sorted(envs))})")
    return envs[name]


def _check_fields(path: Path, env: str, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if key not in _FIELD_TYPES:
            raise ConfigError(f"{path}: env '{env}': unknown field '{key}'")
        expected = _FIELD_TYPES[key]
        # bool is a subclass of int in Python; a retention of `true` is a mistake, not 1 day.
        if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
            raise ConfigError(
                f"{path}: env '{env}': field '{key}' must be {_type_word(expected)}, got {value!r}"
            )


def _type_word(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}[kind]


# The longest retry delay allowed: with it, every delivery of a job still ends within
# JOB_MAX_RECEIVES * (worker timeout + delay) = 7.5 hours of the first, well inside the 26-hour
# alarm for a run that did not complete (docs/engine.md, "Timing").
MAX_RETRY_SECONDS = 3600


def _check_retries(values: dict[str, Any], fail) -> None:
    base = values.get("retry_base_seconds", contract.RETRY_BASE_SECONDS)
    cap = values.get("retry_max_seconds", contract.RETRY_MAX_SECONDS)
    if not 1 <= base <= MAX_RETRY_SECONDS:
        raise fail("retry_base_seconds", f"must be between 1 and {MAX_RETRY_SECONDS} seconds, got {base}")
    if not base <= cap <= MAX_RETRY_SECONDS:
        raise fail("retry_max_seconds", f"must be between retry_base_seconds ({base}) and {MAX_RETRY_SECONDS} "
                                        f"seconds, got {cap}: every retry must end well inside the 26-hour alarm")


def _build(path: Path, name: str, values: dict[str, Any]) -> Environment:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: env '{name}': field '{key}' {message}")

    vault = _check_vault(values, fail)
    _check_identity(values, fail)
    _check_numbers(values, fail)
    _check_retries(values, fail)
    _check_schedules(values, fail)
    accounts = _check_people_and_accounts(values, fail)
    _check_sources_and_endpoints(values, fail)
    users = _check_priority_users(values, fail)
    tags = _check_tags(values, fail)

    kwargs = dict(values)
    kwargs["trusted_account_ids"] = tuple(accounts)
    kwargs["priority_users"] = tuple(users)
    kwargs["tags"] = tuple(sorted(tags.items()))
    kwargs["vault"] = vault
    return Environment(name=name, **kwargs)


def _check_vault(values: dict[str, Any], fail) -> Vault | None:
    """The [env.NAME.vault] table: its own account and region, and how to reach it. With a vault,
    the disaster-recovery region is the vault's (replica_region, if given, must name it)."""
    raw = values.get("vault")
    if raw is None:
        return None
    def bad(key: str, message: str) -> ConfigError:
        return fail(f"vault.{key}", message)
    for key, value in raw.items():
        if key not in _VAULT_FIELDS:
            raise bad(key, "is not a vault field (known: " + ", ".join(sorted(_VAULT_FIELDS)) + ")")
        if not isinstance(value, _VAULT_FIELDS[key]) or isinstance(value, bool):
            raise bad(key, f"must be {_type_word(_VAULT_FIELDS[key])}, got {value!r}")
    account = raw.get("account_id", "")
    if not _ACCOUNT_ID.match(account):
        raise bad("account_id", f"must be the vault account's 12-digit ID, got {account!r}")
    own = values.get("account_id", "")
    if not own:
        raise fail("account_id", "is required with a vault: the vault's policies name this account's replication role")
    if own == account:
        raise bad("account_id", f"must differ from the environment's own account {own}: a vault in the account "
                                "it protects survives nothing that account's administrator does")
    region = raw.get("region", "")
    if region not in KNOWN_REGIONS:
        raise bad("region", f"is not a known AWS region: {region!r}")
    if values.get("replica_region", region) != region:
        raise fail("replica_region", f"must be the vault's region ({region}) or left out: with a vault, the "
                                     "disaster-recovery copy is the vault")
    values["replica_region"] = region
    stack = raw.get("stack_name") or f"{values.get('stack_name', '')}-vault"
    if not _STACK_NAME.match(stack):
        raise bad("stack_name", f"must start with a letter and hold only letters, digits and '-' (got {stack!r})")
    profile, role_arn, key_arn = raw.get("profile", ""), raw.get("role_arn", ""), raw.get("key_arn", "")
    if profile and role_arn:
        raise bad("role_arn", "give profile or role_arn, not both")
    if profile and not _PROFILE.match(profile):
        raise bad("profile", f"is not a profile name: {profile!r}")
    role = _ROLE_ARN.match(role_arn)
    if role_arn and (not role or role.group(1) != account):
        raise bad("role_arn", f"must be a role ARN in the vault account {account}, got {role_arn!r}")
    key = _KMS_KEY_ARN.match(key_arn)
    if key_arn and (not key or key.group(1) != region or key.group(2) != account):
        raise bad("key_arn", f"must be a KMS key ARN (not an alias) in {region} of account {account}, got {key_arn!r}")
    mode = raw.get("lock_mode", "compliance")
    if mode not in VAULT_LOCK_MODES:
        raise bad("lock_mode", f"must be one of {', '.join(VAULT_LOCK_MODES)}, got {mode!r}")
    if values.get("object_lock_mode", "none") == "governance":
        raise fail("object_lock_mode", "must be none or compliance with a vault: replicas keep their source's lock, "
                                       "and a governance lock arriving in the vault could be lifted there")
    email = raw.get("notification_email", "")
    if email and not _EMAIL.match(email):
        raise bad("notification_email", f"is not an e-mail address: {email!r}")
    recovery = raw.get("recovery_account_ids", [])
    for item in recovery:
        if not isinstance(item, str) or not _ACCOUNT_ID.match(item):
            raise bad("recovery_account_ids", f"must hold 12-digit account IDs as strings, got {item!r}")
        if item == own:
            raise bad("recovery_account_ids", f"lists the production account {own}: it must not read the vault")
    vault = Vault(account_id=account, region=region, stack_name=stack, profile=profile, role_arn=role_arn,
                  key_arn=key_arn, lock_mode=mode, notification_email=email, recovery_account_ids=tuple(recovery))
    if not _BUCKET_NAME.match(vault.bucket_name):
        raise bad("stack_name", f"makes the vault bucket name {vault.bucket_name!r}, which S3 refuses (at most 63 "
                                "lower-case letters, digits and '-'): shorten it")
    return vault


def _check_identity(values: dict[str, Any], fail) -> None:
    """Names and regions: what the stacks are called and where they go."""
    for key in _REQUIRED:
        if not values.get(key):
            raise fail(key, "is required")
    if not values.get("replica_region"):
        raise fail("replica_region", "is required (or a [vault] table, whose region is the disaster-recovery region)")
    if not _STACK_NAME.match(values["stack_name"]):
        raise fail("stack_name", f"must start with a letter and hold only letters, digits and '-' (got {values['stack_name']!r})")
    for key in ("region", "replica_region"):
        if values[key] not in KNOWN_REGIONS:
            raise fail(key, f"is not a known AWS region: {values[key]!r}")
    if values["replica_region"] == values["region"]:
        raise fail("replica_region", f"must differ from region ({values['region']}): a replica in the same region is no disaster recovery")


def _check_numbers(values: dict[str, Any], fail) -> None:
    """Retention, recoverability, concurrency and drill sizes, each within what AWS and the design accept."""
    retention = values.get("retention_days", 60)
    if not 1 <= retention <= 3650:
        raise fail("retention_days", f"must be between 1 and 3650 days, got {retention}")
    deleted_days = values.get("deleted_version_days", 7)
    if not 1 <= deleted_days <= 365:
        raise fail("deleted_version_days", f"must be between 1 and 365 days, got {deleted_days}")
    burst = values.get("burst_changes", 1000)
    if not 10 <= burst <= 10_000_000:
        raise fail("burst_changes", f"must be between 10 and 10000000 changes per {contract.BURST_WINDOW_SECONDS // 60} "
                                    f"minutes, got {burst}")
    # Lambda's SQS MaximumConcurrency accepts 2..1000.
    for key, default in (("max_concurrent_backups", 10), ("max_concurrent_restores", 20), ("capture_concurrency", 10)):
        concurrency = values.get(key, default)
        if not 2 <= concurrency <= 1000:
            raise fail(key, f"must be between 2 and 1000, got {concurrency}")
    # 0 (a new on-demand table's 4,000 writes/s) or a warm throughput up to the default per-table
    # quota of 40,000 write request units a second (DynamoDB Developer Guide, "Quotas").
    warm = values.get("content_index_warm_writes", 0)
    if warm and not 4000 < warm <= 40000:
        raise fail("content_index_warm_writes", f"must be 0 (off) or between 4001 and 40000, got {warm}")
    for key, limit in KEEP_LIMITS.items():
        count = values.get(key, 0)
        if not 0 <= count <= limit:
            raise fail(key, f"must be between 0 (off) and {limit}, got {count}")
    drill_users = values.get("drill_users", 10)
    if not 1 <= drill_users <= DRILL_USERS_LIMIT:
        raise fail("drill_users", f"must be between 1 and {DRILL_USERS_LIMIT}, got {drill_users}")


def _check_schedules(values: dict[str, Any], fail) -> None:
    for key in ("schedule", "prune_schedule", "drill_schedule"):
        if key in values and not _SCHEDULE.match(values[key]):
            raise fail(key, f"must be an EventBridge cron(...) with 6 fields or rate(...) expression, got {values[key]!r}")


def _check_people_and_accounts(values: dict[str, Any], fail) -> list[str]:
    """Who is notified, which accounts are trusted, and which account the environment is for."""
    email = values.get("notification_email", "")
    if email and not _EMAIL.match(email):
        raise fail("notification_email", f"is not an e-mail address: {email!r}")
    accounts = values.get("trusted_account_ids", [])
    for account in accounts:
        if not isinstance(account, str) or not _ACCOUNT_ID.match(account):
            raise fail("trusted_account_ids", f"must hold 12-digit account IDs as strings, got {account!r}")
    if len(set(accounts)) != len(accounts):
        raise fail("trusted_account_ids", "lists an account twice")
    account_id = values.get("account_id", "")
    if account_id and not _ACCOUNT_ID.match(account_id):
        raise fail("account_id", f"must be a 12-digit account ID, got {account_id!r}")
    if account_id and account_id in accounts:
        raise fail("trusted_account_ids", f"lists the environment's own account {account_id}")
    return accounts


def _check_sources_and_endpoints(values: dict[str, Any], fail) -> None:
    """The object lock mode, an existing source bucket, and the emulator's endpoint."""
    if values.get("object_lock_mode", "none") not in OBJECT_LOCK_MODES:
        raise fail("object_lock_mode", f"must be one of {', '.join(OBJECT_LOCK_MODES)}, got {values['object_lock_mode']!r}")
    source = values.get("source_bucket", "")
    if source and (not _BUCKET_NAME.match(source) or ".." in source):
        raise fail("source_bucket", f"is not a valid S3 bucket name: {source!r}")
    endpoint = values.get("endpoint_url", "")
    if endpoint and not re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/?$", endpoint):
        raise fail("endpoint_url", f"must be a loopback http URL for the local emulator, got {endpoint!r}")


def _check_priority_users(values: dict[str, Any], fail) -> list[str]:
    users = values.get("priority_users", [])
    for user in users:
        if not isinstance(user, str) or not _USER_NAME.match(user):
            raise fail("priority_users", f"must hold user prefixes (no '/'), got {user!r}")
    return users


def _check_tags(values: dict[str, Any], fail) -> dict[str, str]:
    tags = values.get("tags", {})
    for key, value in tags.items():
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise fail("tags", f"has an invalid tag key {key!r}")
        if not isinstance(value, str) or len(value) > 256:
            raise fail("tags", f"value for {key!r} must be a string of at most 256 characters")
    if len(tags) > 40:
        raise fail("tags", "holds more than 40 tags (CloudFormation adds its own up to S3's limit of 50)")
    return tags
