"""Parameters of the primary template: the values that change per build (the handler package) or
per deployment (the replica stack's outputs), so a committed template changes only with the design."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Parameter, Ref, Template

from backup_cfn import contract

_S3_ARN = r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_KMS_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$"


@dataclass(frozen=True)
class PrimaryParameters:
    code_bucket: Parameter
    code_key: Parameter
    replica_bucket_arn: Parameter
    replica_key_arn: Parameter
    # The condition under which the tables refuse deletion (production only; None elsewhere).
    tables_protected: str | None = None

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


# An availability zone ID: use1-az1, euw1-az3, apne1-az4, usgw1-az2.
_ZONE_ID = r"^[a-z]{2,5}[0-9]+-az[0-9]+$"


def add_subnet_zones(t: Template) -> list[Parameter]:
    """The zone of each isolated subnet, by zone ID. Zones by position (Fn::Select over Fn::GetAZs)
    land, in some accounts, in a zone without Lambda or without an endpoint service the stack needs
    (use1-az3 in us-east-1), and the creation fails there; deploy chooses zones that host them all."""
    return [t.add_parameter(Parameter(
        name, Type="String", AllowedPattern=_ZONE_ID,
        Description=f"availability zone ID of isolated subnet {index + 1}, chosen by deploy among the zones hosting "
                    "every interface endpoint service of the stack and Lambda"))
        for index, name in enumerate(contract.PARAM_SUBNET_ZONE_IDS)]


TABLES_PROTECTED = "TablesAreProtectedFromDeletion"


def add_table_protection(t: Template) -> str:
    """DynamoDB deletion protection as a parameter, so that it is on only once the stack exists: with
    it on, a first creation that fails cannot delete its tables, CloudFormation's rollback ends
    ROLLBACK_FAILED and the stack can be neither updated nor simply created again. `deploy` passes
    "false" to the first creation and "true" from then on; the default is "true", so a deploy that
    does not know about it (the console, another tool) protects."""
    t.add_parameter(Parameter(
        contract.PARAM_TABLE_DELETION_PROTECTION, Type="String", AllowedValues=["true", "false"], Default="true",
        Description="DynamoDB deletion protection of the tables: false only while the stack is first created"))
    t.add_condition(TABLES_PROTECTED, Equals(Ref(contract.PARAM_TABLE_DELETION_PROTECTION), "true"))
    return TABLES_PROTECTED


def add_primary_parameters(t: Template, *, vault: bool = False, production: bool = False) -> PrimaryParameters:
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
        tables_protected=add_table_protection(t) if production else None,
    )
