"""What CloudFormation's intrinsics resolve to: errors, AWS::NoValue, and the deploy-time Ref and
GetAtt values of each resource type (default_attributes)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Callable, Protocol


class Resolver(Protocol):
    """What default_attributes needs of the template resolver (cfn_resolver.Resolver): resolving a
    property, the pseudo parameters, and the physical name CloudFormation would generate."""

    pseudo: Any
    namer: Callable[[str, str], str]

    def resolve(self, value: Any, path: str) -> Any: ...


class CfnError(ValueError):
    """A template construct this resolver cannot handle."""


class UnresolvedError(CfnError):
    """A reference that has no value (unknown logical ID, attribute, parameter...)."""


class _NoValue:
    """``AWS::NoValue``: the enclosing property or list item disappears."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


def scalar(value: Any, path: str) -> str:
    """A value CloudFormation turns into a string (Sub, Join, names): booleans as it writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise CfnError(f"{path}: expected a string, got {value!r}")


def comparable(v: Any) -> Any:
    """A value as Fn::Equals compares it: scalars by their string form."""
    return scalar(v, "") if isinstance(v, (bool, int, float)) else v


def _name(props: Mapping[str, Any], key: str, logical_id: str, rtype: str, resolver: Resolver) -> str:
    if key in props:
        value = resolver.resolve(props[key], f"Resources.{logical_id}.Properties.{key}")
        if value is not NO_VALUE:
            return scalar(value, f"Resources.{logical_id}.Properties.{key}")
    return resolver.namer(logical_id, rtype)


def _prop(props: Mapping[str, Any], key: str, logical_id: str, resolver: Resolver) -> Any:
    if key not in props:
        return None
    value = resolver.resolve(props[key], f"Resources.{logical_id}.Properties.{key}")
    return None if value is NO_VALUE else value


def default_attributes(logical_id: str, resource: Mapping[str, Any], resolver: Resolver) -> dict[str, Any]:
    """Deploy-time ``Ref``/``GetAtt`` values CloudFormation would give this resource.

    Names come from the resource's name property when set, else from the
    resolver's namer; ARN formats follow each service's documentation.
    Unknown types get only a ``Ref`` (the generated name), so a ``GetAtt`` on
    them fails loudly instead of inventing a value.
    """
    rtype = resource.get("Type", "")
    props = resource.get("Properties", {}) or {}
    p = resolver.pseudo
    part, region, acct = p.partition, p.region, p.account_id

    def name(key: str) -> str:
        return _name(props, key, logical_id, rtype, resolver)

    if rtype == "AWS::S3::Bucket":
        n = name("BucketName")
        return {
            "Ref": n,
            "Arn": f"arn:{part}:s3:::{n}",
            "DomainName": f"{n}.s3.{p.suffix}",
            "RegionalDomainName": f"{n}.s3.{region}.{p.suffix}",
            "DualStackDomainName": f"{n}.s3.dualstack.{region}.{p.suffix}",
        }
    if rtype == "AWS::DynamoDB::Table":
        n = name("TableName")
        arn = f"arn:{part}:dynamodb:{region}:{acct}:table/{n}"
        return {"Ref": n, "Arn": arn, "StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"}
    if rtype == "AWS::SQS::Queue":
        n = name("QueueName")
        if _prop(props, "FifoQueue", logical_id, resolver) in (True, "true") and not n.endswith(".fifo"):
            n += ".fifo"
        url = f"https://sqs.{region}.{p.suffix}/{acct}/{n}"
        return {"Ref": url, "QueueUrl": url, "QueueName": n, "Arn": f"arn:{part}:sqs:{region}:{acct}:{n}"}
    if rtype == "AWS::SNS::Topic":
        n = name("TopicName")
        if _prop(props, "FifoTopic", logical_id, resolver) in (True, "true") and not n.endswith(".fifo"):
            n += ".fifo"
        arn = f"arn:{part}:sns:{region}:{acct}:{n}"
        return {"Ref": arn, "TopicArn": arn, "TopicName": n}
    if rtype == "AWS::KMS::Key":
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{acct}/{region}/{p.stack_name}/{logical_id}"))
        return {"Ref": key_id, "KeyId": key_id, "Arn": f"arn:{part}:kms:{region}:{acct}:key/{key_id}"}
    if rtype == "AWS::KMS::Alias":
        n = name("AliasName")
        return {"Ref": n}
    if rtype == "AWS::IAM::Role":
        n = name("RoleName")
        path = _prop(props, "Path", logical_id, resolver) or "/"
        role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, f"{acct}/{n}").hex[:17].upper()
        return {"Ref": n, "Arn": f"arn:{part}:iam::{acct}:role{path}{n}", "RoleId": role_id}
    if rtype == "AWS::IAM::User":
        n = name("UserName")
        path = _prop(props, "Path", logical_id, resolver) or "/"
        return {"Ref": n, "Arn": f"arn:{part}:iam::{acct}:user{path}{n}"}
    if rtype == "AWS::IAM::ManagedPolicy":
        n = name("ManagedPolicyName")
        path = _prop(props, "Path", logical_id, resolver) or "/"
        arn = f"arn:{part}:iam::{acct}:policy{path}{n}"
        return {"Ref": arn, "PolicyArn": arn}
    if rtype == "AWS::IAM::Policy":
        return {"Ref": name("PolicyName")}
    if rtype == "AWS::Lambda::Function":
        n = name("FunctionName")
        return {"Ref": n, "Arn": f"arn:{part}:lambda:{region}:{acct}:function:{n}"}
    if rtype == "AWS::Logs::LogGroup":
        n = name("LogGroupName")
        return {"Ref": n, "Arn": f"arn:{part}:logs:{region}:{acct}:log-group:{n}:*"}
    if rtype == "AWS::CloudTrail::Trail":
        n = name("TrailName")
        return {"Ref": n, "Arn": f"arn:{part}:cloudtrail:{region}:{acct}:trail/{n}"}
    if rtype == "AWS::Events::Rule":
        n = name("Name")
        bus = _prop(props, "EventBusName", logical_id, resolver)
        if bus and bus != "default":
            bus_name = bus.rsplit("/", 1)[-1] if str(bus).startswith("arn:") else bus
            arn = f"arn:{part}:events:{region}:{acct}:rule/{bus_name}/{n}"
        else:
            arn = f"arn:{part}:events:{region}:{acct}:rule/{n}"
        return {"Ref": n, "Arn": arn}
    if rtype == "AWS::CloudWatch::Alarm":
        n = name("AlarmName")
        return {"Ref": n, "Arn": f"arn:{part}:cloudwatch:{region}:{acct}:alarm:{n}"}
    if rtype == "AWS::CloudWatch::Dashboard":
        return {"Ref": name("DashboardName")}
    return {"Ref": resolver.namer(logical_id, rtype)}
