"""Evaluation logic checked against the worked examples in AWS's documentation.

Each test quotes the documented outcome and cites the page it comes from.
"""

from __future__ import annotations

import pytest

from backup_cfn.permissions.iam import (
    Outcome,
    PolicyError,
    Principal,
    Request,
    ResourceKind,
    evaluate,
    parse_policy,
)

ACCT = "123456789012"

EVAL_BASICS = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html"
)
DENYALLOW = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html"
)
CROSS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html"


# --------------------------------------------------------------------------
# Identity-based and resource-based policies in one account


CARLOS_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowS3ListRead",
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketLocation",
                "s3:GetAccountPublicAccessBlock",
                "s3:ListAccessPoints",
                "s3:ListAllMyBuckets",
            ],
            "Resource": "arn:aws:s3:::*",
        },
        {
            "Sid": "AllowS3Self",
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"],
        },
        {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"},
    ],
}
CARLOS_BUCKET_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/carlossalazar"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"],
        }
    ],
}
CARLOS = Principal.user(f"arn:aws:iam::{ACCT}:user/carlossalazar")


def test_carlos_denied_on_logs_bucket() -> None:
    """Saving to the logs bucket is denied.

    EVAL_BASICS, "Example identity-based and resource-based policy evaluation":
    "AWS first checks for a Deny statement that applies to the context of the
    request. It finds one, because the identity-based policy explicitly denies
    Carlos access to any S3 buckets used for logging. Carlos is denied access."
    """
    d = evaluate(
        Request(CARLOS, "s3:PutObject", "arn:aws:s3:::carlossalazar-logs"),
        [parse_policy(CARLOS_USER_POLICY, "carlossalazar")],
        [parse_policy(CARLOS_BUCKET_POLICY, "carlossalazar-bucket")],
    )
    assert d.outcome is Outcome.EXPLICIT_DENY
    assert [s.sid for s in d.deciding] == ["DenyS3Logs"]


@pytest.mark.parametrize("with_identity,with_resource", [(True, True), (True, False), (False, True)])
def test_carlos_allowed_on_own_bucket(with_identity: bool, with_resource: bool) -> None:
    """Saving to his own bucket is allowed, by either policy alone.

    EVAL_BASICS: "Both the identity-based policy and the resource-based policy
    allow the request. Therefore, AWS allows the request. ... If one of the
    policy types allows the request and the other doesn't, the request is still
    allowed."  (The bucket policy names the user ARN, so it grants directly.)
    """
    d = evaluate(
        Request(CARLOS, "s3:PutObject", "arn:aws:s3:::carlossalazar/file.txt"),
        [parse_policy(CARLOS_USER_POLICY, "carlossalazar")] if with_identity else [],
        [parse_policy(CARLOS_BUCKET_POLICY, "carlossalazar-bucket")] if with_resource else [],
    )
    assert d.allowed, d.details()


def test_explicit_vs_implicit_deny() -> None:
    """The AllowGetList / DenyReports example.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
    "The AllowGetList statement allows read-only access to IAM actions that
    begin with the prefixes Get and List. All other actions in IAM, such as
    iam:CreatePolicy are implicitly denied. The DenyReports statement
    explicitly denies access ... such as iam:GetOrganizationsAccessReport. If
    someone adds another policy to this principal to grant them access to IAM
    reports, such as iam:GenerateCredentialReport, report-related requests are
    still denied because of this explicit deny."
    """
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
                {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"},
            ],
        },
        "ReadOnly",
    )
    extra = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}, "Reports"
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "iam:GetUser"), [policy]).allowed
    assert evaluate(Request(user, "iam:CreatePolicy"), [policy]).outcome is Outcome.IMPLICIT_DENY
    assert evaluate(Request(user, "iam:GetOrganizationsAccessReport"), [policy]).outcome is Outcome.EXPLICIT_DENY
    assert evaluate(Request(user, "iam:GenerateCredentialReport"), [policy, extra]).outcome is Outcome.EXPLICIT_DENY
    assert evaluate(Request(user, "iam:CreatePolicy"), [policy, extra]).allowed


def test_action_names_are_case_insensitive() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html

    "The prefix and the action name are case insensitive. For example,
    iam:ListAccessKeys is the same as IAM:listaccesskeys."
    """
    policy = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListAccessKeys", "Resource": "*"}]}
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "IAM:listaccesskeys"), [policy]).allowed


def test_resource_arns_are_case_sensitive() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html

    "In the Resource element, the IAM user name is case sensitive." (ARN
    matching is a case-sensitive wildcard match.)
    """
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": f"arn:aws:iam::{ACCT}:user/Bob"}],
        }
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/admin")
    assert evaluate(Request(user, "iam:GetUser", f"arn:aws:iam::{ACCT}:user/Bob"), [policy]).allowed
    assert not evaluate(Request(user, "iam:GetUser", f"arn:aws:iam::{ACCT}:user/bob"), [policy]).allowed


# --------------------------------------------------------------------------
# Cross-account


CARLOS_111 = Principal.user("arn:aws:iam::111111111111:user/carlossalazar")
CROSS_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AllowS3ListRead", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {
            "Sid": "AllowS3ProductionObjectActions",
            "Effect": "Allow",
            "Action": "s3:*Object*",
            "Resource": "arn:aws:s3:::Production/*",
        },
        {
            "Sid": "DenyS3Logs",
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::*log*", "arn:aws:s3:::*log*/*"],
        },
    ],
}
CROSS_BUCKET_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject*", "s3:PutObject*", "s3:ReplicateObject", "s3:RestoreObject"],
            "Principal": {"AWS": "arn:aws:iam::111111111111:user/carlossalazar"},
            "Resource": "arn:aws:s3:::Production/*",
        }
    ],
}


def test_cross_account_explicit_deny_in_trusted_account() -> None:
    """CROSS, "Example cross-account policy evaluation": Production-logs is denied.

    "When AWS evaluates account 111111111111, it returns a decision of Deny.
    This is because the DenyS3Logs statement in the identity-based policy
    explicitly denies access to any log buckets."
    """
    d = evaluate(
        Request(CARLOS_111, "s3:PutObject", "arn:aws:s3:::Production-logs/file", resource_account="222222222222"),
        [parse_policy(CROSS_USER_POLICY, "carlossalazar")],
        [],
    )
    assert d.outcome is Outcome.EXPLICIT_DENY


def test_cross_account_both_allow() -> None:
    """CROSS: "Because both accounts allow the request, the final decision is to allow the request."."""
    d = evaluate(
        Request(CARLOS_111, "s3:PutObject", "arn:aws:s3:::Production/file", resource_account="222222222222"),
        [parse_policy(CROSS_USER_POLICY, "carlossalazar")],
        [parse_policy(CROSS_BUCKET_POLICY, "Production")],
    )
    assert d.allowed, d.details()


def test_cross_account_needs_both_sides() -> None:
    """CROSS: "The request is allowed only if both evaluations return a decision of Allow."

    The bucket policy does not allow DeleteObject ("He can create and edit,
    but not delete the objects"), and without the identity policy the bucket
    policy alone is not enough either.
    """
    user = [parse_policy(CROSS_USER_POLICY, "carlossalazar")]
    bucket = [parse_policy(CROSS_BUCKET_POLICY, "Production")]
    req = Request(CARLOS_111, "s3:DeleteObject", "arn:aws:s3:::Production/file", resource_account="222222222222")
    assert evaluate(req, user, bucket).outcome is Outcome.IMPLICIT_DENY
    req = Request(CARLOS_111, "s3:PutObject", "arn:aws:s3:::Production/file", resource_account="222222222222")
    d = evaluate(req, [], bucket)
    assert d.outcome is Outcome.IMPLICIT_DENY and "cross-account" in d.reason


def test_cross_account_resource_policy_naming_account_delegates() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html

    Naming an account "delegates authority to the account. When you allow
    access to a different account, an administrator in that account must then
    grant access to an identity (IAM user or role) in that account."
    """
    bucket = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "111111111111"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::shared/*",
                }
            ],
        },
        "shared",
    )
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "id"
    )
    req = Request(CARLOS_111, "s3:GetObject", "arn:aws:s3:::shared/x", resource_account="222222222222")
    assert evaluate(req, [ident], [bucket]).allowed
    assert not evaluate(req, [], [bucket]).allowed


# --------------------------------------------------------------------------
# Resource policies granting a role or session directly (same account)


ROLE_ARN = f"arn:aws:iam::{ACCT}:role/examplerole"
SESSION = Principal.assumed_role(ROLE_ARN, "examplerolesessionname")


def _bucket_policy(principal: object, effect: str = "Allow") -> object:
    return parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Grant",
                    "Effect": effect,
                    "Principal": principal,
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::bucket/*",
                }
            ],
        },
        "BucketPolicy",
    )


def test_session_arn_format() -> None:
    """DENYALLOW: "Example role session ARN: arn:aws:sts::111122223333:assumed-role/examplerole/examplerolesessionname"."""
    assert SESSION.arn == f"arn:aws:sts::{ACCT}:assumed-role/examplerole/examplerolesessionname"
    assert (
        Principal.assumed_role(f"arn:aws:iam::{ACCT}:role/a/path/r", "s").arn == f"arn:aws:sts::{ACCT}:assumed-role/r/s"
    )


@pytest.mark.parametrize(
    "named",
    [ROLE_ARN, SESSION.arn, [f"arn:aws:iam::{ACCT}:role/other", ROLE_ARN]],
    ids=["role-arn", "session-arn", "role-in-list"],
)
def test_same_account_resource_policy_grants_role_directly(named: object) -> None:
    """A bucket policy naming the role (or the session) is enough without any identity policy.

    DENYALLOW, resource-based policies: "For most resources, you only need an
    explicit allow for the principal in either an identity-based policy or a
    resource-based policy to grant access." -- "IAM role session – Within the
    same account, resource-based policies that grant permissions to an IAM role
    session ARN grant permissions directly to the assumed role session." and
    "IAM role – Resource-based policies that grant permissions to an IAM role
    ARN are limited by an implicit deny in a permissions boundary or session
    policy" (i.e. not by the identity policy; neither is modelled here).
    """
    d = evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::bucket/k"), [], [_bucket_policy({"AWS": named})])
    assert d.allowed, d.details()
    assert d.deciding[0].sid == "Grant"


@pytest.mark.parametrize("named", [ACCT, f"arn:aws:iam::{ACCT}:root"])
def test_same_account_resource_policy_naming_account_delegates_to_iam(named: str) -> None:
    """Naming the account root does not grant the role by itself.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    "The account ARN and the shortened account ID behave the same way. Both
    delegate permissions to the account. Using the account ARN in the
    Principal element does not limit permissions to only the root user of the
    account."
    """
    bucket = _bucket_policy({"AWS": named})
    req = Request(SESSION, "s3:GetObject", "arn:aws:s3:::bucket/k")
    d = evaluate(req, [], [bucket])
    assert d.outcome is Outcome.IMPLICIT_DENY and "delegates" in d.reason
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "id"
    )
    assert evaluate(req, [ident], [bucket]).allowed


def test_principal_star_grants_same_account_without_identity_policy() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html

    "For resource-based policies, using a wildcard (*) with an Allow effect
    grants access to all users ... For IAM users and role principals within
    your account, no other permissions are required. For principals in other
    accounts, they must also have identity-based permissions in their account."
    """
    for principal in ("*", {"AWS": "*"}):
        bucket = _bucket_policy(principal)
        assert evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::bucket/k"), [], [bucket]).allowed
        other = Principal.assumed_role("arn:aws:iam::999999999999:role/r")
        assert not evaluate(
            Request(other, "s3:GetObject", "arn:aws:s3:::bucket/k", resource_account=ACCT), [], [bucket]
        ).allowed


def test_resource_policy_deny_applies_over_identity_allow() -> None:
    """DENYALLOW: "An explicit deny overrides an explicit allow." -- from any policy type."""
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}, "id"
    )
    d = evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::bucket/k"), [ident], [_bucket_policy("*", "Deny")])
    assert d.outcome is Outcome.EXPLICIT_DENY
    assert d.explain().endswith("explicit deny by BucketPolicy statement Grant")


def test_resource_policy_for_other_principal_does_not_apply() -> None:
    d = evaluate(
        Request(SESSION, "s3:GetObject", "arn:aws:s3:::bucket/k"),
        [],
        [_bucket_policy({"AWS": f"arn:aws:iam::{ACCT}:role/someone-else"}, "Deny")],
    )
    assert d.outcome is Outcome.IMPLICIT_DENY
    assert d.explain() == "examplerole s3:GetObject on arn:aws:s3:::bucket/k: implicit deny (no statement allows it)"


def test_root_user_has_full_access_in_own_account() -> None:
    """DENYALLOW: "By default, all requests are implicitly denied with the exception of the
    AWS account root user, which has full access." -- explicit denies still apply."""
    root = Principal.account_root(ACCT)
    assert evaluate(Request(root, "s3:GetObject", "arn:aws:s3:::bucket/k")).allowed
    d = evaluate(Request(root, "s3:GetObject", "arn:aws:s3:::bucket/k"), [], [_bucket_policy("*", "Deny")])
    assert d.outcome is Outcome.EXPLICIT_DENY
    # Cross-account, the root user's own account allows; the resource side still has to.
    other = Request(root, "s3:GetObject", "arn:aws:s3:::bucket/k", resource_account="999999999999")
    assert not evaluate(other).allowed
    assert evaluate(other, [], [_bucket_policy({"AWS": ACCT})]).allowed


# --------------------------------------------------------------------------
# Service principals


def test_service_principal_only_resource_policies() -> None:
    """A service has no identity policy: only resource-policy statements naming it can allow.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    "You can specify AWS services in the Principal element of a resource-based
    policy ... A service principal is an identifier for a service."
    """
    trail = Principal.service("cloudtrail.amazonaws.com")
    bucket = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CloudTrailWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::trail/AWSLogs/{ACCT}/*",
                    "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
                }
            ],
        },
        "TrailBucketPolicy",
    )
    ok = Request(
        trail, "s3:PutObject", f"arn:aws:s3:::trail/AWSLogs/{ACCT}/x", {"s3:x-amz-acl": "bucket-owner-full-control"}
    )
    assert evaluate(ok, [], [bucket]).allowed
    bad = Request(trail, "s3:PutObject", f"arn:aws:s3:::trail/AWSLogs/{ACCT}/x")
    d = evaluate(bad, [], [bucket])
    assert d.outcome is Outcome.IMPLICIT_DENY
    assert d.near_misses and d.near_misses[0].statement.sid == "CloudTrailWrite"
    other = Principal.service("config.amazonaws.com")
    assert not evaluate(Request(other, "s3:PutObject", f"arn:aws:s3:::trail/AWSLogs/{ACCT}/x"), [], [bucket]).allowed
    assert not evaluate(ok).allowed  # no resource policy at all
    with pytest.raises(ValueError):
        evaluate(ok, [parse_policy(CARLOS_USER_POLICY)], [bucket])


def test_service_principal_context_keys() -> None:
    """aws:PrincipalIsAWSService and aws:PrincipalServiceName are set for service principals."""
    trail = Principal.service("cloudtrail.amazonaws.com")
    deny_services = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"},
                {
                    "Sid": "NoServices",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}},
                },
            ],
        }
    )
    assert (
        evaluate(Request(trail, "s3:PutObject", "arn:aws:s3:::b/k"), [], [deny_services]).outcome
        is Outcome.EXPLICIT_DENY
    )
    assert evaluate(Request(SESSION, "s3:PutObject", "arn:aws:s3:::b/k"), [], [deny_services]).allowed


# --------------------------------------------------------------------------
# NotAction, NotResource, NotPrincipal


NOTACTION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html"


def test_notaction_with_allow() -> None:
    """NOTACTION, "NotAction with Allow".

    "The following example allows users to access all of the Amazon S3 actions
    that can be performed on any S3 resource except for deleting a bucket. This
    does not allow users to use the ListAllMyBuckets S3 API operation, because
    that action requires the "*" resource. This policy also does not allow
    actions in other services, because other service actions are not
    applicable to the S3 resources."
    """
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "arn:aws:s3:::*"}],
        }
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::b/k"), [policy]).allowed
    assert evaluate(Request(user, "s3:DeleteObject", "arn:aws:s3:::b/k"), [policy]).allowed
    assert not evaluate(Request(user, "s3:DeleteBucket", "arn:aws:s3:::b"), [policy]).allowed
    assert not evaluate(Request(user, "s3:ListAllMyBuckets", "*"), [policy]).allowed
    assert not evaluate(Request(user, "iam:ListUsers", "*"), [policy]).allowed
    assert not evaluate(
        Request(user, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCT}:table/t"), [policy]
    ).allowed


def test_notaction_allow_everything_except_iam() -> None:
    """NOTACTION: "The following example allows users to access every action in every AWS service except for IAM."."""
    policy = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "ec2:RunInstances", "*"), [policy]).allowed
    assert not evaluate(Request(user, "iam:CreateUser", "*"), [policy]).allowed
    assert not evaluate(Request(user, "IAM:createuser", "*"), [policy]).allowed


def test_notaction_with_deny_mfa() -> None:
    """NOTACTION, "NotAction with Deny" (DenyAllUsersNotUsingMFA).

    "denies access to non-IAM actions if the user is not signed in using MFA.
    If the user is signed in with MFA, then the "Condition" test fails and the
    final "Deny" statement has no effect. Note, however, that this would not
    grant the user access to any actions"
    """
    deny = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyAllUsersNotUsingMFA",
                    "Effect": "Deny",
                    "NotAction": "iam:*",
                    "Resource": "*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                }
            ],
        },
        "mfa",
    )
    allow_all = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "all"
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    no_mfa = {"aws:MultiFactorAuthPresent": False}
    assert (
        evaluate(Request(user, "s3:ListBucket", "arn:aws:s3:::b", no_mfa), [deny, allow_all]).outcome
        is Outcome.EXPLICIT_DENY
    )
    # Missing key with BoolIfExists: still denied.
    assert (
        evaluate(Request(user, "s3:ListBucket", "arn:aws:s3:::b"), [deny, allow_all]).outcome is Outcome.EXPLICIT_DENY
    )
    assert evaluate(Request(user, "iam:ListUsers", "*", no_mfa), [deny, allow_all]).allowed
    with_mfa = {"aws:MultiFactorAuthPresent": True}
    assert evaluate(Request(user, "s3:ListBucket", "arn:aws:s3:::b", with_mfa), [deny, allow_all]).allowed
    # The deny alone grants nothing.
    assert evaluate(Request(user, "s3:ListBucket", "arn:aws:s3:::b", with_mfa), [deny]).outcome is Outcome.IMPLICIT_DENY


def test_notresource_with_deny() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html

    HRPayroll: "The following policy explicitly denies access to all Amazon S3
    resources other than the listed resources. Note, however, that this policy
    does not grant the user access to any resources." ... "the policy affects
    only Amazon S3 actions ... If the action also included Amazon EC2 actions,
    then the policy would not deny access to any EC2 resources."
    """
    deny = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "s3:*",
                "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
            },
        },
        "HRPayroll",
    )
    allow = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "ec2:*"], "Resource": "*"}]},
        "broad",
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/jan.csv"), [deny, allow]).allowed
    assert (
        evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x"), [deny, allow]).outcome
        is Outcome.EXPLICIT_DENY
    )
    assert evaluate(Request(user, "s3:ListAllMyBuckets", "*"), [deny, allow]).outcome is Outcome.EXPLICIT_DENY
    assert evaluate(Request(user, "ec2:DescribeInstances", "*"), [deny, allow]).allowed
    assert not evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/jan.csv"), [deny]).allowed


def test_notresource_with_allow() -> None:
    """NotResource with Allow "allows all services and resources that are not explicitly listed"."""
    allow = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::HRBucket*"}],
        }
    )
    user = Principal.user(f"arn:aws:iam::{ACCT}:user/u")
    assert evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::other/x"), [allow]).allowed
    assert not evaluate(Request(user, "s3:GetObject", "arn:aws:s3:::HRBucket/x"), [allow]).allowed


NOTPRINCIPAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"


def test_notprincipal_with_deny_user() -> None:
    """NOTPRINCIPAL, "Example IAM user in the same or a different account".

    "all principals except the user named Bob in AWS account 444455556666 are
    explicitly denied access to a resource ... This example by itself does not
    grant access to Bob".  And: "If the NotPrincipal element contained only
    Bob's ARN, the effect of the policy might be to explicitly deny access to
    the AWS account that contains the user Bob" -- we model that pessimistic
    reading, so a NotPrincipal without the account denies Bob too.
    """
    bob = Principal.user("arn:aws:iam::444455556666:user/Bob")
    alice = Principal.user("arn:aws:iam::444455556666:user/Alice")

    def bucket_policy(not_principals: list[str]) -> object:
        return parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "NotPrincipal": {"AWS": not_principals},
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::BUCKETNAME", "arn:aws:s3:::BUCKETNAME/*"],
                    },
                    {
                        "Sid": "Everyone",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::BUCKETNAME/*",
                    },
                ],
            },
            "BucketPolicy",
        )

    good = bucket_policy(["arn:aws:iam::444455556666:user/Bob", "arn:aws:iam::444455556666:root"])
    allow_get = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "id"
    )

    def req(p: Principal) -> Request:
        return Request(p, "s3:GetObject", "arn:aws:s3:::BUCKETNAME/k", resource_account="111122223333")

    assert evaluate(req(bob), [allow_get], [good]).allowed
    assert evaluate(req(alice), [allow_get], [good]).outcome is Outcome.EXPLICIT_DENY
    only_bob = bucket_policy(["arn:aws:iam::444455556666:user/Bob"])
    assert evaluate(req(bob), [allow_get], [only_bob]).outcome is Outcome.EXPLICIT_DENY
    # Services are denied too: they are not listed.
    svc = Principal.service("logging.s3.amazonaws.com")
    assert evaluate(req(svc), [], [good]).outcome is Outcome.EXPLICIT_DENY


def test_notprincipal_with_deny_assumed_role() -> None:
    """NOTPRINCIPAL, "Example IAM role in the same or different account".

    "the NotPrincipal element contains the ARN of the assumed-role user
    (cross-account-audit-app), the role (cross-account-read-only-role), and the
    AWS account that the role belongs to (444455556666). If the NotPrincipal
    element was missing the ARN of the role, the effect of the policy might be
    to explicitly deny access to the role."
    """
    role = "arn:aws:iam::444455556666:role/cross-account-read-only-role"
    session = Principal.assumed_role(role, "cross-account-audit-app")
    full = [session.arn, role, "arn:aws:iam::444455556666:root"]

    def policy(names: list[str]) -> object:
        return parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "NotPrincipal": {"AWS": names},
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::Bucket_AccountAudit", "arn:aws:s3:::Bucket_AccountAudit/*"],
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": role},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::Bucket_AccountAudit/*",
                    },
                ],
            }
        )

    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    req = Request(session, "s3:GetObject", "arn:aws:s3:::Bucket_AccountAudit/x", resource_account="111122223333")
    assert evaluate(req, [ident], [policy(full)]).allowed
    assert (
        evaluate(req, [ident], [policy([session.arn, "arn:aws:iam::444455556666:root"])]).outcome
        is Outcome.EXPLICIT_DENY
    )
    other = Principal.assumed_role("arn:aws:iam::444455556666:role/other", "x")
    other_req = Request(other, "s3:GetObject", "arn:aws:s3:::Bucket_AccountAudit/x", resource_account="111122223333")
    assert evaluate(other_req, [ident], [policy(full)]).outcome is Outcome.EXPLICIT_DENY


def test_notprincipal_with_allow_excludes_listed() -> None:
    """NOTPRINCIPAL, "NotPrincipal With Allow": "allows all principals except the one named"."""
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "NotPrincipal": {"AWS": ROLE_ARN},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                }
            ],
        }
    )
    other = Principal.assumed_role(f"arn:aws:iam::{ACCT}:role/other")
    assert evaluate(Request(other, "s3:GetObject", "arn:aws:s3:::b/k"), [], [policy]).allowed
    assert not evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::b/k"), [], [policy]).allowed


# --------------------------------------------------------------------------
# KMS key policies

KEY_DEFAULT = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html"
KEY_POLICIES = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

DEFAULT_KEY_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
IAM_DECRYPT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "UseKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": KEY_ARN}
    ],
}


def test_kms_default_key_policy_delegates_to_iam() -> None:
    """KEY_DEFAULT, "Allows access to the AWS account and enables IAM policies".

    "It allows the account to use IAM policies to allow access to the KMS key,
    in addition to the key policy."  With the default statement an IAM allow
    works; without an IAM allow the account statement grants nothing.
    """
    key = parse_policy(DEFAULT_KEY_POLICY, "Key")
    ident = parse_policy(IAM_DECRYPT, "Role/use-key")
    d = evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [ident], [key])
    assert d.allowed and d.resource_kind is ResourceKind.KMS_KEY
    assert {s.sid for s in d.deciding} == {"Enable IAM User Permissions", "UseKey"}
    d = evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [], [key])
    assert d.outcome is Outcome.IMPLICIT_DENY and "delegates to IAM" in d.reason


def test_kms_without_account_statement_iam_cannot_grant() -> None:
    """KEY_DEFAULT: "Without this permission, IAM policies that allow access to the key are
    ineffective, although IAM policies that deny access to the key are still effective."

    KEY_POLICIES: "Unless the key policy explicitly allows it, you cannot use
    IAM policies to allow access to a KMS key."
    """
    key = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "KeyAdmins",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/KeyAdmin"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        "Key",
    )
    ident = parse_policy(IAM_DECRYPT, "Role/use-key")
    d = evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [ident], [key])
    assert d.outcome is Outcome.IMPLICIT_DENY
    assert "IAM policies cannot grant" in d.reason
    # No key policy at all: nothing can grant.
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [ident]).outcome is Outcome.IMPLICIT_DENY


def test_kms_key_policy_naming_role_grants_directly_and_iam_deny_still_applies() -> None:
    """KEY_POLICIES: a key policy can give a principal access by itself; KEY_DEFAULT: IAM denies stay effective."""
    key = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Users",
                    "Effect": "Allow",
                    "Principal": {"AWS": ROLE_ARN},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                }
            ],
        },
        "Key",
    )
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [], [key]).allowed
    deny = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "NoKms", "Effect": "Deny", "Action": "kms:*", "Resource": "*"}],
        },
        "deny",
    )
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [deny], [key]).outcome is Outcome.EXPLICIT_DENY


def test_kms_delegation_is_per_action_and_condition() -> None:
    """Delegation only covers what the account statement allows (its actions and conditions).

    The backup template's key policy lists actions for the account principal
    instead of kms:*; an IAM allow for an unlisted action must not work.
    """
    key = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountDescribes",
                    "Effect": "Allow",
                    "Principal": {"AWS": ACCT},
                    "Action": "kms:Describe*",
                    "Resource": "*",
                }
            ],
        },
        "Key",
    )
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": KEY_ARN}]},
        "Role/all-kms",
    )
    assert evaluate(Request(SESSION, "kms:DescribeKey", KEY_ARN), [ident], [key]).allowed
    assert not evaluate(Request(SESSION, "kms:Decrypt", KEY_ARN), [ident], [key]).allowed


def test_kms_cross_account() -> None:
    """KMS cross-account: the key policy must allow the external account (or principal) and the
    external principal's IAM policy must allow too (cross-account rule)."""
    key = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                DEFAULT_KEY_POLICY["Statement"][0],
                {
                    "Sid": "External",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            ],
        },
        "Key",
    )
    ext = Principal.assumed_role("arn:aws:iam::444455556666:role/ext")
    ident = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN}]},
        "ext",
    )
    assert evaluate(Request(ext, "kms:Decrypt", KEY_ARN), [ident], [key]).allowed
    assert not evaluate(Request(ext, "kms:Decrypt", KEY_ARN), [], [key]).allowed
    assert not evaluate(Request(ext, "kms:Encrypt", KEY_ARN), [ident], [key]).allowed


def test_root_user_still_needs_key_policy() -> None:
    """KEY_DEFAULT: "Unlike other AWS resource policies, an AWS KMS key policy does not
    automatically give permission to the account or any of its identities."."""
    root = Principal.account_root(ACCT)
    only_role = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "kms:*", "Resource": "*"}],
        }
    )
    assert not evaluate(Request(root, "kms:Decrypt", KEY_ARN), [], [only_role]).allowed
    assert evaluate(Request(root, "kms:Decrypt", KEY_ARN), [], [parse_policy(DEFAULT_KEY_POLICY)]).allowed


# --------------------------------------------------------------------------
# Role trust policies

TRUST_ROLE = f"arn:aws:iam::{ACCT}:role/Restore"


def test_trust_policy_service_principal() -> None:
    """Only the trust policy can let a service assume a role."""
    trust = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
            ],
        },
        "Role/trust",
    )
    lam = Principal.service("lambda.amazonaws.com")
    d = evaluate(Request(lam, "sts:AssumeRole", TRUST_ROLE), [], [trust])
    assert d.allowed
    assert not evaluate(
        Request(Principal.service("ec2.amazonaws.com"), "sts:AssumeRole", TRUST_ROLE), [], [trust]
    ).allowed


def test_trust_policy_naming_account_needs_identity_allow() -> None:
    """DENYALLOW: "IAM role trust policies and KMS key policies are exceptions to this logic,
    because they must explicitly allow access for principals."."""
    trust = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}}
            ],
        },
        "Restore/trust",
    )
    assume = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": TRUST_ROLE}],
        },
        "ops",
    )
    assert evaluate(Request(SESSION, "sts:AssumeRole", TRUST_ROLE), [assume], [trust]).allowed
    assert not evaluate(Request(SESSION, "sts:AssumeRole", TRUST_ROLE), [], [trust]).allowed
    # An identity allow without a trust policy statement is not enough.
    assert not evaluate(Request(SESSION, "sts:AssumeRole", TRUST_ROLE), [assume], []).allowed


# --------------------------------------------------------------------------
# Policy shape errors AWS would reject


def test_identity_policy_with_principal_is_rejected() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html

    "You cannot use the Principal element in an identity-based policy."
    """
    bad = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
        }
    )
    with pytest.raises(PolicyError):
        evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::b/k"), [bad])


def test_resource_policy_without_principal_is_rejected() -> None:
    """ "You must use the Principal element in resource-based policies." (same page)."""
    bad = parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    with pytest.raises(PolicyError):
        evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::b/k"), [], [bad])


def test_identity_statement_without_resource_is_rejected() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html

    "Statements must include either a Resource or a NotResource element." (Resource-based
    policies such as role trust policies omit it and cover the attached resource.)
    """
    bad = parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]})
    with pytest.raises(PolicyError):
        evaluate(Request(SESSION, "s3:GetObject", "arn:aws:s3:::b/k"), [bad])
