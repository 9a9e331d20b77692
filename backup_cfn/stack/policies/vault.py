"""The vault's policies (docs/vault.md): its key, its bucket, and its own roles.

The production account appears in exactly two statements, both for its replication role and both
limited to writing new replicas: the bucket's `ProductionReplicationWritesReplicas` and the key's
`ProductionReplicationEncryptsReplicas`. Everything that could delete, shorten a lock or change a
protection is either denied to every principal here or belongs to the vault account alone.
"""
from __future__ import annotations

from awacs import (
    awslambda as lambda_actions,
    cloudformation as cfn_actions,
    dynamodb as ddb,
    kms as kms_actions,
    s3 as s3_actions,
)
from awacs.aws import (
    Allow,
    ArnEquals,
    ArnLike,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    Null,
    StringEquals,
    StringNotEquals,
)
from troposphere import GetAtt, Sub

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.policies.buckets import deny_insecure_transport
from backup_cfn.stack.policies.elements import (
    ENCRYPT_DECRYPT,
    account_root,
    all_of,
    document,
    objects_in,
    service,
    this_account,
    via,
)
from backup_cfn.stack.policies.keys import (deny_grants_not_for_aws_resources, key_root_statement,
                                            logs_encrypt_log_groups)
from backup_cfn.stack.policies.roles import bucket_key_context

# What replication needs to write a replica and its tags; ReplicateDelete is never granted.
REPLICA_WRITES = [s3_actions.ReplicateObject, s3_actions.ReplicateTags]
VERSIONED_READS = [s3_actions.GetObject, s3_actions.GetObjectVersion]


def replicated_objects(bucket_arn) -> list:
    """The vault's prefixes that replication may write (contract.REPLICATED_PREFIXES)."""
    return [objects_in(bucket_arn, prefix) for prefix in contract.REPLICATED_PREFIXES]


def production_replication(env: Environment):
    """The production account as principal, narrowed to its replication role by aws:PrincipalArn:
    a policy naming the role itself would be refused while the role does not exist yet."""
    return account_root(env.account_id), ArnEquals("aws:PrincipalArn", names.replication_role_arn(env))


def vault_bucket_arn(env: Environment) -> Sub:
    """The vault bucket's ARN from its fixed name: the key policy names it without a reference
    (the bucket names the key, so a reference back would be a cycle)."""
    return Sub(f"arn:${{AWS::Partition}}:s3:::{env.vault.bucket_name}")


def vault_key_policy(env: Environment) -> PolicyDocument:
    principal, is_replication_role = production_replication(env)
    statements = [
        key_root_statement(),
        # Decrypt too: with a bucket key on the vault bucket, S3 decrypts the bucket key to encrypt each replica.
        Statement(
            Sid="ProductionReplicationEncryptsReplicas", Effect=Allow, Principal=principal,
            Action=[kms_actions.Encrypt, kms_actions.GenerateDataKey, kms_actions.Decrypt], Resource=["*"],
            Condition=all_of(is_replication_role, via("s3"), bucket_key_context(vault_bucket_arn(env))),
        ),
        Statement(
            Sid="CloudWatchAlarmsPublishToEncryptedTopic", Effect=Allow,
            Principal=service("cloudwatch.amazonaws.com"), Action=ENCRYPT_DECRYPT, Resource=["*"],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", names.arn("cloudwatch", "alarm:*"))),
        ),
        logs_encrypt_log_groups([names.arn("logs", f"log-group:{names.vault_log_group_name(env, '*')}")]),
        deny_grants_not_for_aws_resources(),
    ]
    if env.vault.recovery_account_ids:
        statements.append(Statement(
            Sid="RecoveryAccountsDecryptThroughS3", Effect=Allow,
            Principal=account_root(*env.vault.recovery_account_ids),
            Action=[kms_actions.Decrypt, kms_actions.DescribeKey], Resource=["*"], Condition=all_of(via("s3"))))
    return document(*statements)


def vault_bucket_policy(env: Environment, bucket, key) -> PolicyDocument:
    """Replication writes new replicas under the replicated prefixes and nothing else; nobody
    writes, deletes or bypasses a lock directly, whatever their own policies say. Lifecycle, which
    no bucket policy governs, is the only thing that removes a version (once no lock holds it)."""
    bucket_arn = GetAtt(bucket, "Arn")
    objects = objects_in(bucket_arn)
    principal, is_replication_role = production_replication(env)
    key_id = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    statements = [
        deny_insecure_transport(bucket),
        Statement(Sid="ProductionReplicationWritesReplicas", Effect=Allow, Principal=principal,
                  Action=REPLICA_WRITES, Resource=replicated_objects(bucket_arn),
                  Condition=all_of(is_replication_role)),
        Statement(Sid="ProductionReplicationChecksVersioning", Effect=Allow, Principal=principal,
                  Action=[s3_actions.GetBucketVersioning], Resource=[bucket_arn],
                  Condition=all_of(is_replication_role)),
        Statement(Sid="DenyReplicatedDeletes", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.ReplicateDelete], Resource=[objects]),
        Statement(Sid="DenyReplicasUnderOtherKeys", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.ReplicateObject], Resource=[objects],
                  Condition=all_of(Null(key_id, "false"), StringNotEquals(key_id, GetAtt(key, "Arn")))),
        Statement(Sid="NobodyWritesOrDeletesDirectly", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.PutObject, s3_actions.DeleteObject, s3_actions.DeleteObjectVersion,
                          s3_actions.BypassGovernanceRetention],
                  Resource=[objects]),
    ]
    if env.vault.recovery_account_ids:
        statements.append(Statement(
            Sid="RecoveryAccountsRead", Effect=Allow, Principal=account_root(*env.vault.recovery_account_ids),
            Action=[s3_actions.ListBucket, s3_actions.ListBucketVersions, *VERSIONED_READS,
                    s3_actions.GetObjectRetention],
            Resource=[bucket_arn, objects],
            Condition=all_of(StringEquals("aws:PrincipalAccount", list(env.vault.recovery_account_ids)))))
    return document(*statements)


def _vault_reads(bucket, key_arn, *, retention: bool) -> list[Statement]:
    bucket_arn = GetAtt(bucket, "Arn")
    reads = VERSIONED_READS + ([s3_actions.GetObjectRetention] if retention else [])
    return [
        Statement(Sid="ListVaultVersions", Effect=Allow, Action=[s3_actions.ListBucket, s3_actions.ListBucketVersions],
                  Resource=[bucket_arn]),
        Statement(Sid="ReadRecoveryPointsAndContent", Effect=Allow, Action=reads,
                  Resource=replicated_objects(bucket_arn)),
        Statement(Sid="DecryptThroughS3", Effect=Allow, Action=[kms_actions.Decrypt], Resource=[key_arn],
                  Condition=all_of(via("s3"))),
    ]


def lock_statements(bucket, table, key_arn) -> list[Statement]:
    """The lock extender: read what arrived, extend compliance locks, record how far each point is
    locked. It can shorten nothing (S3 refuses; it never asks) and delete nothing."""
    return [
        *_vault_reads(bucket, key_arn, retention=True),
        Statement(Sid="ExtendLocks", Effect=Allow, Action=[s3_actions.PutObjectRetention],
                  Resource=replicated_objects(GetAtt(bucket, "Arn"))),
        Statement(Sid="RecordLocks", Effect=Allow,
                  Action=[ddb.GetItem, ddb.BatchGetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(table, "Arn")]),
        Statement(Sid="UseVaultKeyForTheTable", Effect=Allow, Action=ENCRYPT_DECRYPT, Resource=[key_arn],
                  Condition=all_of(via("dynamodb", "lambda"))),
    ]


def drill_statements(bucket, key_arn) -> list[Statement]:
    """The vault's restore drill: reads only (and each version's lock, to report short ones)."""
    return [*_vault_reads(bucket, key_arn, retention=True),
            Statement(Sid="DecryptEnvironment", Effect=Allow, Action=[kms_actions.Decrypt], Resource=[key_arn],
                      Condition=all_of(via("lambda")))]


def restore_statements(env: Environment, bucket, key_arn, drill_function) -> list[Statement]:
    """Restoring with the production account gone: the vault's outputs, its versions, its key
    through S3, and its drill. Restores go to a folder or to a bucket the operator's own identity
    may write; this role writes nothing."""
    stack = Sub(f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/"
                f"{env.vault.stack_name}/*")
    return [
        Statement(Sid="ReadVaultStackOutputs", Effect=Allow, Action=[cfn_actions.DescribeStacks], Resource=[stack]),
        *_vault_reads(bucket, key_arn, retention=True),
        Statement(Sid="StartVaultDrills", Effect=Allow, Action=[lambda_actions.InvokeFunction],
                  Resource=[GetAtt(drill_function, "Arn")]),
    ]


def restore_trust_policy(env: Environment) -> PolicyDocument:
    """The vault account and the recovery accounts may assume it (their own policies must allow it)."""
    from awacs import sts

    return document(Statement(Effect=Allow, Principal=account_root("${AWS::AccountId}",
                                                                   *env.vault.recovery_account_ids),
                              Action=[sts.AssumeRole]))
