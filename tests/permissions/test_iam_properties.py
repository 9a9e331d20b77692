"""Hypothesis properties of the evaluator that must hold for any policies and requests."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_cfn.permissions.iam import (
    Outcome,
    Principal,
    Request,
    evaluate,
    evaluate_condition,
    parse_policy,
)

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/app"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/k1"

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:*", "s3:Get*", "kms:Decrypt", "kms:*", "*", "sqs:SendMessage"]
RESOURCES = [
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/k",
    "arn:aws:s3:::c/*",
    KEY,
    "arn:aws:sqs:us-east-1:111122223333:q",
]
CONDITIONS: list[Any] = [
    None,
    {"StringEquals": {"aws:PrincipalTag/team": "x"}},
    {"Bool": {"aws:SecureTransport": "false"}},
    {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}},
    {"ForAnyValue:StringLike": {"aws:TagKeys": ["a*"]}},
    {"ArnNotEquals": {"aws:PrincipalArn": ROLE}},
]
PRINCIPALS: list[Any] = [
    "*",
    {"AWS": ROLE},
    {"AWS": ACCT},
    {"AWS": f"arn:aws:iam::{ACCT}:root"},
    {"AWS": "arn:aws:iam::999999999999:root"},
    {"Service": "cloudtrail.amazonaws.com"},
]


@st.composite
def statements(draw: st.DrawFn, *, resource_policy: bool, effect: str | None = None) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    stmt["NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action"] = draw(
        st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2)
    )
    stmt["NotResource" if draw(st.booleans()) and draw(st.booleans()) else "Resource"] = draw(
        st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2)
    )
    cond = draw(st.sampled_from(CONDITIONS))
    if cond:
        stmt["Condition"] = cond
    if resource_policy:
        principal = draw(st.sampled_from(PRINCIPALS))
        if stmt["Effect"] == "Deny" and principal != "*" and draw(st.booleans()) and draw(st.booleans()):
            stmt["NotPrincipal"] = principal
        else:
            stmt["Principal"] = principal
    return stmt


def _doc(stmts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": stmts}


requests = st.builds(
    lambda principal, action, resource, ctx: Request(principal, action, resource, ctx),
    st.sampled_from(
        [
            Principal.assumed_role(ROLE, "s"),
            Principal.assumed_role("arn:aws:iam::999999999999:role/ext", "s"),
            Principal.service("cloudtrail.amazonaws.com"),
            Principal.account_root(ACCT),
        ]
    ),
    st.sampled_from(["s3:GetObject", "s3:PutObject", "kms:Decrypt", "sqs:SendMessage", "s3:ListAllMyBuckets"]),
    st.sampled_from(["arn:aws:s3:::b/k", "arn:aws:s3:::c/k", KEY, "arn:aws:sqs:us-east-1:111122223333:q", "*"]),
    st.fixed_dictionaries(
        {},
        optional={
            "aws:PrincipalTag/team": st.sampled_from(["x", "y"]),
            "aws:SecureTransport": st.booleans(),
            "s3:x-amz-server-side-encryption": st.sampled_from(["aws:kms", "AES256"]),
            "aws:TagKeys": st.lists(st.sampled_from(["a", "ab", "b"]), max_size=2),
        },
    ),
)


def _decide(req: Request, identity: list[dict[str, Any]], resource: list[dict[str, Any]]) -> Any:
    ident = [parse_policy(_doc(identity), "identity")] if identity and req.principal.has_identity_policies else []
    res = [parse_policy(_doc(resource), "resource")] if resource else []
    return evaluate(req, ident, res, resource_account=ACCT)


def _with_one_more(data: st.DataObject, identity: list, resource: list, effect: str) -> tuple[list, list]:
    """The policies with one more statement of `effect`, in the identity policy or the resource policy."""
    if data.draw(st.booleans()):
        return identity + [data.draw(statements(resource_policy=False, effect=effect))], resource
    return identity, resource + [data.draw(statements(resource_policy=True, effect=effect))]


@settings(max_examples=300, deadline=None)
@given(
    requests,
    st.lists(statements(resource_policy=False), max_size=3),
    st.lists(statements(resource_policy=True), max_size=3),
    st.data(),
)
def test_adding_a_deny_never_turns_deny_into_allow(
    req: Request, identity: list, resource: list, data: st.DataObject
) -> None:
    before = _decide(req, identity, resource)
    after = _decide(req, *_with_one_more(data, identity, resource, "Deny"))
    if after.allowed:
        assert before.allowed
    if before.outcome is Outcome.EXPLICIT_DENY:
        assert after.outcome is Outcome.EXPLICIT_DENY


@settings(max_examples=300, deadline=None)
@given(
    requests,
    st.lists(statements(resource_policy=False), max_size=3),
    st.lists(statements(resource_policy=True), max_size=3),
    st.data(),
)
def test_adding_an_allow_never_turns_allow_into_deny(
    req: Request, identity: list, resource: list, data: st.DataObject
) -> None:
    before = _decide(req, identity, resource)
    after = _decide(req, *_with_one_more(data, identity, resource, "Allow"))
    if before.allowed:
        assert after.allowed
    assert (after.outcome is Outcome.EXPLICIT_DENY) is (before.outcome is Outcome.EXPLICIT_DENY)


@settings(max_examples=200, deadline=None)
@given(
    requests,
    st.lists(statements(resource_policy=False), max_size=3),
    st.lists(statements(resource_policy=True), max_size=3),
)
def test_explicit_deny_is_final(req: Request, identity: list, resource: list) -> None:
    """An applicable Deny statement decides, whatever else allows the request."""
    d = _decide(req, identity, resource)
    assert (d.outcome is Outcome.EXPLICIT_DENY) is bool(d.denies)
    if d.allowed and req.principal.kind.value != "root":
        assert d.deciding, "an allow must cite the statements that granted it"
        assert all(s.effect.value == "Allow" for s in d.deciding)


# --------------------------------------------------------------------------
# Operator duality

PAIRS = [
    ("StringEquals", "StringNotEquals", ["a", "B", "a*"]),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", ["a", "B"]),
    ("StringLike", "StringNotLike", ["a*", "?b", "*"]),
    ("NumericEquals", "NumericNotEquals", ["1", "2.5"]),
    ("DateEquals", "DateNotEquals", ["2020-01-01T00:00:00Z", "1577836800"]),
    ("IpAddress", "NotIpAddress", ["10.0.0.0/8", "192.168.1.1"]),
    ("ArnLike", "ArnNotLike", ["arn:aws:s3:::a*", "arn:aws:sns:*:1:t"]),
    ("ArnEquals", "ArnNotEquals", ["arn:aws:s3:::a", "*"]),
]
CONTEXT_VALUES = [
    "a",
    "A",
    "ab",
    "b",
    "1",
    "1.0",
    "2.5",
    "10.1.2.3",
    "192.168.1.1",
    "1577836800",
    "2020-01-01T00:00:00Z",
    "arn:aws:s3:::ab",
    "arn:aws:s3:::a",
    "arn:aws:sns:us-east-1:1:t",
    "junk",
]
context_values = st.one_of(
    st.none(), st.lists(st.sampled_from(CONTEXT_VALUES), max_size=3), st.sampled_from(CONTEXT_VALUES)
)


@settings(max_examples=400)
@given(st.sampled_from(PAIRS), st.data(), context_values)
def test_negated_operator_is_negation_without_set_operator(pair: tuple, data: st.DataObject, value: Any) -> None:
    pos, neg, choices = pair
    policy_values = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2))
    ctx = {} if value is None else {"k": value}
    assert evaluate_condition(neg, "k", policy_values, ctx) is (not evaluate_condition(pos, "k", policy_values, ctx))


@settings(max_examples=400)
@given(st.sampled_from(PAIRS), st.data(), st.lists(st.sampled_from(CONTEXT_VALUES), min_size=1, max_size=3))
def test_set_operators_de_morgan(pair: tuple, data: st.DataObject, values: list[str]) -> None:
    """With a non-empty request set: ForAllValues:Not-op == not ForAnyValue:op, and vice versa."""
    pos, neg, choices = pair
    policy_values = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2))
    ctx = {"k": values}
    assert evaluate_condition(f"ForAllValues:{neg}", "k", policy_values, ctx) is (
        not evaluate_condition(f"ForAnyValue:{pos}", "k", policy_values, ctx)
    )
    assert evaluate_condition(f"ForAnyValue:{neg}", "k", policy_values, ctx) is (
        not evaluate_condition(f"ForAllValues:{pos}", "k", policy_values, ctx)
    )


@settings(max_examples=200)
@given(st.sampled_from(PAIRS), st.booleans(), st.data(), st.sampled_from([None, []]))
def test_set_operators_on_missing_or_empty(pair: tuple, negated: bool, data: st.DataObject, value: Any) -> None:
    """ForAllValues is true and ForAnyValue false for a missing key or an empty set, for every operator."""
    pos, neg, choices = pair
    op = neg if negated else pos
    policy_values = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2))
    ctx = {} if value is None else {"k": value}
    assert evaluate_condition(f"ForAllValues:{op}", "k", policy_values, ctx) is True
    assert evaluate_condition(f"ForAnyValue:{op}", "k", policy_values, ctx) is False
    assert evaluate_condition(f"ForAnyValue:{op}IfExists", "k", policy_values, ctx) is True
