"""KMS: the customer-managed key that encrypts every store of backup data and metadata."""
from __future__ import annotations

from troposphere import GetAtt, Template, kms

from backup_cfn import common, policies
from backup_cfn.config import Environment


def add_backup_key(t: Template, env: Environment) -> kms.Key:
    key = t.add_resource(common.retain(kms.Key(
        "BackupKey",
        Description=f"backup-cfn {env.name}: backup data, tables, queues, topic, logs and trail",
        EnableKeyRotation=True,
        RotationPeriodInDays=365,
        PendingWindowInDays=30,
        KeyPolicy=policies.backup_key_policy(env),
        Tags=common.tags(env),
    )))
    t.add_resource(kms.Alias("BackupKeyAlias", AliasName=f"alias/{env.stack_name}", TargetKeyId=key.ref()))
    return key


def add_replica_key(t: Template, env: Environment) -> kms.Key:
    key = t.add_resource(common.retain(kms.Key(
        "ReplicaKey",
        Description=f"backup-cfn {env.name}: replica of the backups in {env.replica_region}",
        EnableKeyRotation=True,
        RotationPeriodInDays=365,
        PendingWindowInDays=30,
        KeyPolicy=policies.replica_key_policy(env),
        Tags=common.tags(env),
    )))
    t.add_resource(kms.Alias("ReplicaKeyAlias", AliasName=f"alias/{env.stack_name}-replica",
                             TargetKeyId=key.ref()))
    return key


def key_arn(key: kms.Key) -> GetAtt:
    return GetAtt(key, "Arn")
