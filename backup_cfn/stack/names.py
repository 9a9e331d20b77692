"""Physical names the stack fixes up front, and ARNs built from them.

Named resources let log groups, key-policy conditions and the replica stack refer to a resource
before (or without) a reference to it: a key policy naming the trail that uses the key, a replica
key policy naming the primary's replication role, which lives in another stack.
"""
from __future__ import annotations

from troposphere import Sub

from backup_cfn.config import Environment


def arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> Sub:
    """An ARN in this stack's partition, region and account, for resources that cannot be Ref'd
    without a dependency cycle (a key policy naming the trail that uses the key)."""
    region_part = "${AWS::Region}" if region else ""
    account_part = "${AWS::AccountId}" if account else ""
    return Sub(f"arn:${{AWS::Partition}}:{service}:{region_part}:{account_part}:{resource}")


def function_name(env: Environment, role: str) -> str:
    """Fixed function names, so log groups and key-policy conditions can name them up front."""
    return f"{env.stack_name}-{role}"


def log_group_name(env: Environment, role: str) -> str:
    return f"/aws/lambda/{function_name(env, role)}"


def trail_name(env: Environment) -> str:
    return f"{env.stack_name}-audit"


def trail_arn(env: Environment) -> Sub:
    """The trail's ARN, as CloudTrail puts it in aws:SourceArn and in its KMS encryption context."""
    return arn("cloudtrail", f"trail/{trail_name(env)}")


def trail_log_group_name(env: Environment) -> str:
    return f"/aws/cloudtrail/{trail_name(env)}"


def replication_role_name(env: Environment) -> str:
    # IAM is global: the region keeps two deployments of one stack name apart.
    return f"{env.stack_name}-replication-{env.region}"


def replication_role_arn(env: Environment) -> Sub:
    """The production replication role's ARN, as the vault's policies name it (another account:
    the ARN is spelled out, never referenced)."""
    return Sub(f"arn:${{AWS::Partition}}:iam::{env.account_id}:role/{replication_role_name(env)}")


def vault_function_name(env: Environment, role: str) -> str:
    return f"{env.vault.stack_name}-{role}"


def vault_log_group_name(env: Environment, role: str) -> str:
    return f"/aws/lambda/{vault_function_name(env, role)}"
