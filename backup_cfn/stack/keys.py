"""KMS: the customer-managed key that encrypts every store of backup data and metadata."""
from __future__ import annotations

from troposphere import GetAtt, Template, kms

from backup_cfn.config import Environment
from backup_cfn.stack.policies import keys as key_policies
from backup_cfn.stack.resource_options import retain, tags


def add_rotating_key(t: Template, env: Environment, title: str, *, description: str, policy,
                     alias: str) -> kms.Key:
    """A customer-managed key that rotates yearly, outlives the stack, and has an alias."""
    key = t.add_resource(retain(kms.Key(
        title,
        Description=description,
        EnableKeyRotation=True,
        RotationPeriodInDays=365,
        PendingWindowInDays=30,
        KeyPolicy=policy,
        Tags=tags(env),
    )))
    t.add_resource(kms.Alias(f"{title}Alias", AliasName=alias, TargetKeyId=key.ref()))
    return key


def add_backup_key(t: Template, env: Environment) -> kms.Key:
    return add_rotating_key(
        t, env, "BackupKey", policy=key_policies.backup_key_policy(env), alias=f"alias/{env.stack_name}",
        description=f"backup-cfn {env.name}: backup data, tables, queues, topic, logs and trail")


def add_replica_key(t: Template, env: Environment) -> kms.Key:
    return add_rotating_key(
        t, env, "ReplicaKey", policy=key_policies.replica_key_policy(env), alias=f"alias/{env.stack_name}-replica",
        description=f"backup-cfn {env.name}: replica of the backups in {env.replica_region}")


def key_arn(key: kms.Key) -> GetAtt:
    return GetAtt(key, "Arn")
