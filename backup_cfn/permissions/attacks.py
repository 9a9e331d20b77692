"""The attacker's side: every destructive request against each copy of the backups, for each
principal that could make it, decided as AWS would decide it (docs/vault.md, "Threat model").

Each request is evaluated with the committed templates' policies (IAM, bucket and key policies,
across accounts when the copy is the vault's). A request refused only by a bucket policy is tried
again without it when the same principal may delete that policy (the account root always may, in
its own account: S3 API Reference, PutBucketPolicy/DeleteBucketPolicy, "the root principal of the
account that owns a bucket can always use this operation"); a key's action is allowed to whoever
may replace the key policy; a stack with termination protection is deleted by whoever may turn it
off (CloudFormation User Guide, "Protect a stack from being deleted"). What the policies allow,
Object Lock may still refuse (permissions/objectlock.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from backup_cfn.permissions.iam import Principal, PrincipalKind, Request, evaluate, parse_policy
from backup_cfn.permissions.model import PRIMARY, REPLICA, SOURCE_CLIENT, DeploymentModel, Stored
from backup_cfn.permissions.objectlock import BucketLock, applies, bucket_lock

ADMIN, ROOT, TRUSTED = "ProductionAdministrator", "ProductionRoot", "TrustedAccountAdministrator"
UNTRUSTED_ACCOUNT = "999988887777"
FUNCTION_ROLES = ("InitiatorFunctionRole", "WorkerFunctionRole", "PrunerFunctionRole", "DrillFunctionRole",
                  "DeadLetterFunctionRole", "RestorerFunctionRole", "CaptureFunctionRole")
VAULT_ROLES = ("VaultLockFunctionRole", "VaultDrillFunctionRole", "VaultRestoreRole")
CONTENT = "content/ab/cd/" + "ab" * 32
MANIFEST = "manifests/client-0001/20261207T020000Z.json.gz"
SEGMENT = "journal/client-0001/20261207T143200000000Z-0123456789abcdef.json.gz"


@dataclass(frozen=True)
class Copy:
    """One copy of the backups as an attacker meets it."""
    label: str                  # "primary" | "disaster-recovery"
    bucket: Stored
    key: Stored
    stack: str
    stack_arn: str
    account: str
    lock: BucketLock
    protected: bool             # termination protection on its stack
    replicated_from: Stored | None = None     # the bucket whose replication feeds it


@dataclass(frozen=True)
class Row:
    title: str
    lock_kind: str                                              # what Object Lock may say (objectlock.applies)
    requests: Callable[[Copy], list[tuple[str, str, dict]]]    # (action, resource, context): any one suffices
    only: str | None = None                                     # "disaster-recovery": rows that exist only there


def _objects(copy: Copy, key: str) -> str:
    return f"{copy.bucket.arn}/{key}"


ROWS = (
    Row("delete a locked content version", "delete-version",
        lambda c: [("s3:DeleteObjectVersion", _objects(c, CONTENT), {"s3:versionid": "v1"})]),
    Row("delete a locked manifest version", "delete-version",
        lambda c: [("s3:DeleteObjectVersion", _objects(c, MANIFEST), {"s3:versionid": "v1"})]),
    Row("shorten a content version's lock", "shorten-retention",
        lambda c: [("s3:PutObjectRetention", _objects(c, CONTENT), {"s3:object-lock-mode": "COMPLIANCE"})]),
    Row("hide content behind a delete marker", "none", lambda c: [("s3:DeleteObject", _objects(c, CONTENT), {})]),
    Row("write over a snapshot's manifest", "none",
        lambda c: [("s3:PutObject", _objects(c, MANIFEST), {"s3:ObjectCreationOperation": "true"})]),
    Row("delete a locked journal segment version", "delete-version",
        lambda c: [("s3:DeleteObjectVersion", _objects(c, SEGMENT), {"s3:versionid": "v1"})]),
    Row("write over a journal segment", "none",
        lambda c: [("s3:PutObject", _objects(c, SEGMENT), {"s3:ObjectCreationOperation": "true"})]),
    Row("a lifecycle rule that expires everything", "lifecycle",
        lambda c: [("s3:PutLifecycleConfiguration", c.bucket.arn, {})]),
    Row("delete the bucket policy", "none", lambda c: [("s3:DeleteBucketPolicy", c.bucket.arn, {})]),
    Row("replace the bucket policy", "none", lambda c: [("s3:PutBucketPolicy", c.bucket.arn, {})]),
    Row("remove the default retention", "none", lambda c: [("s3:PutBucketObjectLockConfiguration", c.bucket.arn, {})]),
    Row("suspend versioning", "suspend-versioning", lambda c: [("s3:PutBucketVersioning", c.bucket.arn, {})]),
    Row("stop replicating into it", "none",
        lambda c: [("s3:PutReplicationConfiguration", c.replicated_from.arn, {})], only="disaster-recovery"),
    Row("send delete markers into it", "none",
        lambda c: [("s3:ReplicateDelete", _objects(c, CONTENT), {})], only="disaster-recovery"),
    Row("disable its key", "none", lambda c: [("kms:DisableKey", c.key.arn, {})]),
    Row("schedule its key's deletion", "none", lambda c: [("kms:ScheduleKeyDeletion", c.key.arn, {})]),
    Row("replace its key's policy", "none", lambda c: [("kms:PutKeyPolicy", c.key.arn, {})]),
    Row("delete its stack", "none", lambda c: [("cloudformation:DeleteStack", c.stack_arn, {})]),
)


@dataclass(frozen=True)
class Attempt:
    principal: str
    copy: str
    row: str
    allowed: bool
    how: str            # the deciding reason, or the steps that let it through


@dataclass
class AttackTable:
    attempts: list[Attempt] = field(default_factory=list)

    def allowed(self, principal: str, copy: str) -> list[str]:
        return [a.row for a in self.attempts if a.principal == principal and a.copy == copy and a.allowed]

    def counts(self, copy: str) -> dict[str, tuple[int, int]]:
        """principal -> (destructive requests allowed, requests tried) on a copy."""
        found: dict[str, tuple[int, int]] = {}
        for a in self.attempts:
            if a.copy == copy:
                allowed, tried = found.get(a.principal, (0, 0))
                found[a.principal] = (allowed + a.allowed, tried + 1)
        return found


def add_attackers(model: DeploymentModel) -> list[str]:
    """The production administrator (Allow * on *), the production account's root user and an
    administrator of a trusted account (the first trusted account, or one the deployment trusts for
    nothing), added to the model's store; returns every principal the table tries."""
    store, account = model.store, model.account
    admin = f"arn:aws:iam::{account}:role/Administrator"
    store.add_principal(ADMIN, Principal.assumed_role(admin, "ransomware", name=ADMIN))
    everything = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Sid": "AdministratorAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}]}, "AdministratorAccess")
    store.add_identity_policy(admin, everything)
    store.add_principal(ROOT, Principal.account_root(account))
    trusted_account = (model.env.trusted_account_ids or (UNTRUSTED_ACCOUNT,))[0]
    trusted = f"arn:aws:iam::{trusted_account}:role/Administrator"
    store.add_principal(TRUSTED, Principal.assumed_role(trusted, "partner", name=TRUSTED))
    store.add_identity_policy(trusted, everything)
    principals = [*FUNCTION_ROLES, "RestoreRole", "ReplicationRole", SOURCE_CLIENT, TRUSTED, ADMIN, ROOT]
    if model.env.has_vault:
        principals += list(VAULT_ROLES)
    return principals


def copies(model: DeploymentModel) -> list[Copy]:
    env, resolvers = model.env, model.resolvers

    def props(stack: str, logical: str) -> dict:
        return resolvers[stack].resolve(resolvers[stack].resources[logical].get("Properties", {}), logical)

    primary_props = props(PRIMARY, "BackupBucket")
    primary_lock = bucket_lock(primary_props)
    found = [Copy("primary", model.resources["BackupBucket"], model.resources["BackupKey"], env.stack_name,
                  model.stack_arn(env.stack_name), model.account, primary_lock, env.termination_protection)]
    bucket, key = ("VaultBucket", "VaultKey") if env.has_vault else ("ReplicaBucket", "ReplicaKey")
    lock = bucket_lock(props(REPLICA, bucket), source_mode=primary_lock.mode, locks_cover_kept=env.has_vault)
    found.append(Copy("disaster-recovery", model.resources[bucket], model.resources[key], env.dr_stack_name,
                      model.stack_arn(env.dr_stack_name), model.dr_account, lock, env.termination_protection,
                      replicated_from=model.resources["BackupBucket"]))
    return found


def _bucket_policies(model: DeploymentModel, bucket: Stored) -> frozenset[str]:
    return frozenset(e.name for e in model.store.resource_entries_for(bucket.arn) if e.kind is not None
                     and e.kind.value == "generic")


def _decide(model: DeploymentModel, principal: Principal, action: str, resource: str, context: dict, account: str,
            without: frozenset[str] = frozenset()):
    return model.store.evaluate(Request(principal, action, resource, dict(context), resource_account=account),
                                without=without)


def _may_change_bucket_policy(model: DeploymentModel, principal: Principal, copy: Copy, action: str) -> bool:
    if principal.kind is PrincipalKind.ACCOUNT_ROOT and principal.account == copy.account:
        return True     # S3 API Reference, PutBucketPolicy/DeleteBucketPolicy: the owner's root always may
    return _decide(model, principal, action, copy.bucket.arn, {}, copy.account).allowed


def _identity_allows(model: DeploymentModel, principal: Principal, action: str, resource: str, context: dict) -> bool:
    """Whether the principal's own policies allow it: what decides once it wrote the bucket policy
    itself (a policy letting it in, without the denies)."""
    if principal.kind is PrincipalKind.ACCOUNT_ROOT:
        return True
    decision = evaluate(Request(principal, action, resource, dict(context), resource_account=principal.account),
                        model.store.identity_policies_for(principal), [])
    return decision.allowed


def attempt(model: DeploymentModel, name: str, copy: Copy, row: Row) -> Attempt:
    principal = model.principal(name)
    reasons = []
    for action, resource, context in row.requests(copy):
        account = copy.account if not action.startswith("s3:PutReplication") else model.account
        decision = _decide(model, principal, action, resource, context, account)
        steps = []
        policies = _bucket_policies(model, copy.bucket)
        if not decision.allowed and action.startswith("s3:") and account == copy.account:
            if _may_change_bucket_policy(model, principal, copy, "s3:PutBucketPolicy") \
                    and _identity_allows(model, principal, action, resource, context):
                steps.append("replaces the bucket policy first with one that lets it in")
                decision = None
            elif decision.denies and {ref.policy for ref in decision.denies} & policies \
                    and _may_change_bucket_policy(model, principal, copy, "s3:DeleteBucketPolicy"):
                decision = _decide(model, principal, action, resource, context, account, without=policies)
                steps.append("deletes the bucket policy first")
        if decision is not None and not decision.allowed and action.startswith("kms:") and action != "kms:PutKeyPolicy" \
                and _decide(model, principal, "kms:PutKeyPolicy", copy.key.arn, {}, copy.account).allowed:
            steps.append("replaces the key policy first")
            decision = None
        if decision is not None and not decision.allowed:
            reasons.append(decision.reason)
            continue
        if action == "cloudformation:DeleteStack" and copy.protected:
            if not _decide(model, principal, "cloudformation:UpdateTerminationProtection", resource, {},
                           copy.account).allowed:
                reasons.append("termination protection, which it may not turn off")
                continue
            steps.append("turns termination protection off first")
        bypass = (_identity_allows(model, principal, "s3:BypassGovernanceRetention", resource, {}) if steps
                  else _decide(model, principal, "s3:BypassGovernanceRetention", resource, {}, account).allowed)
        verdict = applies(row.lock_kind, copy.lock, bypass)
        if verdict.refused:
            reasons.append(verdict.why)
            continue
        return Attempt(name, copy.label, row.title, True, "; ".join(steps) or "allowed")
    return Attempt(name, copy.label, row.title, False, reasons[0] if reasons else "no request")


def attack_table(model: DeploymentModel) -> AttackTable:
    table = AttackTable()
    principals = add_attackers(model)
    for copy in copies(model):
        for row in ROWS:
            if row.only and row.only != copy.label:
                continue
            for name in principals:
                table.attempts.append(attempt(model, name, copy, row))
    return table
