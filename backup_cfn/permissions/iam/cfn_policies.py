"""Every policy a template holds, resolved to plain IAM JSON, and a PolicyStore built from them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cfn_resolver import Pseudo, Resolver
from .cfn_values import UnresolvedError
from .evaluate import ResourceKind
from .policy import parse_policy
from .principals import Principal
from .store import PolicyStore




@dataclass(frozen=True)
class ExtractedPolicy:
    """A resolved policy document and what it is attached to.

    ``kind`` is ``identity`` (``attached_to`` = role logical IDs), ``trust``
    (the role), or a resource-policy kind -- ``bucket``, ``queue``, ``topic``,
    ``key``, ``lambda-permission`` -- with ``resources`` the ARN patterns it
    governs.
    """

    logical_id: str
    kind: str
    name: str
    document: dict[str, Any]
    attached_to: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


@dataclass
class Extraction:
    """Everything :func:`extract_policies` found, plus what it could not model."""

    policies: list[ExtractedPolicy] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # logical ID -> role ARN
    unmodelled: list[str] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[ExtractedPolicy]:
        return [p for p in self.policies if p.kind in kinds]


def _default_key_policy(partition: str, account: str) -> dict[str, Any]:
    """What KMS applies when CreateKey gets no policy (KMS Developer Guide, "Default key policy")."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _queue_arn(url: str, partition: str) -> str:
    m = re.fullmatch(r"https?://sqs\.([a-z0-9-]+)\.[^/]+/(\d{12})/([^/]+)", url)
    if not m:
        raise UnresolvedError(f"not an SQS queue URL: {url!r}")
    return f"arn:{partition}:sqs:{m.group(1)}:{m.group(2)}:{m.group(3)}"


def extract_policies(resolver: Resolver) -> Extraction:
    """Resolve every policy in the resolver's template.

    Covers role inline policies, ``AWS::IAM::Policy``/``ManagedPolicy``
    attached to roles, trust policies, bucket / queue / topic policies, KMS key
    policies (the KMS default policy when ``KeyPolicy`` is absent) and
    ``AWS::Lambda::Permission``.  Managed policy ARNs from outside the
    template and policies attached to users/groups are listed in
    ``unmodelled``: the evaluator cannot see them, so a test relying on them
    should know.
    """
    out = Extraction()
    p = resolver.pseudo
    roles_by_name: dict[str, str] = {}
    managed_arns: dict[str, str] = {}
    for logical_id, res in resolver.resources.items():
        if not resolver.resource_exists(logical_id):
            continue
        rtype = res.get("Type")
        if rtype == "AWS::IAM::Role":
            attrs = resolver.attributes(logical_id)
            out.roles[logical_id] = attrs["Arn"]
            roles_by_name[attrs["Ref"]] = logical_id
        elif rtype == "AWS::IAM::ManagedPolicy":
            managed_arns[resolver.attributes(logical_id)["Ref"]] = logical_id

    def props_of(logical_id: str) -> Mapping[str, Any]:
        props: Mapping[str, Any] = resolver.resolve(
            resolver.resources[logical_id].get("Properties", {}), f"Resources.{logical_id}.Properties"
        )
        return props

    for logical_id, res in resolver.resources.items():
        if not resolver.resource_exists(logical_id):
            continue
        rtype = res.get("Type")
        if rtype == "AWS::IAM::Role":
            props = props_of(logical_id)
            role_arn = out.roles[logical_id]
            trust = props.get("AssumeRolePolicyDocument")
            if trust is not None:
                out.policies.append(
                    ExtractedPolicy(logical_id, "trust", f"{logical_id}/trust", trust, (logical_id,), (role_arn,))
                )
            for inline in props.get("Policies", []) or []:
                pname = inline.get("PolicyName", "inline")
                out.policies.append(
                    ExtractedPolicy(
                        logical_id, "identity", f"{logical_id}/{pname}", inline["PolicyDocument"], (logical_id,)
                    )
                )
            for arn in props.get("ManagedPolicyArns", []) or []:
                if arn not in managed_arns:
                    out.unmodelled.append(f"{logical_id}: managed policy {arn} is not in the template")
            if props.get("PermissionsBoundary"):
                out.unmodelled.append(
                    f"{logical_id}: permissions boundary {props['PermissionsBoundary']} is not evaluated"
                )
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            props = props_of(logical_id)
            targets = []
            for role_name in props.get("Roles", []) or []:
                if role_name not in roles_by_name:
                    out.unmodelled.append(f"{logical_id}: attached to role {role_name!r} outside the template")
                else:
                    targets.append(roles_by_name[role_name])
            if props.get("Users") or props.get("Groups"):
                out.unmodelled.append(f"{logical_id}: attachments to users/groups are not modelled")
            pname = props.get("PolicyName") or props.get("ManagedPolicyName") or logical_id
            out.policies.append(
                ExtractedPolicy(
                    logical_id, "identity", f"{logical_id}/{pname}", props["PolicyDocument"], tuple(targets)
                )
            )
        elif rtype == "AWS::S3::BucketPolicy":
            props = props_of(logical_id)
            bucket = props["Bucket"]
            arn = f"arn:{p.partition}:s3:::{bucket}"
            out.policies.append(
                ExtractedPolicy(logical_id, "bucket", logical_id, props["PolicyDocument"], resources=(arn, f"{arn}/*"))
            )
        elif rtype == "AWS::SQS::QueuePolicy":
            props = props_of(logical_id)
            arns = tuple(_queue_arn(u, p.partition) for u in _as_list(props["Queues"]))
            out.policies.append(
                ExtractedPolicy(logical_id, "queue", logical_id, props["PolicyDocument"], resources=arns)
            )
        elif rtype == "AWS::SNS::TopicPolicy":
            props = props_of(logical_id)
            out.policies.append(
                ExtractedPolicy(
                    logical_id, "topic", logical_id, props["PolicyDocument"], resources=tuple(_as_list(props["Topics"]))
                )
            )
        elif rtype == "AWS::KMS::Key":
            props = props_of(logical_id)
            doc = props.get("KeyPolicy") or _default_key_policy(p.partition, p.account_id)
            if isinstance(doc, str):
                doc = json.loads(doc)
            arn = resolver.attributes(logical_id)["Arn"]
            out.policies.append(ExtractedPolicy(logical_id, "key", logical_id, doc, resources=(arn,)))
        elif rtype == "AWS::Lambda::Permission":
            props = props_of(logical_id)
            out.policies.append(_lambda_permission(logical_id, props, p))
    return out


def _lambda_permission(logical_id: str, props: Mapping[str, Any], p: Pseudo) -> ExtractedPolicy:
    """The statement Lambda's AddPermission creates for an ``AWS::Lambda::Permission``."""
    function = props["FunctionName"]
    if not str(function).startswith("arn:"):
        function = f"arn:{p.partition}:lambda:{p.region}:{p.account_id}:function:{function}"
    principal = props["Principal"]
    if principal == "*":
        principal_el: Any = "*"
    elif str(principal).endswith(".amazonaws.com") or str(principal).endswith(".amazonaws.com.cn"):
        principal_el = {"Service": principal}
    else:
        principal_el = {"AWS": principal}
    statement: dict[str, Any] = {
        "Sid": logical_id,
        "Effect": "Allow",
        "Principal": principal_el,
        "Action": props["Action"],
        "Resource": function,
    }
    condition: dict[str, Any] = {}
    if "SourceArn" in props:
        condition["ArnLike"] = {"AWS:SourceArn": props["SourceArn"]}
    if "SourceAccount" in props:
        condition["StringEquals"] = {"AWS:SourceAccount": props["SourceAccount"]}
    if "PrincipalOrgID" in props:
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = props["PrincipalOrgID"]
    if condition:
        statement["Condition"] = condition
    doc = {"Version": "2012-10-17", "Statement": [statement]}
    # A function ARN also governs its qualified forms (versions, aliases).
    return ExtractedPolicy(logical_id, "lambda-permission", logical_id, doc, resources=(function, f"{function}:*"))


_KIND = {"key": ResourceKind.KMS_KEY, "trust": ResourceKind.ROLE_TRUST}


def build_policy_store(
    resolver: Resolver,
    *,
    session_name: str = "session",
    extraction: Extraction | None = None,
) -> PolicyStore:
    """A :class:`PolicyStore` with every policy of the template, principals named by logical ID.

    Each role is registered as an assumed-role session principal (how Lambda
    functions and services use roles) under its logical ID, so a test can do
    ``store.principal("WorkerFunctionRole")``.
    """
    ex = extraction or extract_policies(resolver)
    store = PolicyStore()
    acct = resolver.pseudo.account_id
    for logical_id, arn in ex.roles.items():
        store.add_principal(logical_id, Principal.assumed_role(arn, session_name, name=logical_id))
    for item in ex.policies:
        policy = parse_policy(item.document, item.name)
        if item.kind == "identity":
            for role_logical in item.attached_to:
                store.add_identity_policy(ex.roles[role_logical], policy)
        else:
            store.add_resource_policy(
                policy, item.resources, account=acct, kind=_KIND.get(item.kind, ResourceKind.GENERIC)
            )
    return store
