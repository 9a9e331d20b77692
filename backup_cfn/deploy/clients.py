"""The clients deploying an environment needs: CloudFormation and S3 in both regions, and STS;
and the read-only clients the review's forecast makes as it needs them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from backup_cfn import aws
from backup_cfn.config import Environment


@dataclass(frozen=True)
class DeployClients:
    cloudformation: object
    replica_cloudformation: object
    s3: object
    replica_s3: object
    sts: object

    @classmethod
    def for_vault(cls, env: Environment) -> DeployClients:
        """The vault account's clients, in the vault's region (the security team's credentials)."""
        make = lambda service: aws.vault_client(env, service)  # noqa: E731
        return cls(cloudformation=make("cloudformation"), replica_cloudformation=None, s3=make("s3"), replica_s3=None,
                   sts=make("sts"))

    @classmethod
    def for_environment(cls, env: Environment) -> DeployClients:
        return cls(cloudformation=aws.client(env, "cloudformation"),
                   replica_cloudformation=aws.client(env, "cloudformation", env.replica_region),
                   s3=aws.client(env, "s3"), replica_s3=aws.client(env, "s3", env.replica_region),
                   sts=aws.client(env, "sts"))


@dataclass
class Readers:
    """One region's clients by service name, each made on first use: the forecast reads IAM, Lambda,
    Logs, KMS... only when the change set gives it something to check there."""

    make: Callable[[str], object]
    _made: dict = field(default_factory=dict)

    def __call__(self, service: str):
        if service not in self._made:
            self._made[service] = self.make(service)
        return self._made[service]
