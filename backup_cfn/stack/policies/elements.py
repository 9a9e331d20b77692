"""The pieces every policy here is built from: documents, principals, conditions, object ARNs.

Conditions are combined with `all_of`, never with awacs's `Condition([...])`, which silently keeps
only the last of two elements with the same operator.
"""
from __future__ import annotations

from awacs import kms as kms_actions
from awacs.aws import AWSPrincipal, Condition, ConditionElement, PolicyDocument, Principal, Statement, StringEquals
from troposphere import AccountId, Sub

VERSION = "2012-10-17"
# Using a key to protect data: what every service that encrypts for a principal asks for.
ENCRYPT_DECRYPT = [kms_actions.Decrypt, kms_actions.GenerateDataKey]


def all_of(*elements: ConditionElement) -> Condition:
    """A Condition requiring every element. awacs's own Condition([...]) keeps only the last of two
    elements with the same operator; here same-operator elements are merged, and a key given
    twice is an error rather than a silent overwrite."""
    merged: dict[str, dict] = {}
    for element in elements:
        keys = merged.setdefault(element.condition, {})
        for key, value in element.get_dict().items():
            if key in keys:
                raise ValueError(f"condition key {key} given twice under {element.condition}")
            keys[key] = value
    return Condition([type(e)(merged.pop(e.condition)) for e in elements if e.condition in merged])


def document(*statements: Statement) -> PolicyDocument:
    return PolicyDocument(Version=VERSION, Statement=list(statements))


def service(name: str) -> Principal:
    return Principal("Service", name)


def account_root(*account_ids: str) -> AWSPrincipal:
    """Accounts as a principal; default: this stack's account."""
    ids = account_ids or ("${AWS::AccountId}",)
    roots = [Sub(f"arn:${{AWS::Partition}}:iam::{account_id}:root") for account_id in ids]
    return AWSPrincipal(roots if len(roots) > 1 else roots[0])


def this_account():
    return StringEquals("aws:SourceAccount", AccountId)


def via(*services: str, region: str = "${AWS::Region}") -> StringEquals:
    """kms:ViaService for the given services in `region` (default: this stack's region)."""
    names = [f"{name}.{region}.amazonaws.com" for name in services]
    return StringEquals("kms:ViaService", [Sub(n) if "${" in n else n for n in names])


def s3_reading_a_copy_source_in(region: str) -> StringEquals:
    """kms:ViaService for decrypting the source object of a copy requested in this stack's Region from
    a bucket in `region`: AWS does not document which Region's S3 then asks KMS, so both are admitted
    (docs/permissions.md; the conformance test evaluates both requests)."""
    if region == "${AWS::Region}":
        return via("s3")
    return StringEquals("kms:ViaService", [f"s3.{region}.amazonaws.com", Sub("s3.${AWS::Region}.amazonaws.com")])


def objects_in(bucket_arn, prefix: str = "") -> Sub:
    """The ARN of every object under `prefix` of a bucket, from the bucket's ARN (an object)."""
    return Sub(f"${{BucketArn}}/{prefix}*", BucketArn=bucket_arn)



ROOT_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
