"""Policy document parsing and validation."""

from __future__ import annotations

import json

import pytest

from backup_cfn.permissions.iam import Effect, PolicyError, PolicyStore, Principal, Request, parse_policy
from backup_cfn.permissions.iam.policy import account_of_principal_value


def test_single_statement_and_single_values() -> None:
    p = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        },
        "P",
    )
    s = p.statement("One")
    assert s.effect is Effect.ALLOW
    assert s.actions == ("s3:GetObject",) and s.resources == ("*",)
    assert p.variables


def test_json_text_input() -> None:
    doc = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "*"}]}
    )
    s = parse_policy(doc).statements[0]
    assert s.not_actions == ("iam:*",) and s.not_resources == ("*",) and s.label == "#0"


def test_principal_forms() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html

    "given an account ID of 123456789012, you can use either of the following
    methods": ``arn:aws:iam::123456789012:root`` or ``123456789012``; and
    ``"Principal": "*"`` is equivalent to ``{"AWS": "*"}``.
    """
    p = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": ["arn:aws:iam::123456789012:root", "999999999999", "arn:aws:iam::123456789012:role/r"],
                        "Service": "s3.amazonaws.com",
                        "CanonicalUser": "79a59df9",
                    },
                    "Action": "s3:*",
                    "Resource": "*",
                },
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
            ],
        }
    )
    spec = p.statements[0].principal
    assert spec is not None
    assert spec.accounts == {"123456789012", "999999999999"}
    assert spec.arns == {"arn:aws:iam::123456789012:role/r"}
    assert spec.service == ("s3.amazonaws.com",)
    assert p.statements[1].principal.everyone and p.statements[2].principal.everyone  # type: ignore[union-attr]
    assert account_of_principal_value("arn:aws-cn:iam::123456789012:root") == "123456789012"
    assert account_of_principal_value("arn:aws:iam::123456789012:user/root") is None


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"Statement": []}, None),
        ({"Version": "2012-10-18", "Statement": []}, "Version"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "s3:*", "Resource": "*"}]}, "Effect"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action or NotAction"),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:x", "Resource": "*"}],
            },
            "both",
        ),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resources": "*"}]},
            "unknown element",
        ),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]},
            "service:Action",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["B", "Arn"]}}],
            },
            "unresolved",
        ),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": []}]}, "empty"),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Aws": "*"}, "Action": "s3:*", "Resource": "*"}],
            },
            "principal type",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqual": {"k": "v"}}}
                ],
            },
            "operator",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": ["x"]}],
            },
            "Condition",
        ),
    ],
)
def test_validation(doc: dict, message: str | None) -> None:
    if message is None:
        assert parse_policy(doc).statements == ()
        return
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc, "Bad")


def test_policy_store_routes_policies() -> None:
    """PolicyStore picks identity policies by role (for sessions) and resource policies by ARN pattern."""
    store = PolicyStore()
    role = "arn:aws:iam::111122223333:role/app"
    store.add_identity_policy(
        role,
        parse_policy(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
            "app",
        ),
    )
    store.add_resource_policy(
        parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "NoC", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::c/*"}
                ],
            },
            "CPolicy",
        ),
        ["arn:aws:s3:::c", "arn:aws:s3:::c/*"],
        account="111122223333",
    )
    store.add_principal("App", Principal.assumed_role(role, name="App"))
    app = store.principal("App")
    assert store.evaluate(Request(app, "s3:GetObject", "arn:aws:s3:::b/k")).allowed
    d = store.evaluate(Request(app, "s3:GetObject", "arn:aws:s3:::c/k"))
    assert d.explain() == "App s3:GetObject on arn:aws:s3:::c/k: explicit deny by CPolicy statement NoC"
    other = Principal.assumed_role("arn:aws:iam::111122223333:role/other")
    assert not store.evaluate(Request(other, "s3:GetObject", "arn:aws:s3:::b/k")).allowed
    # Cross-account: the resource's registered account decides.
    store.add_resource_policy(
        parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "s3:GetObject", "Resource": "*"}
                ],
            },
            "XPolicy",
        ),
        ["arn:aws:s3:::x/*"],
        account="999999999999",
    )
    assert store.evaluate(Request(app, "s3:GetObject", "arn:aws:s3:::x/k")).allowed
    assert not store.evaluate(Request(other, "s3:GetObject", "arn:aws:s3:::x/k")).allowed


def test_decision_details_lists_near_misses_and_context() -> None:
    from backup_cfn.permissions.iam import evaluate

    p = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ViaS3",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
                }
            ],
        },
        "Worker/worker",
    )
    role = Principal.assumed_role("arn:aws:iam::111122223333:role/Worker", name="Worker")
    d = evaluate(Request(role, "kms:Decrypt", "arn:aws:s3:::not-a-key"), [p])
    text = d.details()
    assert (
        text.splitlines()[0] == "Worker kms:Decrypt on arn:aws:s3:::not-a-key: implicit deny (no statement allows it)"
    )
    assert (
        "Worker/worker statement ViaS3 (Allow) needs StringEquals kms:ViaService 's3.us-east-1.amazonaws.com'; request has '<absent>'"
        in text
    )
    assert "aws:PrincipalArn = 'arn:aws:iam::111122223333:role/Worker'" in text
    assert str(d) == d.explain()
