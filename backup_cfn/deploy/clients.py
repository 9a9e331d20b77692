"""The clients deploying an environment needs: CloudFormation and S3 in both regions, and STS."""
from __future__ import annotations

from dataclasses import dataclass

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
    def for_environment(cls, env: Environment) -> DeployClients:
        return cls(cloudformation=aws.client(env, "cloudformation"),
                   replica_cloudformation=aws.client(env, "cloudformation", env.replica_region),
                   s3=aws.client(env, "s3"), replica_s3=aws.client(env, "s3", env.replica_region),
                   sts=aws.client(env, "sts"))
