"""S3: the backup bucket (with replication), the access-log bucket, the source bucket, the replica.

Lifecycle reasoning is in docs/lifecycle.md; the arithmetic is asserted in tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, iam, s3

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.policies import buckets as bucket_policies, elements, roles as role_policies
from backup_cfn.stack.resource_options import TLS_STATEMENT_JOIN, retain, skip_checks, skip_lint, tags

LOG_RETENTION_DAYS = 365
REPLICATION_RULE_ID = "ReplicateEverythingToReplicaRegion"
VAULT_REPLICATION_RULE_ID = "ReplicateNewBackupsToVault"
INCOMPLETE_UPLOAD_DAYS = 1


def encryption_with(key_arn) -> s3.BucketEncryption:
    # Bucket Keys cut KMS requests (and their cost) by orders of magnitude for many small objects.
    return s3.BucketEncryption(ServerSideEncryptionConfiguration=[s3.ServerSideEncryptionRule(
        BucketKeyEnabled=True,
        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="aws:kms",
                                                                       KMSMasterKeyID=key_arn),
    )])


def block_public_access() -> s3.PublicAccessBlockConfiguration:
    return s3.PublicAccessBlockConfiguration(BlockPublicAcls=True, BlockPublicPolicy=True,
                                             IgnorePublicAcls=True, RestrictPublicBuckets=True)


def owner_enforced() -> s3.OwnershipControls:
    return s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")])


def versioned() -> s3.VersioningConfiguration:
    return s3.VersioningConfiguration(Status="Enabled")


def events_to_eventbridge() -> s3.NotificationConfiguration:
    """Object events on the account's default event bus: nothing is sent anywhere unless a rule asks
    for it (and AWS service events cost nothing there). Control Tower's CT.S3.PR.4 wants every
    bucket to notify somewhere."""
    return s3.NotificationConfiguration(EventBridgeConfiguration=s3.EventBridgeConfiguration(EventBridgeEnabled=True))


def logging_to(log_bucket, prefix: str) -> s3.LoggingConfiguration:
    return s3.LoggingConfiguration(DestinationBucketName=Ref(log_bucket), LogFilePrefix=prefix)


def private_bucket(title: str, env: Environment, *, key, log_bucket, log_prefix: str, rules: list,
                   locked_for_retention: bool = False, lock: dict | None = None, **extra) -> s3.Bucket:
    """A retained bucket holding data: SSE-KMS with our key and bucket keys, no public access,
    owner-enforced, versioned, access-logged, with its lifecycle rules. Object Lock is enabled on
    every one; `locked_for_retention` (the backups and their replica) also locks each new version
    for the retention period in the environment's mode; `lock` gives the configuration instead
    (the vault's)."""
    return retain(s3.Bucket(
        title,
        BucketEncryption=encryption_with(GetAtt(key, "Arn")),
        PublicAccessBlockConfiguration=block_public_access(),
        OwnershipControls=owner_enforced(),
        VersioningConfiguration=versioned(),
        LoggingConfiguration=logging_to(log_bucket, log_prefix),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=rules),
        NotificationConfiguration=events_to_eventbridge(),
        **(lock if lock is not None else object_lock(env, default_retention=locked_for_retention)),
        Tags=tags(env),
        **extra,
    ))


def locked_by_default(mode: str, days: int) -> dict:
    """Object Lock with every new version locked `days` in `mode` (GOVERNANCE or COMPLIANCE)."""
    return {
        "ObjectLockEnabled": True,
        "ObjectLockConfiguration": s3.ObjectLockConfiguration(
            ObjectLockEnabled="Enabled",
            Rule=s3.ObjectLockRule(DefaultRetention=s3.DefaultRetention(Mode=mode.upper(), Days=days)),
        ),
    }


def object_lock(env: Environment, *, default_retention: bool) -> dict:
    """Object Lock on every bucket holding data (Control Tower's CT.S3.PR.9); a default retention of
    the retention period only on the buckets of backups (`default_retention`) and only when the
    environment asks for a mode. Without one, nothing is locked until someone locks an object:
    the client reports and the audit logs keep the deletes and overwrites they had; enabling it
    on an existing versioned bucket is an in-place update, and cannot be undone."""
    if env.object_lock_mode == "none" or not default_retention:
        return {"ObjectLockEnabled": True}
    return locked_by_default(env.object_lock_mode, env.retention_days)


def content_transition_day(env: Environment) -> int | None:
    """Day content moves to Standard-IA, or None when it would pay an early-deletion charge.

    Content is deleted only by the garbage collector, never before the last manifest naming it
    expires: at least `retention_days` after it was stored. Moving it at day 30 leaves it in IA
    for retention - 30 days before the earliest delete, which must cover IA's 30-day minimum.
    """
    day = contract.IA_MINIMUM_STORAGE_DAYS
    if env.retention_days - day >= contract.IA_MINIMUM_STORAGE_DAYS:
        return day
    return None


def content_transition_rules(env: Environment) -> list[s3.LifecycleRule]:
    """Content above IA's minimum billable size to Standard-IA (none when it would pay early deletion)."""
    day = content_transition_day(env)
    if day is None:
        return []
    return [s3.LifecycleRule(
        Id="LongLivedContentToInfrequentAccess", Status="Enabled", Prefix=contract.CONTENT_PREFIX,
        ObjectSizeGreaterThan=str(contract.IA_MINIMUM_BILLABLE_BYTES),
        Transitions=[s3.LifecycleRuleTransition(StorageClass="STANDARD_IA", TransitionInDays=day)],
    )]


def backup_lifecycle_rules(env: Environment, noncurrent_days: int) -> list[s3.LifecycleRule]:
    """No rule expires current content or manifests: only the garbage collector knows what a kept
    snapshot still references. Lifecycle cleans up what the collector leaves behind."""
    rules = [
        s3.LifecycleRule(
            Id="CleanUpDeletedVersionsAndUploads", Status="Enabled", Prefix="",
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=noncurrent_days),
            ExpiredObjectDeleteMarker=True,
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS),
        ),
    ]
    return rules + content_transition_rules(env)


def add_access_log_bucket(t: Template, env: Environment, name: str = "AccessLogBucket") -> s3.Bucket:
    """Server access logs. SSE-S3: the one encryption AWS documents as dependable for log targets."""
    bucket = s3.Bucket(
        name,
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=block_public_access(),
        OwnershipControls=owner_enforced(),
        VersioningConfiguration=versioned(),
        NotificationConfiguration=events_to_eventbridge(),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[s3.LifecycleRule(
            Id="ExpireAccessLogs", Status="Enabled", ExpirationInDays=LOG_RETENTION_DAYS,
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=30),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS),
        )]),
        Tags=tags(env),
    )
    skip_checks(bucket, {"CKV_AWS_18": "this is the access-log target: its own access would be logged "
                                              "into itself, without end"})
    return t.add_resource(retain(bucket))


def add_access_log_policy(t: Template, log_bucket: s3.Bucket, logged_buckets: list) -> s3.BucketPolicy:
    return t.add_resource(skip_lint(s3.BucketPolicy(
        f"{log_bucket.title}Policy", Bucket=Ref(log_bucket),
        PolicyDocument=bucket_policies.access_log_bucket_policy(log_bucket, logged_buckets),
    ), TLS_STATEMENT_JOIN))


@dataclass(frozen=True)
class Source:
    """The client reports: a bucket this stack made (`bucket`), or one the environment names."""
    bucket: s3.Bucket | None
    arn: object
    name: object


def add_source(t: Template, env: Environment, key, log_bucket) -> Source:
    if env.source_bucket:
        return Source(None, Sub(f"arn:${{AWS::Partition}}:s3:::{env.source_bucket}"), env.source_bucket)
    bucket = add_source_bucket(t, env, key, log_bucket)
    return Source(bucket, GetAtt(bucket, "Arn"), Ref(bucket))


def add_source_bucket(t: Template, env: Environment, key, log_bucket) -> s3.Bucket:
    """The client reports' bucket, when the environment does not name an existing one."""
    bucket = t.add_resource(private_bucket(
        "SourceBucket", env, key=key, log_bucket=log_bucket, log_prefix="source/",
        rules=[s3.LifecycleRule(
            Id="AbortIncompleteUploads", Status="Enabled", Prefix="",
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS),
        )],
    ))
    t.add_resource(skip_lint(s3.BucketPolicy(
        "SourceBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=bucket_policies.encrypted_bucket_policy(bucket, GetAtt(key, "Arn"))), TLS_STATEMENT_JOIN))
    return bucket


def add_replication_role(t: Template, env: Environment) -> iam.Role:
    """The role S3 assumes to replicate. Its permissions are a separate resource because they
    name the bucket, and the bucket names the role: one resource holding both would be a cycle."""
    return t.add_resource(iam.Role(
        "ReplicationRole",
        RoleName=names.replication_role_name(env),
        Description="S3 replication of the backup bucket to the replica region",
        AssumeRolePolicyDocument=role_policies.s3_trust_policy(),
        Tags=tags(env),
    ))


def add_replication_policy(t: Template, env: Environment, *, role: iam.Role, bucket: s3.Bucket, key,
                           replica_bucket_arn, replica_key_arn) -> iam.PolicyType:
    return t.add_resource(iam.PolicyType(
        "ReplicationRolePolicy",
        Roles=[Ref(role)],
        PolicyName="replicate-backups",
        PolicyDocument=elements.document(*role_policies.replication_statements(
            env, bucket, GetAtt(key, "Arn"), replica_bucket_arn, replica_key_arn)),
    ))


def replication_rule_id(env: Environment) -> str:
    return VAULT_REPLICATION_RULE_ID if env.has_vault else REPLICATION_RULE_ID


def replication_configuration(env: Environment, role: iam.Role, replica_bucket_arn,
                              replica_key_arn) -> s3.ReplicationConfiguration:
    """To the replica (same account, delete markers replicated: a delete stays recoverable there
    for the retention period), or to the vault (another account, which then owns the replicas
    through its bucket-owner-enforced setting; delete markers never sent, and refused there anyway)."""
    destination = dict(
        Bucket=replica_bucket_arn,
        EncryptionConfiguration=s3.EncryptionConfiguration(ReplicaKmsKeyID=replica_key_arn),
    )
    if env.has_vault:
        destination["Account"] = env.vault.account_id
    # Replication metrics (OperationsFailedReplication, ReplicationLatency...) feed the replication
    # alarms (stack/monitoring.py). RTC needs them too; both use the 15-minute threshold, the only one offered.
    destination["Metrics"] = s3.Metrics(Status="Enabled", EventThreshold=s3.ReplicationTimeValue(Minutes=15))
    if env.replication_time_control:
        destination["ReplicationTime"] = s3.ReplicationTime(Status="Enabled", Time=s3.ReplicationTimeValue(Minutes=15))
    return s3.ReplicationConfiguration(
        Role=GetAtt(role, "Arn"),
        Rules=[s3.ReplicationConfigurationRules(
            Id=replication_rule_id(env),
            Status="Enabled",
            Priority=1,
            Filter=s3.ReplicationRuleFilter(Prefix=""),
            DeleteMarkerReplication=s3.DeleteMarkerReplication(Status="Disabled" if env.has_vault else "Enabled"),
            SourceSelectionCriteria=s3.SourceSelectionCriteria(
                SseKmsEncryptedObjects=s3.SseKmsEncryptedObjects(Status="Enabled")),
            Destination=s3.ReplicationConfigurationRulesDestination(**destination),
        )],
    )


def add_replicated_backup_bucket(t: Template, env: Environment, *, key, log_bucket, replica_bucket_arn,
                                 replica_key_arn) -> s3.Bucket:
    """The backup bucket, replicating to the replica stack's bucket through its own role."""
    role = add_replication_role(t, env)
    bucket = add_backup_bucket(t, env, key=key, log_bucket=log_bucket, replication_role=role,
                               replica_bucket_arn=replica_bucket_arn, replica_key_arn=replica_key_arn)
    add_replication_policy(t, env, role=role, bucket=bucket, key=key, replica_bucket_arn=replica_bucket_arn,
                           replica_key_arn=replica_key_arn)
    return bucket


def add_backup_bucket(t: Template, env: Environment, *, key, log_bucket, replication_role, replica_bucket_arn,
                      replica_key_arn) -> s3.Bucket:
    bucket = t.add_resource(private_bucket(
        "BackupBucket", env, key=key, log_bucket=log_bucket, log_prefix="backup/",
        rules=backup_lifecycle_rules(env, noncurrent_days=env.deleted_version_days),
        ReplicationConfiguration=replication_configuration(env, replication_role, replica_bucket_arn,
                                                           replica_key_arn),
        locked_for_retention=True,
    ))
    return bucket


def add_backup_bucket_policy(t: Template, env: Environment, *, bucket: s3.Bucket, key, pruner_role,
                             source_bucket_name) -> s3.BucketPolicy:
    """Added after the functions: it names the pruner's role, the only one allowed to delete."""
    return t.add_resource(skip_lint(s3.BucketPolicy(
        "BackupBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=bucket_policies.backup_bucket_policy(
            env, bucket, GetAtt(key, "Arn"), GetAtt(pruner_role, "Arn"),
            writes=bucket_policies.write_rules(bucket, source_bucket_name))),
        TLS_STATEMENT_JOIN))


def add_replica_bucket(t: Template, env: Environment, key, log_bucket) -> s3.Bucket:
    """The disaster-recovery copy. Deletes replicate as delete markers; the versions they hide are
    kept for the retention period, so a deletion in the primary is recoverable here that long."""
    bucket = t.add_resource(private_bucket(
        "ReplicaBucket", env, key=key, log_bucket=log_bucket, log_prefix="replica/",
        rules=backup_lifecycle_rules(env, noncurrent_days=env.retention_days), locked_for_retention=True,
    ))
    t.add_resource(skip_lint(s3.BucketPolicy(
        "ReplicaBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=bucket_policies.backup_bucket_policy(env, bucket, GetAtt(key, "Arn"))), TLS_STATEMENT_JOIN))
    return bucket
