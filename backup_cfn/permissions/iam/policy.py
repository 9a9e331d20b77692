"""Parse IAM policy documents into immutable, pre-validated statements.

The input is the JSON form of a policy after CloudFormation intrinsics have
been resolved (see :mod:`iameval.cfn`).  Parsing is strict on purpose: a
leftover ``{"Ref": ...}``, an unknown element, a bad Effect or an unknown
condition operator is something AWS would reject when the stack deploys, so
the conformance test should hear about it rather than silently evaluate a
half-understood policy.

Single values and lists are both accepted wherever IAM accepts them (Action,
Resource, Principal values, condition values, the Statement itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .conditions import ConditionBlock, PolicyError, parse_condition_block
from .matching import Pattern, cached_pattern

__all__ = [
    "PolicyError",
    "Effect",
    "PrincipalSpec",
    "Statement",
    "Policy",
    "parse_policy",
    "account_of_principal_value",
]

#: The only policy-language version with policy variables.
VERSION_2012 = "2012-10-17"
_KNOWN_VERSIONS = {VERSION_2012, "2008-10-17"}
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


class Effect(str, Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class PrincipalSpec:
    """A ``Principal`` or ``NotPrincipal`` value.

    ``"*"`` and ``{"AWS": "*"}`` are equivalent (IAM User Guide, "All
    principals") and set ``everyone``.  ``aws`` keeps the values as written:
    12-digit account IDs, ``arn:...:iam::ACCOUNT:root``, role / user /
    assumed-role / federated-user ARNs.
    """

    everyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()

    @property
    def accounts(self) -> frozenset[str]:
        """Account IDs named either as bare IDs or as ``:root`` ARNs."""
        out = set()
        for v in self.aws:
            acct = account_of_principal_value(v)
            if acct is not None:
                out.add(acct)
        return frozenset(out)

    @property
    def arns(self) -> frozenset[str]:
        """Principal ARNs other than account roots."""
        return frozenset(v for v in self.aws if v != "*" and account_of_principal_value(v) is None)


def account_of_principal_value(value: str) -> str | None:
    """The account if ``value`` names an account (``123456789012`` or ``arn:P:iam::123456789012:root``).

    The IAM User Guide: "The account ARN and the shortened account ID behave
    the same way. Both delegate permissions to the account."
    """
    if len(value) == 12 and value.isdigit():
        return value
    parts = value.split(":")
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam" and parts[5] == "root" and parts[4].isdigit():
        return parts[4]
    return None


@dataclass(frozen=True)
class Statement:
    """One statement; exactly one of each Action/NotAction pair is set, etc."""

    index: int
    sid: str | None
    effect: Effect
    principal: PrincipalSpec | None
    not_principal: PrincipalSpec | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    condition: ConditionBlock
    variables: bool = field(default=True, repr=False)

    @property
    def label(self) -> str:
        """The Sid, or the statement's position when it has none."""
        return self.sid if self.sid else f"#{self.index}"

    @property
    def has_principal(self) -> bool:
        return self.principal is not None or self.not_principal is not None

    def action_patterns(self) -> tuple[Pattern, ...]:
        # Actions never take policy variables; matched case-insensitively.
        values = self.actions if self.actions is not None else self.not_actions or ()
        return tuple(cached_pattern(a, variables=False) for a in values)

    def resource_patterns(self) -> tuple[Pattern, ...]:
        values = self.resources if self.resources is not None else self.not_resources or ()
        return tuple(cached_pattern(r, variables=self.variables) for r in values)


@dataclass(frozen=True)
class Policy:
    """A parsed policy; ``name`` is what explanations print (e.g. ``WorkerFunctionRole/worker``)."""

    name: str
    version: str | None
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Policy variables are only substituted under Version 2012-10-17."""
        return self.version == VERSION_2012

    def statement(self, sid: str) -> Statement:
        """The statement with this Sid (handy in tests)."""
        for s in self.statements:
            if s.sid == sid:
                return s
        raise KeyError(sid)


def _strings(value: Any, where: str, element: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(f"{where}: {element} is empty")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise PolicyError(f"{where}: {element} value {item!r} is not a string (unresolved intrinsic?)")
        out.append(item)
    return tuple(out)


def _parse_principal(value: Any, where: str, element: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(everyone=True)
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f'{where}: {element} must be "*" or an object, got {value!r}')
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()
    everyone = False
    for kind, vals in value.items():
        strings = _strings(vals, where, f"{element}.{kind}")
        if kind == "AWS":
            if "*" in strings:
                everyone = True
            aws = strings
        elif kind == "Service":
            service = strings
        elif kind == "Federated":
            federated = strings
        elif kind == "CanonicalUser":
            canonical = strings
        else:
            raise PolicyError(f"{where}: unknown principal type {kind!r}")
    return PrincipalSpec(everyone, aws, service, federated, canonical)


def _parse_statement(raw: Any, index: int, policy_name: str, variables: bool) -> Statement:
    where = f"{policy_name} statement #{index}"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: not an object: {raw!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}: Sid {sid!r} is not a string")
    if sid:
        where = f"{policy_name} statement {sid}"
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown element(s) {sorted(unknown)}")
    effect_raw = raw.get("Effect")
    try:
        effect = Effect(effect_raw)
    except ValueError:
        raise PolicyError(f"{where}: Effect must be Allow or Deny, got {effect_raw!r}") from None

    def pair(a: str, b: str, required: bool) -> tuple[Any, Any]:
        if a in raw and b in raw:
            raise PolicyError(f"{where}: both {a} and {b}")
        if required and a not in raw and b not in raw:
            raise PolicyError(f"{where}: needs {a} or {b}")
        return raw.get(a), raw.get(b)

    principal_raw, not_principal_raw = pair("Principal", "NotPrincipal", False)
    action_raw, not_action_raw = pair("Action", "NotAction", True)
    resource_raw, not_resource_raw = pair("Resource", "NotResource", False)

    def opt_strings(value: Any, element: str) -> tuple[str, ...] | None:
        return None if value is None else _strings(value, where, element)

    actions = opt_strings(action_raw, "Action")
    not_actions = opt_strings(not_action_raw, "NotAction")
    for a in actions or not_actions or ():
        if a != "*" and ":" not in a:
            raise PolicyError(f"{where}: action {a!r} is not of the form service:Action")

    return Statement(
        index=index,
        sid=sid or None,
        effect=effect,
        principal=None if principal_raw is None else _parse_principal(principal_raw, where, "Principal"),
        not_principal=None if not_principal_raw is None else _parse_principal(not_principal_raw, where, "NotPrincipal"),
        actions=actions,
        not_actions=not_actions,
        resources=opt_strings(resource_raw, "Resource"),
        not_resources=opt_strings(not_resource_raw, "NotResource"),
        condition=parse_condition_block(raw.get("Condition"), variables=variables, where=where),
        variables=variables,
    )


def parse_policy(document: Mapping[str, Any] | str, name: str = "policy") -> Policy:
    """Parse a policy document (a dict, or its JSON text).

    ``name`` is carried into every decision that cites this policy, so pick
    something a reader recognises (a logical ID, ``Role/PolicyName``...).
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{name}: not JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise PolicyError(f"{name}: a policy document must be an object")
    unknown = set(document) - {"Version", "Statement", "Id"}
    if unknown:
        raise PolicyError(f"{name}: unknown top-level element(s) {sorted(unknown)}")
    version = document.get("Version")
    if version is not None and version not in _KNOWN_VERSIONS:
        raise PolicyError(f"{name}: unknown Version {version!r}")
    raw_statements = document.get("Statement")
    if raw_statements is None:
        raise PolicyError(f"{name}: no Statement")
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, Sequence) or isinstance(raw_statements, str):
        raise PolicyError(f"{name}: Statement must be an object or a list")
    variables = version == VERSION_2012
    statements = tuple(_parse_statement(s, i, name, variables) for i, s in enumerate(raw_statements))
    policy_id = document.get("Id")
    return Policy(
        name=name, version=version, statements=statements, id=policy_id if isinstance(policy_id, str) else None
    )
