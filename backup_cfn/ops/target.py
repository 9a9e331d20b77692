"""An environment as the operator commands see it: the engine's clients and the settings read from
the deployed stacks' outputs, so a stack renamed in the environments file is followed everywhere."""
from __future__ import annotations

from dataclasses import dataclass

from backup_cfn import aws
from backup_cfn.config import Environment
from backup_cfn.deploy.outputs import stack_outputs
from backup_cfn.engine.errors import MissingSetting
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.settings import Clients, Settings, settings_from_outputs
from backup_cfn.errors import UserError


@dataclass
class DeployedEnvironment:
    """An environment's engine: its clients and the settings read from its stacks."""
    env: Environment
    clients: Clients
    settings: Settings
    outputs: dict


def retention_of(env: Environment) -> RetentionPolicy:
    return RetentionPolicy(env.retention_days, env.keep_weekly, env.keep_monthly, env.keep_yearly)


def connect(env: Environment, outputs: dict | None = None) -> DeployedEnvironment:
    outputs = outputs if outputs is not None else stack_outputs(env)
    try:
        settings = settings_from_outputs(outputs, source_bucket=env.source_bucket, retention=retention_of(env),
                                         priority_users=env.priority_users, stack_name=env.stack_name,
                                         drill_users=env.drill_users, retry_base_seconds=env.retry_base_seconds,
                                         retry_max_seconds=env.retry_max_seconds, burst_changes=env.burst_changes)
    except MissingSetting as exc:
        raise UserError(f"stack {env.stack_name} has no output {exc.name}: deploy it again with "
                        f"`backup-cfn deploy --env {env.name}`") from None
    return DeployedEnvironment(env, aws.engine_clients(env), settings, outputs)
