"""What is deployed: the outputs of an environment's two stacks, read back from CloudFormation.

The engine and the CLI read bucket, table and queue names from here rather than guessing them,
so a stack renamed in the environments file is followed everywhere.
"""
from __future__ import annotations

from backup_cfn import aws
from backup_cfn.config import Environment
from backup_cfn.deploy import stack_events
from backup_cfn.errors import UserError


def outputs(stack: dict) -> dict[str, str]:
    """A DescribeStacks stack's outputs as {OutputKey: OutputValue}."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def outputs_of(cloudformation, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs; None when the stack does not exist."""
    stack = stack_events.describe_stack(cloudformation, stack_name)
    return None if stack is None else outputs(stack)


def stack_outputs(env: Environment, *, primary=None, replica=None) -> dict[str, str]:
    """Merged outputs of the primary stack (env.region) and the replica stack (env.replica_region).

    Primary outputs win on a name clash. Raises UserError naming the deploy command when the
    primary stack is missing; a missing replica stack contributes nothing.
    """
    primary = primary or aws.client(env, "cloudformation")
    # With a vault, the disaster-recovery stack is in another account: the production side reads
    # nothing of it (the vault's readers take its outputs with the vault's credentials).
    replica_outputs = {} if env.has_vault else outputs_of(
        replica or aws.client(env, "cloudformation", env.replica_region), env.replica_stack_name) or {}
    primary_outputs = outputs_of(primary, env.stack_name)
    if primary_outputs is None:
        raise UserError(
            f"stack {env.stack_name} does not exist in {env.region}: deploy it with "
            f"`backup-cfn deploy --env {env.name}`"
        )
    return {**replica_outputs, **primary_outputs}
