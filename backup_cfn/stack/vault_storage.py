"""The vault's data: its key, its bucket (compliance-locked, replicated into, emptied only by
lifecycle once no lock holds a version), the bucket's policy and the lock records table.

Why the lifecycle rules are safe, and what they cost, is in docs/vault.md ("Locks and lifecycle").
"""
from __future__ import annotations

from troposphere import GetAtt, Ref, Template, dynamodb, kms, s3

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack.keys import add_rotating_key
from backup_cfn.stack.policies import vault as vault_policies
from backup_cfn.stack.resource_options import TLS_STATEMENT_JOIN, retain, skip_lint, tags
from backup_cfn.stack.storage import INCOMPLETE_UPLOAD_DAYS, content_transition_rules, locked_by_default, private_bucket

# A version no lock holds is removed the day after it became noncurrent (lifecycle's smallest step).
UNLOCKED_VERSION_DAYS = 1


def default_lock_days(env: Environment) -> int:
    """Every version arrives locked this long: the retention and the lock extender's margin, which
    is as long as the snapshot it arrives with is kept by the retention alone (its run is no later
    than the version's arrival). The extender then locks it to its snapshot's date on the step grid
    (engine/vault_locks.py); the default is no longer, so content that only that snapshot names
    leaves the vault a few days after it, not a whole step later (bench scenario 6)."""
    return env.retention_days + contract.VAULT_LOCK_MARGIN_DAYS


def add_vault_key(t: Template, env: Environment) -> kms.Key:
    return add_rotating_key(
        t, env, "VaultKey", policy=vault_policies.vault_key_policy(env), alias=f"alias/{env.vault.stack_name}",
        description=f"backup-cfn {env.name}: the vault, disaster-recovery copy of {env.stack_name}")


def vault_lifecycle_rules(env: Environment) -> list[s3.LifecycleRule]:
    """Every version gets a delete marker on top once its default lock ends, and is removed a day
    after that, unless a lock still holds it: S3 Lifecycle places delete markers on locked objects
    but never deletes a locked version. What the lock extender keeps locked stays; nothing else does."""
    rules = [
        s3.LifecycleRule(Id="ExpireCurrentVersions", Status="Enabled", Prefix="",
                         ExpirationInDays=default_lock_days(env)),
        s3.LifecycleRule(
            Id="RemoveUnlockedVersions", Status="Enabled", Prefix="",
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=UNLOCKED_VERSION_DAYS),
            ExpiredObjectDeleteMarker=True,
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS),
        ),
    ]
    return rules + content_transition_rules(env)


def add_vault_bucket(t: Template, env: Environment, key, log_bucket) -> s3.Bucket:
    """Named, so the production side can replicate into it knowing only the environments file."""
    return t.add_resource(private_bucket(
        "VaultBucket", env, key=key, log_bucket=log_bucket, log_prefix="vault/", rules=vault_lifecycle_rules(env),
        lock=locked_by_default(env.vault.lock_mode, default_lock_days(env)), BucketName=env.vault.bucket_name,
    ))


def add_vault_bucket_policy(t: Template, env: Environment, bucket: s3.Bucket, key) -> s3.BucketPolicy:
    return t.add_resource(skip_lint(s3.BucketPolicy(
        "VaultBucketPolicy", Bucket=Ref(bucket), PolicyDocument=vault_policies.vault_bucket_policy(env, bucket, key)),
        TLS_STATEMENT_JOIN))


def add_lock_table(t: Template, env: Environment, key) -> dynamodb.Table:
    """How far each recovery point is locked (engine/vault_locks.py); an item expires with its lock."""
    return t.add_resource(retain(dynamodb.Table(
        "VaultLockTable",
        AttributeDefinitions=[dynamodb.AttributeDefinition(AttributeName=contract.VAULT_LOCK_KEY, AttributeType="S")],
        KeySchema=[dynamodb.KeySchema(AttributeName=contract.VAULT_LOCK_KEY, KeyType="HASH")],
        TimeToLiveSpecification=dynamodb.TimeToLiveSpecification(AttributeName=contract.VAULT_LOCK_TTL_ATTRIBUTE, Enabled=True),
        BillingMode="PAY_PER_REQUEST",
        SSESpecification=dynamodb.SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=GetAtt(key, "Arn")),
        PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(PointInTimeRecoveryEnabled=True),
        DeletionProtectionEnabled=env.is_production,
        Tags=tags(env),
    )))
