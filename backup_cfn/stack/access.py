"""Operator access: a restore role separate from the roles that take backups, able to read
snapshots and content and nothing else."""
from __future__ import annotations

from troposphere import Template, iam

from backup_cfn.config import Environment
from backup_cfn.stack.policies import elements, roles as role_policies
from backup_cfn.stack.resource_options import tags

RESTORE_SESSION_SECONDS = 3600


def add_restore_role(t: Template, env: Environment, *, backup_bucket, key, runs_table) -> iam.Role:
    """Assumable by principals of this account whose own policies allow sts:AssumeRole on it."""
    return t.add_resource(iam.Role(
        "RestoreRole",
        Description=f"backup-cfn {env.name}: read backups to restore them (cannot write or delete)",
        AssumeRolePolicyDocument=role_policies.account_trust_policy(),
        MaxSessionDuration=RESTORE_SESSION_SECONDS,
        Policies=[iam.Policy(PolicyName="restore", PolicyDocument=elements.document(
            *role_policies.restore_statements(backup_bucket, runs_table, key)))],
        Tags=tags(env),
    ))
