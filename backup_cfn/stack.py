"""What is deployed: the outputs of an environment's two stacks, read back from CloudFormation.

The engine and the CLI read bucket, table and queue names from here rather than guessing them,
so a stack renamed in the environments file is followed everywhere.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from backup_cfn import aws
from backup_cfn.config import Environment
from backup_cfn.errors import UserError


def outputs_of(cloudformation, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs as {OutputKey: OutputValue}; None when the stack does not exist."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if _is_missing_stack(exc):
            return None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def stack_outputs(env: Environment, *, primary=None, replica=None) -> dict[str, str]:
    """Merged outputs of the primary stack (env.region) and the replica stack (env.replica_region).

    Primary outputs win on a name clash. Raises UserError naming the deploy command when the
    primary stack is missing; a missing replica stack contributes nothing.
    """
    primary = primary or aws.client(env, "cloudformation")
    replica = replica or aws.client(env, "cloudformation", env.replica_region)
    replica_outputs = outputs_of(replica, env.replica_stack_name) or {}
    primary_outputs = outputs_of(primary, env.stack_name)
    if primary_outputs is None:
        raise UserError(
            f"stack {env.stack_name} does not exist in {env.region}: deploy it with "
            f"`backup-cfn deploy --env {env.name}`"
        )
    return {**replica_outputs, **primary_outputs}


def _is_missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")
