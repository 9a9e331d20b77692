"""The forecast: what executing the change set will do, or fail to do, said before anyone confirms.

Each check looks at the change set and both resolved templates; those in `lookups.py` also make
read calls (none writes). Every finding has an ID, KIND:LogicalId; blocking ones refuse the change
set, like the stateful guard, unless accepted by that ID (`--accept`). The kinds, what each means
and whether it blocks are listed in docs/review.md.
"""
from __future__ import annotations

import re
from fnmatch import fnmatchcase

from backup_cfn.deploy.review import lookups
from backup_cfn.deploy.review.forecast_input import NAME_PROPERTIES, ForecastInput, new_names, property_at
from backup_cfn.deploy.review.model import BLOCKING, WARNING, Finding
from backup_cfn.deploy.review.permissions import grants
from backup_cfn.deploy.review.text import compact

# --- Object Lock: compliance is irreversible -----------------------------------------------------------

def _retention(properties: dict) -> tuple[str, int]:
    rule = property_at(properties, "ObjectLockConfiguration", "Rule", "DefaultRetention") or {}
    days = int(rule.get("Days") or 0) + 365 * int(rule.get("Years") or 0)
    return str(rule.get("Mode", "")).upper(), days


VAULT_BUCKET = "VaultBucket"   # compliance-locked by design (docs/vault.md)


def vault_lock(inp: ForecastInput, change, old_mode: str, old_days: int, new_mode: str, new_days: int) -> list[Finding]:
    """The vault's default lock may start and grow; a change that shortens it or weakens its mode
    is refused: every version written from then on would be held less than the rules need."""
    if change.action == "Add" or (new_mode == old_mode and new_days >= old_days):
        if change.action == "Add" or new_days > old_days:
            return [Finding("vault-lock", change.logical_id, WARNING, (
                f"the vault locks every new version in {new_mode or 'no'} mode for {new_days} days (was "
                f"{f'{old_mode}, {old_days} days' if old_mode else 'nothing'}): by design, nobody can delete them "
                "earlier (docs/vault.md)"))]
        return []
    return [Finding("vault-lock-shortened", change.logical_id, BLOCKING, (
        f"the vault's default lock becomes {new_mode or 'none'}, {new_days} days (was {old_mode}, {old_days} days): "
        "new versions would be held less than the retention rules need, and a weaker mode lets them be lifted"))]


def object_lock(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change in inp.changes_of("AWS::S3::Bucket", ("Add", "Modify")):
        old, new = inp.old_properties(change.logical_id), inp.new_properties(change.logical_id)
        (old_mode, old_days), (new_mode, new_days) = _retention(old), _retention(new)
        if change.logical_id == VAULT_BUCKET:
            findings += vault_lock(inp, change, old_mode, old_days, new_mode, new_days)
            continue
        if new_mode == "COMPLIANCE" and (old_mode != "COMPLIANCE" or new_days > old_days):
            was = f"{old_mode or 'no'} lock, {old_days} days" if old_mode else "no default lock"
            findings.append(Finding("compliance-lock", change.logical_id, BLOCKING, (
                f"default retention becomes COMPLIANCE for {new_days} days (was {was}): every object version "
                f"written from then on can be deleted by no one, the account root included, for {new_days} days, "
                "and the bucket's Object Lock can never be turned off")))
        if change.action == "Modify" and str(new.get("ObjectLockEnabled")).lower() == "true" \
                and str(old.get("ObjectLockEnabled")).lower() != "true":
            findings.append(Finding("object-lock-enabled", change.logical_id, WARNING, (
                f"Object Lock is turned on ({new_mode or 'no default'} retention"
                f"{f', {new_days} days' if new_days else ''}): it can never be turned off for this bucket again"
                + ("; GOVERNANCE versions can still be removed by principals with s3:BypassGovernanceRetention"
                   if new_mode == "GOVERNANCE" else ""))))
    return findings


# --- lifecycle rules that delete sooner ---------------------------------------------------------------------

LIFECYCLE_AGES = (("NoncurrentVersionExpiration", "NoncurrentDays", "noncurrent (deleted or overwritten) versions"),
                  ("Expiration", "Days", "current objects"), (None, "ExpirationInDays", "current objects"),
                  (None, "NoncurrentVersionExpirationInDays", "noncurrent versions"))


def _rules(properties: dict) -> dict[str, dict]:
    rules = property_at(properties, "LifecycleConfiguration", "Rules") or []
    return {str(rule.get("Id", n)): rule for n, rule in enumerate(rules) if isinstance(rule, dict)}


def lifecycle_shortened(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change in inp.changes_of("AWS::S3::Bucket", ("Modify",)):
        old, new = _rules(inp.old_properties(change.logical_id)), _rules(inp.new_properties(change.logical_id))
        for rule_id, rule in new.items():
            if rule_id not in old or str(rule.get("Status")) != "Enabled":
                continue
            for container, key, what in LIFECYCLE_AGES:
                before = property_at(old[rule_id], *(c for c in (container, key) if c))
                after = property_at(rule, *(c for c in (container, key) if c))
                if str(after).isdigit() and (before is None or (str(before).isdigit() and int(after) < int(before))):
                    findings.append(Finding("lifecycle-shortened", change.logical_id, WARNING, (
                        f"lifecycle rule {rule_id}: S3 permanently deletes {what} after {after} days"
                        f" (was {before if before is not None else 'never'}), from its next lifecycle run")))
    return findings


# --- a key policy that locks the account out -----------------------------------------------------------------

def _matches(pattern: str, value: str) -> bool:
    return fnmatchcase(value.lower(), pattern.lower())


def key_lockout(inp: ForecastInput) -> list[Finding]:
    """AWS refuses a key policy that does not let the account root (through IAM) change it again."""
    root = {f"AWS arn:{inp.partition}:iam::{inp.account}:root", f"AWS {inp.account}", "AWS *", "anyone"}
    findings = []
    for change in inp.changes_of("AWS::KMS::Key", ("Add", "Modify")):
        policy = inp.new_properties(change.logical_id).get("KeyPolicy")
        if policy is None:
            continue
        held = grants((policy or {}).get("Statement") if isinstance(policy, dict) else [], default_resource="*")
        allowed = any(effect == "Allow" and principal in root and not condition and resource == "*"
                      and _matches(action, "kms:PutKeyPolicy") for effect, principal, action, resource, condition in held)
        denied = any(effect == "Deny" and principal in root and not condition and _matches(action, "kms:PutKeyPolicy")
                     for effect, principal, action, _, condition in held)
        if not allowed or denied:
            findings.append(Finding("key-lockout", change.logical_id, BLOCKING, (
                f"the key policy does not allow the account root (arn:{inp.partition}:iam::{inp.account}:root) "
                "kms:PutKeyPolicy on '*' without conditions: nobody could change the policy again; KMS refuses "
                "such a policy ('The new key policy will not allow you to update the key policy in the future')")))
    return findings


# --- replication to a new destination --------------------------------------------------------------------------

def _destinations(properties: dict) -> dict[str, tuple[str, str]]:
    rules = property_at(properties, "ReplicationConfiguration", "Rules") or []
    return {str(rule.get("Id", n)): (compact(property_at(rule, "Destination", "Bucket")),
                                     compact(property_at(rule, "Destination", "EncryptionConfiguration", "ReplicaKmsKeyID")))
            for n, rule in enumerate(rules) if isinstance(rule, dict)}


def replication_changed(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change in inp.changes_of("AWS::S3::Bucket", ("Modify",)):
        old, new = _destinations(inp.old_properties(change.logical_id)), _destinations(inp.new_properties(change.logical_id))
        for rule_id, (bucket, key) in new.items():
            if rule_id not in old or old[rule_id] == (bucket, key):
                continue
            what = []
            if old[rule_id][0] != bucket:
                what.append(f"destination {old[rule_id][0]} → {bucket}")
            if old[rule_id][1] != key:
                what.append(f"replica key {old[rule_id][1]} → {key}")
            findings.append(Finding("replication-changed", change.logical_id, WARNING, (
                f"replication rule {rule_id}: {', '.join(what)}. S3 replication copies only objects written "
                "from then on: the backups already in the bucket must be replicated again with S3 Batch "
                "Replication (a Batch Operations job that replicates existing objects), or the replica holds "
                "only new backups; objects replicated before stay under the old key and bucket")))
    return findings


# --- names a new resource gives itself -----------------------------------------------------------------------

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
BUCKET_NAME_RULES = "3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit"


def bucket_name_invalid(name: str) -> str | None:
    if not _BUCKET_NAME.match(name):
        return BUCKET_NAME_RULES
    if ".." in name or _IP_ADDRESS.match(name):
        return "no two adjacent dots, not an IP address"
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        return "none of S3's reserved prefixes (xn--, sthree-, amzn-s3-demo-) or suffixes (-s3alias, --ol-s3, .mrap, --x-s3)"
    return None


def names_valid(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change, resource_type, name in new_names(inp):
        broken = bucket_name_invalid(name) if resource_type == "AWS::S3::Bucket" else None
        if broken:
            findings.append(Finding("bucket-name-invalid", change.logical_id, BLOCKING,
                                    f"bucket name {name!r} is not valid: S3 wants {broken}"))
    return findings


def custom_name_replacement(inp: ForecastInput) -> list[Finding]:
    """CloudFormation creates a replacement before deleting the old resource: with the same custom
    name, the creation fails."""
    findings = []
    for change in inp.change_set.changes:
        prop = NAME_PROPERTIES.get(change.resource_type)
        name = inp.new_properties(change.logical_id).get(prop) if prop else None
        if change.action == "Modify" and change.replacement == "True" and isinstance(name, str) \
                and name == inp.old_properties(change.logical_id).get(prop):
            findings.append(Finding("custom-name-replacement", change.logical_id, BLOCKING, (
                f"{change.resource_type} named {name!r} must be replaced, but the replacement would need the same "
                "name while the old one exists: CloudFormation fails with 'CloudFormation cannot update a stack "
                "when a custom-named resource requires replacing'; rename it or remove the name")))
    return findings


# --- the vault's own rules, and production's replication into it -------------------------------------------

VAULT_RULE_VARIABLES = ("RETENTION_DAYS", "KEEP_WEEKLY", "KEEP_MONTHLY", "KEEP_YEARLY")


def vault_rules_shortened(inp: ForecastInput) -> list[Finding]:
    """The lock function's retention rules decide how long the vault locks what it holds: a change
    that keeps less from then on is refused (locks already given stay: compliance mode)."""
    findings = []
    for change in inp.changes_of("AWS::Lambda::Function", ("Modify",)):
        if change.logical_id != "VaultLockFunction":
            continue
        old = property_at(inp.old_properties(change.logical_id), "Environment", "Variables") or {}
        new = property_at(inp.new_properties(change.logical_id), "Environment", "Variables") or {}
        shorter = [f"{name} {old[name]} -> {new.get(name, 0)}" for name in VAULT_RULE_VARIABLES
                   if str(old.get(name, "0")).isdigit() and str(new.get(name, "0")).isdigit()
                   and int(new.get(name, 0)) < int(old.get(name, 0))]
        if shorter:
            findings.append(Finding("vault-rules-shortened", change.logical_id, BLOCKING, (
                f"the vault would keep less from now on ({', '.join(shorter)}): snapshots it keeps today would "
                "lose their lock extensions; change the rules in the vault only after the primary's")))
    return findings


def _vault_rules(properties: dict) -> dict[str, tuple]:
    rules = property_at(properties, "ReplicationConfiguration", "Rules") or []
    return {str(rule.get("Id", n)): (str(rule.get("Status")), compact(property_at(rule, "Destination", "Account")))
            for n, rule in enumerate(rules) if isinstance(rule, dict) and property_at(rule, "Destination", "Account")}


def vault_replication_stopped(inp: ForecastInput) -> list[Finding]:
    """Production stopping or redirecting its replication into the vault: the one thing it can do to
    the vault, refused here and alarmed there (NothingReplicatedAlarm)."""
    findings = []
    for change in inp.changes_of("AWS::S3::Bucket", ("Modify",)):
        old = _vault_rules(inp.old_properties(change.logical_id))
        new = _vault_rules(inp.new_properties(change.logical_id))
        for rule_id, (status, account) in old.items():
            after = new.get(rule_id)
            if status == "Enabled" and (after is None or after[0] != "Enabled" or after[1] != account):
                what = "removed" if after is None else ("disabled" if after[0] != "Enabled" else
                                                         f"sent to account {after[1]}")
                findings.append(Finding("vault-replication-stopped", change.logical_id, BLOCKING, (
                    f"replication rule {rule_id} into the vault (account {account}) is {what}: new backups "
                    "would no longer reach the copy production cannot destroy")))
    return findings


OFFLINE_CHECKS = (object_lock, lifecycle_shortened, key_lockout, replication_changed, names_valid, custom_name_replacement,
                  vault_rules_shortened, vault_replication_stopped)


def run(inp: ForecastInput, accepted: frozenset[str] = frozenset()) -> tuple[Finding, ...]:
    """Every check, offline ones first; blocking findings named in `accepted` are marked so."""
    findings: list[Finding] = []
    for check in OFFLINE_CHECKS + (lookups.READING_CHECKS if inp.readers is not None else ()):
        findings += check(inp)
    return tuple(Finding(f.kind, f.logical_id, f.severity, f.message, f.id in accepted, f.data) for f in findings)
