"""Parameters of the primary template: the values that change per build (the handler package) or
per deployment (the replica stack's outputs), so a committed template changes only with the design."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import Parameter, Ref, Template

from backup_cfn import contract

_S3_ARN = r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_KMS_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$"


@dataclass(frozen=True)
class PrimaryParameters:
    code_bucket: Parameter
    code_key: Parameter
    replica_bucket_arn: Parameter
    replica_key_arn: Parameter

    @property
    def replica_bucket(self) -> Ref:
        return Ref(self.replica_bucket_arn)

    @property
    def replica_key(self) -> Ref:
        return Ref(self.replica_key_arn)


def add_code_parameters(t: Template) -> tuple[Parameter, Parameter]:
    """The handler package's location: the primary's functions and the vault's."""
    return (t.add_parameter(Parameter(
                contract.PARAM_CODE_BUCKET, Type="String", AllowedPattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                Description="bucket holding the handler package (backup-cfn package)")),
            t.add_parameter(Parameter(
                contract.PARAM_CODE_KEY, Type="String", AllowedPattern=r"^[\w./-]+\.zip$",
                Description="key of the handler package, named by its SHA-256")))


def add_primary_parameters(t: Template, *, vault: bool = False) -> PrimaryParameters:
    """With a vault, the disaster-recovery bucket and key are the vault's (the environments file
    names the bucket; the vault key's ARN comes from the vault stack or the security team)."""
    where = "the vault's (VaultBucketArn, VaultKeyArn)" if vault else "the replica stack's outputs"
    code_bucket, code_key = add_code_parameters(t)
    return PrimaryParameters(
        code_bucket=code_bucket, code_key=code_key,
        replica_bucket_arn=t.add_parameter(Parameter(
            contract.PARAM_REPLICA_BUCKET_ARN, Type="String", AllowedPattern=_S3_ARN,
            Description=f"disaster-recovery bucket ARN, from {where}")),
        replica_key_arn=t.add_parameter(Parameter(
            contract.PARAM_REPLICA_KEY_ARN, Type="String", AllowedPattern=_KMS_ARN,
            Description=f"disaster-recovery KMS key ARN, from {where}")),
    )
