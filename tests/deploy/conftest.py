"""Fixtures of the deploy tests: clients answered by botocore's Stubber with AWS's response shapes."""
from __future__ import annotations

import dataclasses

import boto3
import pytest
from botocore.stub import Stubber

from cloudformation_stubs import REGION


def stubbed(service: str):
    """A client of `service` whose `.stubber` answers; every queued answer must be used."""
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture
def local_env(vault_env):
    """The deploy tests are about the stacks' deployment itself, in the one-account layout (the
    replica stack, then the primary wired to its outputs); the vault's deploy, as the security team
    runs it, is tested with `vault_env` (test_vault_deploy.py)."""
    return dataclasses.replace(vault_env, vault=None)


@pytest.fixture
def cfn():
    yield from stubbed("cloudformation")


@pytest.fixture
def ec2():
    yield from stubbed("ec2")
