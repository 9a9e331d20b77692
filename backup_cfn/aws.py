"""The one seam between real AWS and the local emulator.

Everything outside `backup_cfn/local/` that needs a boto3 client, the engine's clients, a polling
interval or a fact about where an environment runs asks here. Nothing else imports moto or asks
whether an environment is the emulator: on `--env local` this module hands out clients with the
emulator's endpoint, and the same calls reach AWS everywhere else. It imports nothing above it: what
runs a backup or a drill is chosen where the commands are wired (cli.py), from the facts given here.
"""
from __future__ import annotations

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


def vault_client(env: Environment, service: str, region: str | None = None, *, call_seconds: int | None = None):
    """A client with the vault account's credentials, as the environment chooses them
    (docs/vault.md): its profile, a role in the vault account assumed from the current credentials,
    or else the current credentials themselves (a recovery account's, or the security team's).
    `call_seconds`: one call that may take that long (a synchronous invoke), never sent twice."""
    session = _vault_session(env)
    region = region or env.vault.region
    config = CLIENT_CONFIG if call_seconds is None else CLIENT_CONFIG.merge(Config(
        read_timeout=call_seconds + 60, retries={"total_max_attempts": 1, "mode": "standard"}))
    if env.is_local:
        return session.client(service, region_name=region, endpoint_url=env.endpoint_url, config=config)
    return session.client(service, region_name=region, config=config)


_vault_sessions: dict[tuple, boto3.Session] = {}


def _vault_session(env: Environment) -> boto3.Session:
    vault = env.vault
    cache_key = (env.name, vault.profile, vault.role_arn)
    # The emulator forgets assumed credentials when it is reset (between tests), and unknown
    # credentials land in its default account: there the role is assumed for every client.
    if cache_key in _vault_sessions and not env.is_local:
        return _vault_sessions[cache_key]
    if vault.profile and not env.is_local:
        session = boto3.Session(profile_name=vault.profile)
    elif vault.role_arn:
        credentials = client(env, "sts").assume_role(RoleArn=vault.role_arn,
                                                     RoleSessionName=f"backup-cfn-{env.name}-vault")["Credentials"]
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"])
    elif env.is_local:
        session = boto3.Session(**LOCAL_CREDENTIALS)
    else:
        session = boto3.Session()
    _vault_sessions[cache_key] = session
    return session


def vault_engine_clients(env: Environment) -> Clients:
    """The vault's readers and lock extender on an operator's machine (or, locally, in-process)."""
    return Clients(s3=vault_client(env, "s3"), dynamodb=vault_client(env, "dynamodb"))


def engine_clients(env: Environment) -> Clients:
    """The engine's clients for an operator's machine (on the emulator, DynamoDB applies each
    request atomically, as AWS does: backup_cfn.local.patches.dynamodb.patch_atomic_requests)."""
    return Clients(s3=client(env, "s3"), dynamodb=client(env, "dynamodb"), sqs=client(env, "sqs"), sns=client(env, "sns"))


def poll_seconds(env: Environment) -> float:
    """How long to wait between two reads of a stack (or a run) in progress."""
    return LOCAL_POLL_SECONDS if env.is_local else AWS_POLL_SECONDS


def deployed_functions_run(env: Environment) -> bool:
    """Whether invoking the stack's Lambda functions runs them: yes on AWS; the emulator stores
    functions but cannot run them, so there the commands run the same handlers in-process (the
    choice is made where the commands are wired: cli.py)."""
    return not env.is_local
