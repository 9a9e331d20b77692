"""boto3 clients for an environment: real AWS, or the local emulator for `--env local`."""
from __future__ import annotations

import boto3
from botocore.config import Config

from backup_cfn.config import Environment

# Standard retry mode backs off on throttling (SlowDown, ProvisionedThroughputExceeded) itself.
CLIENT_CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)
# The emulator accepts any credentials; fixed ones keep a developer's real profile out of it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client(env: Environment, service: str, region: str | None = None):
    """A client for `service` in `region` (default: the environment's primary region)."""
    region = region or env.region
    if env.is_local:
        return boto3.client(
            service, region_name=region, endpoint_url=env.endpoint_url, config=CLIENT_CONFIG, **LOCAL_CREDENTIALS
        )
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)
