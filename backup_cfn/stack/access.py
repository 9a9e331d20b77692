"""Operator access: a role separate from the roles that take backups, for the operator commands
(restore, verify, runs, run, prune --dry-run: docs/permissions.md). It reads snapshots and content
in both regions and restores into the source bucket; it can change or delete no backup."""
from __future__ import annotations

from troposphere import GetAtt, Template, iam

from backup_cfn.config import Environment
from backup_cfn.stack.policies import elements, restores as restore_policies, roles as role_policies
from backup_cfn.stack.resource_options import tags

RESTORE_SESSION_SECONDS = 3600


def add_restore_role(t: Template, env: Environment, scope: role_policies.RestoreScope, *, restore_queue) -> iam.Role:
    """Assumable by principals of this account whose own policies allow sts:AssumeRole on it. It also
    starts restores the stack runs (records them, enqueues their jobs)."""
    return t.add_resource(iam.Role(
        "RestoreRole",
        Description=f"backup-cfn {env.name}: operator commands; reads and restores backups, cannot change or "
                    "delete them",
        AssumeRolePolicyDocument=role_policies.account_trust_policy(),
        MaxSessionDuration=RESTORE_SESSION_SECONDS,
        Policies=[iam.Policy(PolicyName="restore", PolicyDocument=elements.document(
            *role_policies.restore_statements(env, scope),
            *restore_policies.operator_restore_statements(scope.runs_table, restore_queue, GetAtt(scope.key, "Arn"))))],
        Tags=tags(env),
    ))
