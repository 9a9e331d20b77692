"""Small pieces every template module uses: tags, retention of stateful resources, ARN strings."""
from __future__ import annotations

from troposphere import AWSObject, Sub, Tags

from backup_cfn.config import Environment


def tags(env: Environment, **extra: str) -> Tags:
    """A fresh Tags object per resource: troposphere's Tags.__add__ mutates its operand."""
    return Tags(**{**env.tag_dict, "BackupCfnEnvironment": env.name, **extra})


def retain(resource: AWSObject) -> AWSObject:
    """Stateful resources outlive a stack deletion or a replacement: data is never collateral.
    Except when the stack's first creation fails: then they hold no data yet, and keeping them
    (a named log group above all) would make the next attempt fail on "already exists"."""
    resource.DeletionPolicy = "RetainExceptOnCreate"
    resource.UpdateReplacePolicy = "Retain"
    return resource


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


def replication_role_name(env: Environment) -> str:
    # IAM is global: the region keeps two deployments of one stack name apart.
    return f"{env.stack_name}-replication-{env.region}"


def skip_checks(resource: AWSObject, reasons: dict[str, str]) -> AWSObject:
    """Record, in the resource itself, each checkov check that does not apply and why; `make lint`
    prints the list. A skip without a reason is not accepted."""
    if not reasons or not all(reasons.values()):
        raise ValueError(f"{resource.title}: every skipped check needs a reason")
    metadata = dict(getattr(resource, "Metadata", {}) or {})
    skips = list(metadata.get("checkov", {}).get("skip", []))
    skips += [{"id": check, "comment": reason} for check, reason in sorted(reasons.items())]
    metadata["checkov"] = {"skip": skips}
    resource.Metadata = metadata
    return resource
