"""CloudFormation intrinsic resolution, default attributes, and the project's real templates."""

from __future__ import annotations

from typing import Any

import pytest

from backup_cfn.permissions.iam import Outcome, Principal, Request, ResourceKind
from backup_cfn.permissions.iam.cfn import (
    NO_VALUE,
    CfnError,
    Pseudo,
    Resolver,
    UnresolvedError,
    build_policy_store,
    default_namer,
    extract_policies,
    find_intrinsics,
)

PSEUDO = Pseudo(account_id="111122223333", region="eu-west-1", stack_name="demo")

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Env": {"Type": "String", "Default": "dev"},
        "Subnets": {"Type": "CommaDelimitedList", "Default": "a,b"},
        "Required": {"Type": "String"},
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "NotProd"}, {"Fn::Equals": ["x", "x"]}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "Both"}]},
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "NamedBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-named-${Env}"}},
        },
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "runs"}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "FifoQueue": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Key": {"Type": "AWS::KMS::Key"},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "NamedRole": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "fixed-role", "Path": "/svc/"}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "demo-fn"}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Function}"}}},
        "Trail": {"Type": "AWS::CloudTrail::Trail", "Properties": {"TrailName": "audit"}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {"Name": "nightly"}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": "errors"}},
        "ProdOnly": {"Type": "AWS::S3::Bucket", "Condition": "IsProd"},
    },
}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(TEMPLATE, pseudo=PSEUDO, parameters={"Required": "given"})


def test_ref_parameters_and_pseudo(resolver: Resolver) -> None:
    r = resolver.resolve
    assert r({"Ref": "Env"}) == "dev"
    assert r({"Ref": "Required"}) == "given"
    assert r({"Ref": "Subnets"}) == ["a", "b"]
    assert r({"Ref": "AWS::AccountId"}) == "111122223333"
    assert r({"Ref": "AWS::Region"}) == "eu-west-1"
    assert r({"Ref": "AWS::Partition"}) == "aws"
    assert r({"Ref": "AWS::StackName"}) == "demo"
    assert r({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert r({"Ref": "AWS::StackId"}).startswith("arn:aws:cloudformation:eu-west-1:111122223333:stack/demo/")
    with pytest.raises(UnresolvedError):
        Resolver(TEMPLATE).resolve({"Ref": "Required"})
    with pytest.raises(UnresolvedError):
        r({"Ref": "Nope"})


def test_default_attributes(resolver: Resolver) -> None:
    a = resolver.attributes
    assert a("Bucket")["Ref"] == "demo-bucket"
    assert a("Bucket")["Arn"] == "arn:aws:s3:::demo-bucket"
    assert a("NamedBucket")["Ref"] == "demo-named-dev"
    assert a("Table")["Arn"] == "arn:aws:dynamodb:eu-west-1:111122223333:table/runs"
    assert a("Queue")["Ref"] == "https://sqs.eu-west-1.amazonaws.com/111122223333/demo-queue"
    assert a("Queue")["Arn"] == "arn:aws:sqs:eu-west-1:111122223333:demo-queue"
    assert a("Queue")["QueueName"] == "demo-queue"
    assert a("FifoQueue")["QueueName"] == "demo-fifoqueue.fifo"
    assert a("Topic")["Ref"] == a("Topic")["TopicArn"] == "arn:aws:sns:eu-west-1:111122223333:demo-topic"
    key = a("Key")
    assert key["Arn"] == f"arn:aws:kms:eu-west-1:111122223333:key/{key['Ref']}"
    assert a("Role")["Arn"] == "arn:aws:iam::111122223333:role/demo-role"
    assert a("NamedRole")["Ref"] == "fixed-role"
    assert a("NamedRole")["Arn"] == "arn:aws:iam::111122223333:role/svc/fixed-role"
    assert a("Function")["Arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:demo-fn"
    assert a("Logs")["Ref"] == "/aws/lambda/demo-fn"
    assert a("Logs")["Arn"] == "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/demo-fn:*"
    assert a("Trail")["Arn"] == "arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit"
    assert a("Rule")["Arn"] == "arn:aws:events:eu-west-1:111122223333:rule/nightly"
    assert a("Alarm")["Arn"] == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:errors"


def test_custom_namer_and_overrides() -> None:
    res = Resolver(
        TEMPLATE,
        pseudo=PSEUDO,
        parameters={"Required": "x"},
        namer=lambda logical, rtype: f"custom-{logical.lower()}",
        attributes={"Bucket": {"Ref": "real-bucket", "Arn": "arn:aws:s3:::real-bucket"}},
    )
    assert res.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::real-bucket"
    assert res.resolve({"Ref": "Queue"}).endswith("/custom-queue")
    assert default_namer("Stack")("MyBucket", "AWS::S3::Bucket") == "stack-mybucket"


def test_getatt_forms(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == resolver.resolve({"Fn::GetAtt": "Queue.Arn"})
    with pytest.raises(UnresolvedError, match="no attribute Queue.Nope"):
        resolver.resolve({"Fn::GetAtt": ["Queue", "Nope"]})
    with pytest.raises(UnresolvedError):
        resolver.resolve({"Fn::GetAtt": ["Missing", "Arn"]})


def test_sub_forms(resolver: Resolver) -> None:
    r = resolver.resolve
    assert r({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}) == "arn:aws:s3:::demo-bucket/*"
    assert r({"Fn::Sub": "${Queue.Arn}"}) == "arn:aws:sqs:eu-west-1:111122223333:demo-queue"
    assert r({"Fn::Sub": "${Env}-${Required}"}) == "dev-given"
    assert r({"Fn::Sub": "home/${!aws:username}/*"}) == "home/${aws:username}/*"
    assert (
        r({"Fn::Sub": ["${Arn}/x/${AWS::Region}", {"Arn": {"Fn::GetAtt": ["Bucket", "Arn"]}}]})
        == "arn:aws:s3:::demo-bucket/x/eu-west-1"
    )
    assert r({"Fn::Sub": ["${Env}", {"Env": "overridden"}]}) == "overridden"


def test_join_select_split_getazs(resolver: Resolver) -> None:
    r = resolver.resolve
    assert r({"Fn::Join": [":", ["a", {"Ref": "Env"}, "c"]]}) == "a:dev:c"
    assert r({"Fn::Join": [",", {"Ref": "Subnets"}]}) == "a,b"
    assert r({"Fn::Select": [1, {"Fn::Split": [":", "arn:aws:s3:::b"]}]}) == "aws"
    assert r({"Fn::Select": ["5", {"Fn::Split": [":", "arn:aws:s3:::b"]}]}) == "b"
    assert r({"Fn::Select": [0, {"Fn::GetAZs": ""}]}) == "eu-west-1a"
    assert r({"Fn::GetAZs": {"Ref": "AWS::Region"}}) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    with pytest.raises(UnresolvedError):
        r({"Fn::Select": [9, ["a"]]})


def test_conditions_and_if(resolver: Resolver) -> None:
    assert resolver.condition("IsProd") is False
    assert resolver.condition("NotProd") is True
    assert resolver.condition("Both") is True
    assert resolver.condition("Either") is True
    r = resolver.resolve
    assert r({"Fn::If": ["IsProd", "p", "d"]}) == "d"
    prod = Resolver(TEMPLATE, pseudo=PSEUDO, parameters={"Env": "prod", "Required": "x"})
    assert prod.resolve({"Fn::If": ["IsProd", "p", "d"]}) == "p"
    assert prod.condition("Either") is True and prod.condition("Both") is False


def test_novalue_removal(resolver: Resolver) -> None:
    frag = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}, "c"],
        "Nested": {"Ref": "AWS::NoValue"},
    }
    assert resolver.resolve(frag) == {"Keep": 1, "List": ["a", "c"]}
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_conditional_resources(resolver: Resolver) -> None:
    assert not resolver.resource_exists("ProdOnly")
    with pytest.raises(UnresolvedError, match="Condition is false"):
        resolver.resolve({"Ref": "ProdOnly"})


def test_other_intrinsics(resolver: Resolver) -> None:
    tmpl = dict(TEMPLATE, Mappings={"M": {"eu-west-1": {"Ami": "ami-1"}}})
    res = Resolver(tmpl, pseudo=PSEUDO, parameters={"Required": "x"}, imports={"Shared-Arn": "arn:aws:s3:::shared"})
    assert res.resolve({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Ami"]}) == "ami-1"
    assert res.resolve({"Fn::ImportValue": "Shared-Arn"}) == "arn:aws:s3:::shared"
    assert res.resolve({"Fn::Base64": "hi"}) == "aGk="
    with pytest.raises(CfnError, match="unsupported intrinsic"):
        res.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]})
    with pytest.raises(UnresolvedError):
        res.resolve({"Fn::ImportValue": "Missing"})


def test_circular_names_detected() -> None:
    tmpl = {
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "${B}-a"}}},
            "B": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "${A}-b"}}},
        }
    }
    with pytest.raises(CfnError, match="circular"):
        Resolver(tmpl).resolve({"Ref": "A"})


def test_find_intrinsics() -> None:
    assert find_intrinsics({"a": [{"Ref": "X"}], "b": {"c": {"Fn::Sub": "x"}}}) == ["a[0].Ref", "b.c.Fn::Sub"]
    assert find_intrinsics({"Statement": [{"Resource": "arn:aws:s3:::b"}]}) == []


def test_extract_small_template() -> None:
    tmpl = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Key": {"Type": "AWS::KMS::Key"},  # no KeyPolicy -> KMS default policy
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
                },
            },
            "Extra": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "extra",
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sqs:SendMessage",
                                "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                            },
                            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Fn::GetAtt": ["Key", "Arn"]}},
                        ],
                    },
                },
            },
            "QueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "Queue"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "NoHttp",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "sqs:*",
                                "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
        }
    }
    res = Resolver(tmpl, pseudo=PSEUDO)
    ex = extract_policies(res)
    kinds = sorted(p.kind for p in ex.policies)
    assert kinds == ["identity", "key", "queue", "trust"]
    assert any("AWSLambdaBasicExecutionRole" in u for u in ex.unmodelled)
    store = build_policy_store(res, extraction=ex)
    role = store.principal("Role")
    queue = res.get_att("Queue", "Arn")
    assert store.evaluate(Request(role, "sqs:SendMessage", queue)).allowed
    assert (
        store.evaluate(Request(role, "sqs:SendMessage", queue, {"aws:SecureTransport": False})).outcome
        is Outcome.EXPLICIT_DENY
    )
    d = store.evaluate(Request(role, "kms:Decrypt", res.get_att("Key", "Arn")))
    assert d.allowed and d.resource_kind is ResourceKind.KMS_KEY
    lam = Principal.service("lambda.amazonaws.com")
    role_arn = res.get_att("Role", "Arn")
    assert store.evaluate(Request(lam, "sts:AssumeRole", role_arn)).allowed
    assert not store.evaluate(Request(Principal.service("ec2.amazonaws.com"), "sts:AssumeRole", role_arn)).allowed
    # The trust policy does not turn iam:PassRole into a trust-policy decision.
    assert store.evaluate(Request(role, "iam:PassRole", role_arn)).resource_kind is ResourceKind.GENERIC

