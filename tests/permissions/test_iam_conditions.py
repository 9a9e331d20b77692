"""Condition operators, IfExists, Null, set operators and policy variables.

Expected results come from the IAM User Guide pages cited in each docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backup_cfn.permissions.iam import (
    Context,
    PolicyError,
    Principal,
    Request,
    evaluate,
    evaluate_condition,
    parse_operator,
    parse_policy,
)
from backup_cfn.permissions.iam.conditions import parse_condition_block

OPERATORS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
SINGLE_VS_MULTI = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html"
MULTI_EXAMPLES = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html"
MULTI_VALUES = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html"
VARIABLES = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html"

ev = evaluate_condition


# --------------------------------------------------------------------------
# String


def test_string_equals_is_case_sensitive() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html

    "the following condition includes the StringEquals operator to ensure that
    only requests made by johndoe match. Users named JohnDoe are denied access."
    and StringEqualsIgnoreCase "to match users named johndoe or JohnDoe".
    """
    assert ev("StringEquals", "aws:username", "johndoe", {"aws:username": "johndoe"})
    assert not ev("StringEquals", "aws:username", "johndoe", {"aws:username": "JohnDoe"})
    assert ev("StringEqualsIgnoreCase", "aws:username", "johndoe", {"aws:username": "JohnDoe"})
    assert not ev("StringNotEqualsIgnoreCase", "aws:username", "johndoe", {"aws:username": "JOHNDOE"})
    assert ev("StringNotEqualsIgnoreCase", "aws:username", "johndoe", {"aws:username": "jane"})


def test_condition_key_names_are_case_insensitive() -> None:
    """Same page: "Condition key names are not case-sensitive. For example, including the
    aws:SourceIP condition key is equivalent to testing for AWS:SourceIp."."""
    assert ev("IpAddress", "aws:SourceIP", "203.0.113.0/24", {"AWS:SourceIp": "203.0.113.7"})
    assert ev("StringEquals", "AWS:PRINCIPALTAG/Team", "x", {"aws:PrincipalTag/team": "x"})


def test_string_equals_does_not_expand_wildcards() -> None:
    """OPERATORS, StringLike: "You must specify wildcards to achieve partial string matches";
    StringEquals is exact matching, so ``*`` is an ordinary character there."""
    assert not ev("StringEquals", "k", "home/*", {"k": "home/x"})
    assert ev("StringEquals", "k", "home/*", {"k": "home/*"})
    assert ev("StringLike", "k", "home/*", {"k": "home/x/y"})
    assert ev("StringLike", "k", "ho?e", {"k": "home"})
    assert not ev("StringLike", "k", "ho?e", {"k": "hoe"})
    assert not ev("StringLike", "k", "Home/*", {"k": "home/x"})  # case-sensitive


def test_string_like_home_directory_with_variable() -> None:
    """OPERATORS, the s3:prefix "home directory" example: StringLike with ``home/${aws:username}/``."""
    ctx = {"aws:username": "david", "s3:prefix": "home/david/"}
    assert ev("StringLike", "s3:prefix", ["", "home/", "home/${aws:username}/"], ctx)
    ctx["s3:prefix"] = "home/mary/"
    assert not ev("StringLike", "s3:prefix", ["", "home/", "home/${aws:username}/"], ctx)


def test_missing_key_positive_false_negated_true() -> None:
    """OPERATORS, Important: "If the key that you specify in a policy condition is not present
    in the request context, the values do not match and the condition is false. If the policy
    condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
    right key is not present, the condition is true."."""
    empty: dict[str, str] = {}
    for op in ("StringEquals", "StringLike", "StringEqualsIgnoreCase", "ArnEquals", "ArnLike"):
        assert not ev(op, "k", "arn:aws:s3:::x", empty), op
    for op in ("StringNotEquals", "StringNotLike", "StringNotEqualsIgnoreCase", "ArnNotEquals", "ArnNotLike"):
        assert ev(op, "k", "arn:aws:s3:::x", empty), op
    assert not ev("NumericLessThan", "k", "5", empty)
    assert ev("NumericNotEquals", "k", "5", empty)
    assert not ev("DateLessThan", "k", "2020-01-01T00:00:00Z", empty)
    assert ev("DateNotEquals", "k", "2020-01-01T00:00:00Z", empty)
    assert not ev("IpAddress", "k", "10.0.0.0/8", empty)
    assert ev("NotIpAddress", "k", "10.0.0.0/8", empty)
    assert not ev("Bool", "k", "true", empty)
    assert not ev("BinaryEquals", "k", "QmluYXJ5", empty)


def test_principal_tag_example_missing_tag_is_false() -> None:
    """OPERATORS, String: "If a user without the tag attempts to view or edit an access key,
    the condition returns false and the request is implicitly denied by this statement."."""
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "iam:*AccessKey*",
                "Resource": "arn:aws:iam::123456789012:user/*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
            },
        }
    )
    user = Principal.user("arn:aws:iam::123456789012:user/u")
    res = "arn:aws:iam::123456789012:user/bob"
    tagged = {"aws:PrincipalTag/job-category": "iamuser-admin"}
    assert evaluate(Request(user, "iam:CreateAccessKey", res, tagged), [policy]).allowed
    assert not evaluate(Request(user, "iam:CreateAccessKey", res), [policy]).allowed


# --------------------------------------------------------------------------
# Numeric, date, bool, binary, IP


def test_numeric_operators() -> None:
    """OPERATORS, Numeric: NumericLessThanEquals s3:max-keys 10 lets "list up to 10 objects"."""
    assert ev("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "10"})
    assert ev("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": 3})
    assert not ev("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "11"})
    assert ev("NumericEquals", "n", "1.0", {"n": "1"})
    assert ev("NumericNotEquals", "n", "1", {"n": "2"})
    assert not ev("NumericNotEquals", "n", "1", {"n": "1.00"})
    assert ev("NumericLessThan", "n", "1", {"n": "0.5"})
    assert not ev("NumericLessThan", "n", "1", {"n": "1"})
    assert ev("NumericGreaterThan", "n", "1", {"n": "1.5"})
    assert ev("NumericGreaterThanEquals", "n", "1", {"n": "1"})
    assert not ev("NumericGreaterThanEquals", "n", "1", {"n": "abc"})  # unparsable request value: no match
    with pytest.raises(PolicyError):
        ev("NumericEquals", "n", "ten", {"n": "10"})


def test_date_operators() -> None:
    """OPERATORS, Date: DateGreaterThan aws:TokenIssueTime "2020-01-01T00:00:01Z"; dates may be
    ISO 8601 or epoch ("W3C implementations of the ISO 8601 date formats or in epoch (UNIX) time")."""
    assert ev(
        "DateGreaterThan", "aws:TokenIssueTime", "2020-01-01T00:00:01Z", {"aws:TokenIssueTime": "2020-06-01T12:00:00Z"}
    )
    assert not ev(
        "DateGreaterThan", "aws:TokenIssueTime", "2020-01-01T00:00:01Z", {"aws:TokenIssueTime": "2019-12-31T23:59:59Z"}
    )
    assert not ev(
        "DateGreaterThan", "aws:TokenIssueTime", "2020-01-01T00:00:01Z", {}
    )  # missing key (IAM user access keys)
    assert ev("DateEquals", "t", "2020-01-01T00:00:00Z", {"t": "1577836800"})
    assert ev("DateLessThan", "t", "1577836801", {"t": "2020-01-01T00:00:00+00:00"})
    assert ev("DateLessThanEquals", "t", "2020-01-01", {"t": datetime(2020, 1, 1, tzinfo=UTC)})
    assert ev("DateGreaterThanEquals", "t", "2020-01-01T00:00:00Z", {"t": "2020-01-01T01:00:00+01:00"})
    assert ev("DateNotEquals", "t", "2020-01-01T00:00:00Z", {"t": "2021-01-01T00:00:00Z"})


def test_bool_secure_transport() -> None:
    """OPERATORS, Boolean: the BooleanExample denies S3 "if the request is not over SSL"; and
    "The aws:SecureTransport key is always present in the request context" (so it defaults to true)."""
    deny = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "BooleanExample",
                    "Action": "s3:*",
                    "Effect": "Deny",
                    "Resource": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            ],
        }
    )
    user = Principal.user("arn:aws:iam::123456789012:user/u")
    res = "arn:aws:s3:::DOC-EXAMPLE-BUCKET/x"
    assert evaluate(Request(user, "s3:GetObject", res), [deny]).allowed
    assert not evaluate(Request(user, "s3:GetObject", res, {"aws:SecureTransport": False}), [deny]).allowed
    assert ev("Bool", "b", True, {"b": "TRUE"})
    assert not ev("Bool", "b", "true", {"b": "yes"})


def test_binary_equals() -> None:
    """OPERATORS, Binary: "compares the value of the specified key byte for byte against a
    base-64 encoded representation of the binary value in the policy"."""
    assert ev("BinaryEquals", "key", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", {"key": b"BinaryValueInBase64"})
    assert ev("BinaryEquals", "key", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", {"key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="})
    assert not ev("BinaryEquals", "key", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", {"key": b"other"})


def test_ip_address() -> None:
    """OPERATORS, IP: 203.0.113.0/24 is "the IP range 203.0.113.0 to 203.0.113.255"; IPv4 and
    IPv6 ranges may be mixed; "If you specify an IP address without the associated routing
    prefix, IAM uses the default prefix value of /32"."""
    ranges = ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]
    assert ev("IpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "203.0.113.255"})
    assert not ev("IpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "203.0.114.0"})
    assert ev("IpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "2001:db8:1234:5678::1"})
    assert not ev("IpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "2001:db8:1234:5679::1"})
    assert ev("IpAddress", "aws:SourceIp", "203.0.113.9", {"aws:SourceIp": "203.0.113.9"})
    assert not ev("IpAddress", "aws:SourceIp", "203.0.113.9", {"aws:SourceIp": "203.0.113.10"})
    assert ev("NotIpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "198.51.100.1"})
    assert not ev("NotIpAddress", "aws:SourceIp", ranges, {"aws:SourceIp": "203.0.113.1"})


# --------------------------------------------------------------------------
# ARN


def test_arn_like_matches_segment_by_segment() -> None:
    """OPERATORS, ARN: pattern ``arn:aws:someservice:*:111122223333:finance/*`` against
    ``arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt``:
    "With a StringLike condition, the match succeeds ... With an ArnLike condition, which
    matches elements between colons, the match fails."."""
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    assert ev("StringLike", "aws:SourceArn", pattern, {"aws:SourceArn": value})
    assert not ev("ArnLike", "aws:SourceArn", pattern, {"aws:SourceArn": value})
    assert not ev("ArnEquals", "aws:SourceArn", pattern, {"aws:SourceArn": value})
    assert ev("ArnNotLike", "aws:SourceArn", pattern, {"aws:SourceArn": value})


def test_arn_operators_equals_and_like_identical() -> None:
    """OPERATORS, ARN: "The ArnEquals and ArnLike condition operators behave identically"."""
    ctx = {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:My:Alarm"}
    for op in ("ArnEquals", "ArnLike"):
        assert ev(op, "aws:SourceArn", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*", ctx)
        assert ev(op, "aws:SourceArn", "arn:aws:cloudwatch:*:123456789012:alarm:My:Alarm", ctx)
        assert not ev(op, "aws:SourceArn", "arn:aws:cloudwatch:us-east-1:999999999999:alarm:*", ctx)
    assert not ev(
        "ArnLike", "aws:SourceArn", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*", {"aws:SourceArn": "not-an-arn"}
    )
    assert ev("ArnLike", "aws:SourceArn", "*", ctx)


def test_arn_equals_sns_to_sqs_example() -> None:
    """OPERATORS, ARN: the SQS queue policy letting SNS send "only if the service is sending the
    messages on behalf of a particular Amazon SNS topic", and "If an IAM user attempts to perform
    this operation directly, the condition returns false"."""
    queue = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"AWS": "123456789012"},
                "Action": "SQS:SendMessage",
                "Resource": "arn:aws:sqs:us-east-1:123456789012:QUEUE-ID",
                "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:TOPIC-ID"}},
            },
        }
    )
    user = Principal.user("arn:aws:iam::123456789012:user/u")
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    )
    # No identity policy: the account statement only delegates; with it, direct call works by IAM alone.
    assert not evaluate(
        Request(user, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:QUEUE-ID"), [], [queue]
    ).allowed
    assert evaluate(
        Request(user, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:QUEUE-ID"), [ident], [queue]
    ).allowed
    assert ev("ArnEquals", "aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:TOPIC-ID", {}) is False


# --------------------------------------------------------------------------
# IfExists and Null


def test_ifexists_instance_type_example() -> None:
    """OPERATORS, "...IfExists condition operators": THISPOLICYDOESNOTWORK vs StringLikeIfExists.

    "These additional resources do not have the ec2:InstanceType condition key,
    so the StringLike check fails, and the user is not granted the ability to
    launch any instance type." -- with StringLikeIfExists, "If the resource
    being checked does not have that condition key, then don't worry about it."
    """

    def policy(op: str) -> object:
        return parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Sid": "RunInstance",
                    "Effect": "Allow",
                    "Action": "ec2:RunInstances",
                    "Resource": "*",
                    "Condition": {op: {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
                },
            }
        )

    user = Principal.user("arn:aws:iam::123456789012:user/u")
    image = Request(user, "ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-1")
    instance_t2 = Request(
        user, "ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:instance/*", {"ec2:InstanceType": "t2.micro"}
    )
    instance_c5 = Request(
        user, "ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:instance/*", {"ec2:InstanceType": "c5.large"}
    )
    broken, fixed = policy("StringLike"), policy("StringLikeIfExists")
    assert not evaluate(image, [broken]).allowed
    assert evaluate(instance_t2, [broken]).allowed
    assert evaluate(image, [fixed]).allowed
    assert evaluate(instance_t2, [fixed]).allowed
    assert not evaluate(instance_c5, [fixed]).allowed


def test_ifexists_on_every_operator_except_null() -> None:
    """OPERATORS: "You can add IfExists to the end of any condition operator name except the Null
    condition" -- a missing key makes it true; a present key is tested normally."""
    samples = {
        "StringEquals": "a",
        "StringNotEquals": "a",
        "StringEqualsIgnoreCase": "a",
        "StringNotEqualsIgnoreCase": "a",
        "StringLike": "a*",
        "StringNotLike": "a*",
        "NumericEquals": "1",
        "NumericNotEquals": "1",
        "NumericLessThan": "1",
        "NumericLessThanEquals": "1",
        "NumericGreaterThan": "1",
        "NumericGreaterThanEquals": "1",
        "DateEquals": "2020-01-01T00:00:00Z",
        "DateNotEquals": "2020-01-01T00:00:00Z",
        "DateLessThan": "2020-01-01T00:00:00Z",
        "DateLessThanEquals": "2020-01-01T00:00:00Z",
        "DateGreaterThan": "2020-01-01T00:00:00Z",
        "DateGreaterThanEquals": "2020-01-01T00:00:00Z",
        "Bool": "true",
        "BinaryEquals": "QQ==",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
        "ArnEquals": "arn:aws:s3:::b",
        "ArnLike": "arn:aws:s3:::b*",
        "ArnNotEquals": "arn:aws:s3:::b",
        "ArnNotLike": "arn:aws:s3:::b*",
    }
    for op, value in samples.items():
        assert ev(op + "IfExists", "k", value, {}), op
        assert ev(op + "IfExists", "k", value, {"k": "zzz-not-matching"}) == ev(
            op, "k", value, {"k": "zzz-not-matching"}
        ), op
    with pytest.raises(PolicyError):
        parse_operator("NullIfExists")


def test_negated_ifexists_deny_still_denies_when_missing() -> None:
    """OPERATORS: "If you are using an "Effect": "Deny" element with a negated condition operator
    like StringNotEqualsIfExists, the request is still denied even if the tag is missing."."""
    assert ev("StringNotEqualsIfExists", "aws:ResourceTag/team", "blue", {})
    assert ev("StringNotEqualsIfExists", "aws:ResourceTag/team", "blue", {"aws:ResourceTag/team": "red"})
    assert not ev("StringNotEqualsIfExists", "aws:ResourceTag/team", "blue", {"aws:ResourceTag/team": "blue"})


def test_null_operator() -> None:
    """OPERATORS, Null: "use either true (the key doesn't exist — it is null) or false (the key
    exists and its value is not null)" -- the aws:TokenIssueTime example."""
    assert ev("Null", "aws:TokenIssueTime", "true", {})
    assert not ev("Null", "aws:TokenIssueTime", "true", {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"})
    assert ev("Null", "aws:TokenIssueTime", False, {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"})
    assert not ev("Null", "aws:TokenIssueTime", "false", {})
    assert ev("Null", "aws:TagKeys", "true", {"aws:TagKeys": []})  # empty set counts as null


# --------------------------------------------------------------------------
# Multiple keys, multiple values, negated matching


MV_POLICY = {
    "StringEquals": {
        "aws:PrincipalTag/department": ["finance", "hr", "legal"],
        "aws:PrincipalTag/role": ["audit", "security"],
    },
    "ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::222222222222:user/Ana", "arn:aws:iam::222222222222:user/Mary"]},
}


@pytest.mark.parametrize(
    "context,expected",
    [
        (
            {
                "aws:PrincipalTag/department": "legal",
                "aws:PrincipalTag/role": "audit",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary",
            },
            True,
        ),
        (
            {
                "aws:PrincipalTag/department": "hr",
                "aws:PrincipalTag/role": "audit",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Nikki",
            },
            False,
        ),
        (
            {
                "aws:PrincipalTag/department": "hr",
                "aws:PrincipalTag/role": "payroll",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary",
            },
            False,
        ),
        ({"aws:PrincipalTag/department": "hr", "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary"}, False),
        ({"aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary"}, False),
    ],
)
def test_multiple_keys_and_values_table(context: dict[str, str], expected: bool) -> None:
    """MULTI_VALUES, "Evaluation logic for multiple context keys or values" result table
    (Match / No match / No match / No match / No match): operators AND, keys AND, values OR."""
    block = parse_condition_block(MV_POLICY)
    assert block.evaluate(Context(context)).ok is expected


@pytest.mark.parametrize(
    "context,expected",
    [
        (
            {
                "aws:PrincipalTag/department": "legal",
                "aws:PrincipalTag/role": "audit",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Nikki",
            },
            True,
        ),
        (
            {
                "aws:PrincipalTag/department": "hr",
                "aws:PrincipalTag/role": "audit",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary",
            },
            False,
        ),
        (
            {
                "aws:PrincipalTag/department": "hr",
                "aws:PrincipalTag/role": "payroll",
                "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Nikki",
            },
            False,
        ),
        ({"aws:PrincipalTag/department": "hr", "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Nikki"}, False),
        ({"aws:PrincipalArn": "arn:aws:iam::222222222222:user/Nikki"}, False),
    ],
)
def test_negated_matching_nor_table(context: dict[str, str], expected: bool) -> None:
    """MULTI_VALUES, "Evaluation logic for negated matching condition operators": "When multiple
    values are specified for a single context key in a policy with negated matching condition
    operators, the effective permissions work like a logical NOR" -- the ArnNotLike table."""
    raw = {"StringEquals": MV_POLICY["StringEquals"], "ArnNotLike": MV_POLICY["ArnLike"]}
    assert parse_condition_block(raw).evaluate(Context(context)).ok is expected


def test_string_not_equals_multiple_values_is_and() -> None:
    """MULTI_VALUES (2023 wording): "if there are multiple aws:PrincipalAccount values in a
    StringNotEquals condition operator, the string cannot match any of the aws:PrincipalAccount
    values listed to resolve the condition to true"."""
    vals = ["111111111111", "222222222222"]
    assert not ev("StringNotEquals", "aws:PrincipalAccount", vals, {"aws:PrincipalAccount": "111111111111"})
    assert not ev("StringNotEquals", "aws:PrincipalAccount", vals, {"aws:PrincipalAccount": "222222222222"})
    assert ev("StringNotEquals", "aws:PrincipalAccount", vals, {"aws:PrincipalAccount": "333333333333"})


# --------------------------------------------------------------------------
# Set operators (multivalued context keys)


@pytest.mark.parametrize(
    "tag_keys,expected",
    [
        (["environment"], True),
        (["cost-center"], True),
        (["environment", "cost-center"], True),
        (["environment", "dept"], False),
        (None, False),
    ],
)
def test_forallvalues_with_null_check_table(tag_keys: list[str] | None, expected: bool) -> None:
    """SINGLE_VS_MULTI, "ForAllValues set operator" example table (with "Null": {"aws:TagKeys":
    "false"}): Match, Match, Match, No match, and "No aws:TagKeys in the request context" is No
    match because "the Null condition check prevents matching when the context key is missing"."""
    block = parse_condition_block(
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}, "Null": {"aws:TagKeys": "false"}}
    )
    ctx = Context({} if tag_keys is None else {"aws:TagKeys": tag_keys})
    assert block.evaluate(ctx).ok is expected


def test_forallvalues_missing_or_empty_is_true() -> None:
    """SINGLE_VS_MULTI, ForAllValues: "It also returns true if there are no context keys in the
    request."; 2023 multi-value page: "If the key values in the request resolve to an empty data
    set, such as an empty list, a condition operator modified by ForAllValues returns true. A
    condition operator modified by ForAnyValue returns false."."""
    assert ev("ForAllValues:StringEquals", "aws:TagKeys", ["environment"], {})
    assert ev("ForAllValues:StringEquals", "aws:TagKeys", ["environment"], {"aws:TagKeys": []})
    assert not ev("ForAnyValue:StringEquals", "aws:TagKeys", ["environment"], {})
    assert not ev("ForAnyValue:StringEquals", "aws:TagKeys", ["environment"], {"aws:TagKeys": []})


@pytest.mark.parametrize(
    "tag_keys,expected",
    [
        (["environment"], True),
        (["cost-center"], True),
        (["environment", "cost-center"], True),
        (["environment", "dept"], True),
        (["dept"], False),
        (None, False),
    ],
)
def test_foranyvalue_table(tag_keys: list[str] | None, expected: bool) -> None:
    """SINGLE_VS_MULTI, "ForAnyValue set operator" table: Match x4, "dept" No match, missing No
    match ("For no matching context key or if the key does not exist, the condition returns false")."""
    ctx = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert ev("ForAnyValue:StringEquals", "aws:TagKeys", ["environment", "cost-center"], ctx) is expected


@pytest.mark.parametrize(
    "tag_keys,expected",
    [(["key1:legal"], False), (["key1:hr", "key1:personnel"], False), (["key2:audit"], True), (None, True)],
)
def test_forallvalues_stringnotlike_single_value_table(tag_keys: list[str] | None, expected: bool) -> None:
    """MULTI_EXAMPLES, "Deny a single policy condition value for a multivalued context key":
    ``ForAllValues:StringNotLike {"aws:TagKeys": "key1*"}`` -- key1:legal No match; key1:hr +
    key1:personnel No match; key2:audit Match; "No aws:TagKeys in the request context" Match."""
    ctx = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert ev("ForAllValues:StringNotLike", "aws:TagKeys", "key1*", ctx) is expected


@pytest.mark.parametrize(
    "tag_keys,expected",
    [
        (["key1:legal"], False),
        (["key1:hr", "key1:personnel"], False),
        (["key1:hr", "key2:audit"], False),
        (["key3:legal"], True),
        (None, True),
    ],
)
def test_forallvalues_stringnotlike_multiple_values_table(tag_keys: list[str] | None, expected: bool) -> None:
    """MULTI_EXAMPLES, "Deny multiple policy condition values for a multivalued context key":
    ``["key1*", "key2*"]`` -- No match, No match, No match, key3:legal Match, missing Match."""
    ctx = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert ev("ForAllValues:StringNotLike", "aws:TagKeys", ["key1*", "key2*"], ctx) is expected


@pytest.mark.parametrize(
    "tag_keys,expected",
    [
        (["webserver"], True),
        (["environment", "webserver", "test"], True),
        (["environment", "test"], False),
        (None, False),
    ],
)
def test_foranyvalue_deny_table(tag_keys: list[str] | None, expected: bool) -> None:
    """MULTI_EXAMPLES, "Deny policy with condition set operator ForAnyValue": Match, Match,
    No match, and no aws:TagKeys "No match May be allowed by another statement"."""
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
                    "Resource": "arn:aws:ec2:us-west-2::snapshot/*",
                    "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "webserver"}},
                },
                {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            ],
        }
    )
    user = Principal.user("arn:aws:iam::123456789012:user/u")
    ctx = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    d = evaluate(Request(user, "ec2:CreateSnapshot", "arn:aws:ec2:us-west-2::snapshot/snap-1", ctx), [policy])
    assert d.allowed is (not expected)


def test_dynamodb_attributes_examples() -> None:
    """2023 multi-value page (Thread table): ForAllValues allows GetItem of Message and Tags (and ID),
    fails when UserName is requested; the ForAnyValue Deny on PutItem of ID/PostDateTime denies
    PostDateTime+Message but not UserName alone.  (Now at MULTI_VALUES' successor pages.)"""
    allowed_attrs = ["ID", "Message", "Tags"]
    assert ev(
        "ForAllValues:StringEquals",
        "dynamodb:Attributes",
        allowed_attrs,
        {"dynamodb:Attributes": ["ID", "Message", "Tags"]},
    )
    assert not ev(
        "ForAllValues:StringEquals", "dynamodb:Attributes", allowed_attrs, {"dynamodb:Attributes": ["ID", "UserName"]}
    )
    forbidden = ["ID", "PostDateTime"]
    assert ev(
        "ForAnyValue:StringEquals",
        "dynamodb:Attributes",
        forbidden,
        {"dynamodb:Attributes": ["PostDateTime", "Message"]},
    )
    assert not ev("ForAnyValue:StringEquals", "dynamodb:Attributes", forbidden, {"dynamodb:Attributes": ["UserName"]})
    assert ev(
        "ForAnyValue:StringEquals",
        "dynamodb:Attributes",
        forbidden,
        {"dynamodb:Attributes": ["UserName", "Message", "PostDateTime"]},
    )


def test_negated_operator_with_multivalued_key_without_set_operator() -> None:
    """Modelling choice (AWS: "Multivalued context keys require a condition set operator" and
    documents no result): without a set operator the request values are ORed like the policy
    values, so a negated operator is true only if *no* request value matches (NOR)."""
    assert ev("StringEquals", "aws:TagKeys", "a", {"aws:TagKeys": ["a", "b"]})
    assert not ev("StringNotEquals", "aws:TagKeys", "a", {"aws:TagKeys": ["a", "b"]})
    assert ev("StringNotEquals", "aws:TagKeys", "c", {"aws:TagKeys": ["a", "b"]})
    assert ev("StringNotEquals", "aws:TagKeys", "c", {"aws:TagKeys": []})


def test_foranyvalue_ifexists_missing_is_true() -> None:
    assert ev("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", "a", {})
    assert not ev("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", "a", {"aws:TagKeys": ["b"]})


# --------------------------------------------------------------------------
# Policy variables


def test_variable_without_value_does_not_match_but_negated_does() -> None:
    """VARIABLES, "Policy variables with no value": "Condition operators like StringEquals or
    StringLike do not match ... Inverted condition operators like StringNotEquals or StringNotLike
    do match against a null value"."""
    ctx = {"s3:ExistingObjectTag/Team": "blue"}
    assert not ev("StringEquals", "s3:ExistingObjectTag/Team", "${aws:PrincipalTag/Team}", ctx)
    assert not ev("StringLike", "s3:ExistingObjectTag/Team", "${aws:PrincipalTag/Team}", ctx)
    assert ev("StringNotEquals", "s3:ExistingObjectTag/Team", "${aws:PrincipalTag/Team}", ctx)
    ctx["aws:PrincipalTag/Team"] = "blue"
    assert ev("StringEquals", "s3:ExistingObjectTag/Team", "${aws:PrincipalTag/Team}", ctx)
    assert not ev("StringNotEquals", "s3:ExistingObjectTag/Team", "${aws:PrincipalTag/Team}", ctx)


def test_variable_in_resource_and_default_value() -> None:
    """VARIABLES: ``arn:aws:s3:::mybucket/${aws:username}/*`` gives each user their own prefix;
    "${aws:PrincipalTag/team, 'company-wide'}" supplies a default; and "If a variable that has no
    value ... is used as part of the Resource ... the resource ... will not match any resource"."""
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": ["arn:aws:s3:::mybucket/${aws:username}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::DOC-EXAMPLE-BUCKET-${aws:PrincipalTag/team, 'company-wide'}",
                },
            ],
        }
    )
    david = Principal.user("arn:aws:iam::123456789012:user/David")
    assert evaluate(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/David/notes"), [policy]).allowed
    assert not evaluate(Request(david, "s3:GetObject", "arn:aws:s3:::mybucket/Mary/notes"), [policy]).allowed
    role = Principal.assumed_role("arn:aws:iam::123456789012:role/r")  # no aws:username for roles
    assert not evaluate(Request(role, "s3:GetObject", "arn:aws:s3:::mybucket/r/notes"), [policy]).allowed
    assert evaluate(Request(david, "s3:ListBucket", "arn:aws:s3:::DOC-EXAMPLE-BUCKET-company-wide"), [policy]).allowed
    yellow = Request(
        david, "s3:ListBucket", "arn:aws:s3:::DOC-EXAMPLE-BUCKET-yellow", {"aws:PrincipalTag/team": "yellow"}
    )
    assert evaluate(yellow, [policy]).allowed


def test_variables_need_version_2012() -> None:
    """VARIABLES: "If you don't include the Version element and set it to an appropriate version
    date, variables like ${aws:username} are treated as literal strings in the policy."."""
    stmt = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"}
    old = parse_policy({"Statement": [stmt]})
    new = parse_policy({"Version": "2012-10-17", "Statement": [stmt]})
    user = Principal.user("arn:aws:iam::123456789012:user/David")
    assert not evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::b/David/x"), [old]).allowed
    assert evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::b/${aws:username}/x"), [old]).allowed
    assert evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::b/David/x"), [new]).allowed


def test_special_character_variables_are_literal() -> None:
    """VARIABLES, "Special characters": "${*} - use where you need an * (asterisk) character",
    so it is not a wildcard."""
    assert ev("StringLike", "k", "a${*}b", {"k": "a*b"})
    assert not ev("StringLike", "k", "a${*}b", {"k": "axb"})
    assert ev("StringLike", "k", "a${?}", {"k": "a?"})
    assert ev("StringEquals", "k", "cost${$}", {"k": "cost$"})


def test_substituted_value_is_escaped() -> None:
    """A context value containing ``*`` must not act as a wildcard once substituted."""
    assert not ev("StringLike", "k", "home/${aws:username}", {"aws:username": "*", "k": "home/alice"})
    assert ev("StringLike", "k", "home/${aws:username}", {"aws:username": "*", "k": "home/*"})


def test_multivalued_key_is_not_a_variable() -> None:
    """SINGLE_VS_MULTI: "you cannot use a multivalued context key as a policy variable"."""
    assert not ev("StringEquals", "k", "${aws:TagKeys}", {"aws:TagKeys": ["a", "b"], "k": "a"})


def test_principal_account_variable_in_condition() -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}},
                }
            ],
        }
    )
    role = Principal.assumed_role("arn:aws:iam::123456789012:role/r")
    assert evaluate(
        Request(role, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:ResourceAccount": "123456789012"}), [policy]
    ).allowed
    assert not evaluate(
        Request(role, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:ResourceAccount": "999999999999"}), [policy]
    ).allowed


# --------------------------------------------------------------------------
# Parsing


def test_operator_parsing() -> None:
    op = parse_operator("ForAllValues:StringNotLikeIfExists")
    assert (op.base, op.set_operator, op.if_exists, op.negated) == ("StringNotLike", "ForAllValues", True, True)
    for bad in ("StringEqual", "ForSomeValues:StringEquals", "Null:x", "ForAnyValue:Null"):
        with pytest.raises(PolicyError):
            parse_operator(bad)


def test_invalid_policy_values_rejected() -> None:
    for op, value in [
        ("IpAddress", "300.1.1.1/8"),
        ("DateEquals", "yesterday"),
        ("Bool", "maybe"),
        ("BinaryEquals", "!!"),
        ("Null", "perhaps"),
    ]:
        with pytest.raises(PolicyError):
            ev(op, "k", value, {})
    with pytest.raises(PolicyError):
        parse_condition_block({"StringEquals": {"k": {"Ref": "Unresolved"}}})
