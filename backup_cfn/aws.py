"""The one seam between real AWS and the local emulator.

Everything outside `backup_cfn/local/` that needs a boto3 client, the engine's clients, a polling
interval or a way to run a backup asks here. Nothing else imports moto or asks whether an
environment is the emulator: on `--env local` this module hands out what `backup_cfn.local`
provides (clients with the emulator's endpoint, the handlers run in-process), and the same calls
reach AWS everywhere else.
"""
from __future__ import annotations

from typing import Callable

import boto3
from botocore.config import Config

from backup_cfn.config import Environment
from backup_cfn.engine.settings import CLIENT_CONFIG, Clients

# The emulator accepts any credentials; fixed ones keep a developer's real profile out of it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# CloudFormation throttles DescribeStackEvents; a few seconds apart is polite and still feels live.
AWS_POLL_SECONDS = 3.0
LOCAL_POLL_SECONDS = 0.2


def client(env: Environment, service: str, region: str | None = None):
    """A client for `service` in `region` (default: the environment's primary region)."""
    return _client(env, service, region, CLIENT_CONFIG)


def long_call_client(env: Environment, service: str, seconds: int):
    """A client for one call that may take `seconds` (a synchronous Lambda invoke of a function with
    that timeout): it waits that long for the answer and never sends the call twice, since a retry
    would run the function again."""
    return _client(env, service, None, CLIENT_CONFIG.merge(Config(
        read_timeout=seconds + 60, retries={"total_max_attempts": 1, "mode": "standard"})))


def _client(env: Environment, service: str, region: str | None, config: Config):
    region = region or env.region
    if env.is_local:
        return boto3.client(service, region_name=region, endpoint_url=env.endpoint_url, config=config,
                            **LOCAL_CREDENTIALS)
    return boto3.client(service, region_name=region, config=config)


def engine_clients(env: Environment) -> Clients:
    """The engine's clients for an operator's machine (on the emulator, DynamoDB applies each
    request atomically, as AWS does: backup_cfn.local.patches.dynamodb.patch_atomic_requests)."""
    return Clients(s3=client(env, "s3"), dynamodb=client(env, "dynamodb"), sqs=client(env, "sqs"), sns=client(env, "sns"))


def poll_seconds(env: Environment) -> float:
    """How long to wait between two reads of a stack (or a run) in progress."""
    return LOCAL_POLL_SECONDS if env.is_local else AWS_POLL_SECONDS


def backup_runner(env: Environment) -> Callable:
    """How a backup is started and driven to its end: on AWS, the initiator is invoked and the
    deployed functions do the rest; on the emulator, which cannot run Lambda, the same handlers run
    in-process, fed from the job queue as the event source mapping would feed them."""
    if env.is_local:
        from backup_cfn.local.runner import run_in_process

        return run_in_process
    from backup_cfn.ops.run import run_on_aws

    return run_on_aws


def restore_runner(env: Environment) -> Callable:
    """How a restore run by the stack is driven to its end: on AWS, the deployed restore function
    takes the jobs and this process follows; on the emulator, the same handler runs in-process,
    fed from the restore queue as the event source mapping would feed it."""
    if env.is_local:
        from backup_cfn.local.runner import run_restore_in_process

        return run_restore_in_process
    from backup_cfn.ops.restore_service import follow_on_aws

    return follow_on_aws


def drill_runner(env: Environment) -> Callable:
    """How a restore drill is run now: on AWS, the deployed drill function is invoked (its role and
    network are part of what the drill proves); on the emulator, the same handler runs in-process."""
    if env.is_local:
        from backup_cfn.local.drill import drill_in_process

        return drill_in_process
    from backup_cfn.ops.drill import drill_on_aws

    return drill_on_aws
