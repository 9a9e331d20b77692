"""The review's values, value by value: CloudFormation's own (DescribeChangeSet with
IncludePropertyValues, driven through botocore's Stubber with AWS's response shape: each detail's
Target with Path, BeforeValue, AfterValue and AttributeChangeType, the resource's BeforeContext and
AfterContext as encoded JSON), the values computed from the templates where CloudFormation gives
none, and the deep diff and template resolution they rest on."""
from __future__ import annotations

import json

import pytest
from botocore.stub import ANY

from backup_cfn.deploy.changeset import Change
from backup_cfn.deploy.review.model import ABSENT, SOURCE_AWS, SOURCE_COMPUTED, UNKNOWN
from backup_cfn.deploy.review.resolve import Resolver, pseudo_parameters
from backup_cfn.deploy.review.values import diff, resource_values
from backup_cfn.deploy.stack_spec import Options, StackSpec

from deploy_helpers import console, text
from cloudformation_stubs import CS_ID, DESCRIBE, NAME, REGION, STACK_ID, change_set_response, deployer, stack

PSEUDO = pseudo_parameters(STACK_ID, NAME)


def template(noncurrent_days: int, actions: list[str]) -> dict:
    """A bucket with two lifecycle rules, a function whose code is a parameter, and its role."""
    return {
        "Parameters": {"HandlerCodeKey": {"Type": "String"}},
        "Resources": {
            "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"LifecycleConfiguration": {"Rules": [
                {"Id": "CleanUpDeletedVersionsAndUploads", "Status": "Enabled",
                 "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days}},
                {"Id": "AbortIncompleteUploads", "Status": "Enabled",
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}}},
            "WorkerFunctionRole": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": "worker", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Sid": "StoreContent", "Effect": "Allow", "Action": actions,
                    "Resource": {"Fn::Sub": "${DataBucket.Arn}/content/*"}}]}}]}},
            "WorkerFunction": {"Type": "AWS::Lambda::Function", "Properties": {
                "Code": {"S3Bucket": "artifacts", "S3Key": {"Ref": "HandlerCodeKey"}},
                "Role": {"Fn::GetAtt": ["WorkerFunctionRole", "Arn"]}, "Handler": "handlers.worker.handler",
                "Runtime": "python3.14"}},
        },
    }


def rendered(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def context(noncurrent_days: str) -> str:
    """A BeforeContext/AfterContext as CloudFormation encodes it: resolved values, all as strings."""
    return json.dumps({"Properties": {"LifecycleConfiguration": {"Rules": [
        {"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
         "Id": "CleanUpDeletedVersionsAndUploads"},
        {"Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": "1"},
         "Id": "AbortIncompleteUploads"}]}}}, separators=(",", ":"))


def detail(name, path, before, after, source="DirectModification", evaluation="Static", causing=None,
           change_type="Modify", recreation="Never"):
    target = {"Attribute": "Properties", "Name": name, "RequiresRecreation": recreation, "Path": path,
              "AttributeChangeType": change_type}
    if before is not None:
        target["BeforeValue"] = before
    if after is not None:
        target["AfterValue"] = after
    entry = {"Target": target, "Evaluation": evaluation, "ChangeSource": source}
    if causing:
        entry["CausingEntity"] = causing
    return entry


def modify(logical_id, resource_type, details, before_context=None, after_context=None, physical_id="x"):
    change = {"Action": "Modify", "LogicalResourceId": logical_id, "PhysicalResourceId": physical_id,
              "ResourceType": resource_type, "Replacement": "False", "Scope": ["Properties"], "Details": details}
    if before_context:
        change["BeforeContext"], change["AfterContext"] = before_context, after_context
    return {"Type": "Resource", "ResourceChange": change}


TRUNCATED_BEFORE = "(Truncated-Signature):1d47a8c5906537dd3baa0729fe9e45b3b79f11df5e07ad6c29b1d8c1e4d3a2f1"
TRUNCATED_AFTER = "(Truncated-Signature):de795a4a649013332ccb10da08f3f9a6b4295e20e60bc93205e5e026f47db1a0"


def aws_change_set() -> dict:
    """AWS's DescribeChangeSet (IncludePropertyValues=True) for: a nested list value (a lifecycle
    rule's NoncurrentDays, Path through Rules/0), a parameter-driven change (Code from
    HandlerCodeKey: CloudFormation lists it twice, the dynamic direct modification and the static
    parameter reference), and a role whose Policies come truncated to signatures."""
    return change_set_response(changes=[
        modify("DataBucket", "AWS::S3::Bucket", [detail(
            "LifecycleConfiguration", "/Properties/LifecycleConfiguration/Rules/0/NoncurrentVersionExpiration/NoncurrentDays",
            "7", "14")], context("7"), context("14"), physical_id="backup-cfn-dev-databucket-1x2y"),
        modify("WorkerFunction", "AWS::Lambda::Function", [
            detail("Code", "/Properties/Code/S3Key", "handlers/aaa.zip", "handlers/bbb.zip", evaluation="Dynamic"),
            detail("Code", "/Properties/Code/S3Key", "handlers/aaa.zip", "handlers/bbb.zip",
                   source="ParameterReference", causing="HandlerCodeKey")],
               json.dumps({"Properties": {"Code": {"S3Bucket": "artifacts", "S3Key": "handlers/aaa.zip"}}}),
               json.dumps({"Properties": {"Code": {"S3Bucket": "artifacts", "S3Key": "handlers/bbb.zip"}}}),
               physical_id="backup-cfn-dev-worker"),
        modify("WorkerFunctionRole", "AWS::IAM::Role", [detail("Policies", "/Properties/Policies", TRUNCATED_BEFORE,
                                                               TRUNCATED_AFTER)], physical_id="backup-cfn-dev-role"),
    ])


def test_aws_values_are_shown_with_natural_keys_causes_and_computed_permissions(cfn):
    before = template(7, ["s3:PutObject"])
    after = template(14, ["s3:PutObject", "s3:DeleteObject"])
    deployed = stack("UPDATE_COMPLETE")
    deployed["Stacks"][0]["Parameters"] = [{"ParameterKey": "HandlerCodeKey", "ParameterValue": "handlers/aaa.zip"}]
    cfn.stubber.add_response("describe_stacks", deployed, {"StackName": NAME})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Tags": ANY, "Capabilities": ANY,
        "Description": ANY, "TemplateBody": ANY,
        "Parameters": [{"ParameterKey": "HandlerCodeKey", "ParameterValue": "handlers/bbb.zip"}]})
    cfn.stubber.add_response("describe_change_set", aws_change_set(), DESCRIBE)
    cfn.stubber.add_response("get_template", {"TemplateBody": rendered(before), "StagesAvailable": ["Original"]},
                             {"StackName": STACK_ID, "TemplateStage": "Original"})
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    spec = StackSpec("primary", NAME, REGION, rendered(after), {"HandlerCodeKey": "handlers/bbb.zip"}, {})
    out = console()
    result = deployer(cfn, out).deploy(spec, Options(), diff_only=True)

    printed = text(out)
    assert "LifecycleConfiguration.Rules[Id=CleanUpDeletedVersionsAndUploads].NoncurrentVersionExpiration." \
           "NoncurrentDays: 7 → 14\n" in printed
    assert "Code.S3Key: handlers/aaa.zip → handlers/bbb.zip (from HandlerCodeKey)\n" in printed
    assert "parameter HandlerCodeKey: handlers/aaa.zip → handlers/bbb.zip" in printed
    # Policies come truncated: the permissions are computed from the templates, statement by statement.
    assert "Policies: 1 permission line(s) gained, 0 lost (see permissions)" in printed
    assert "WorkerFunctionRole gains s3:DeleteObject on ${DataBucket.Arn}/content/*" in printed
    assert "s3:PutObject" not in printed.split("permissions:")[1]
    values = {r.change.logical_id: r.values for r in result.review.resources}
    assert [(v.source, v.causes) for v in values["WorkerFunction"]] == [(SOURCE_AWS, ("HandlerCodeKey",))]
    assert values["DataBucket"][0].source == SOURCE_AWS


def test_without_contexts_the_detail_path_is_named_from_the_templates():
    change = Change.from_api(modify("DataBucket", "AWS::S3::Bucket", [detail(
        "LifecycleConfiguration", "/Properties/LifecycleConfiguration/Rules/0/NoncurrentVersionExpiration/NoncurrentDays",
        "7", "14")]))
    old = Resolver(template(7, []), {}, PSEUDO).resources()["DataBucket"]
    new = Resolver(template(14, []), {}, PSEUDO).resources()["DataBucket"]
    (value,) = resource_values(change, old, new, {})
    assert (value.path, value.before, value.after, value.source) == (
        "LifecycleConfiguration.Rules[Id=CleanUpDeletedVersionsAndUploads].NoncurrentVersionExpiration.NoncurrentDays",
        "7", "14", SOURCE_AWS)


def test_values_known_only_after_deploy_say_so_and_removed_values_are_absent():
    change = Change.from_api(modify("WorkerFunction", "AWS::Lambda::Function", [
        detail("Environment", "/Properties/Environment/Variables/TOPIC_ARN", "arn:aws:sns:us-east-1:1:old",
               "{{changeSet:KNOWN_AFTER_APPLY}}", evaluation="Dynamic"),
        detail("Environment", "/Properties/Environment/Variables/DEBUG", "1", None, change_type="Remove")]))
    values = resource_values(change, None, None, {})
    assert [(v.path, v.before, v.after) for v in values] == [
        ("Environment.Variables.TOPIC_ARN", "arn:aws:sns:us-east-1:1:old", UNKNOWN),
        ("Environment.Variables.DEBUG", "1", ABSENT)]


def test_the_emulator_gives_no_details_so_values_are_computed_with_their_parameter():
    change = Change.from_api(modify("WorkerFunction", "AWS::Lambda::Function", []))
    old = Resolver(template(7, []), {"HandlerCodeKey": "handlers/aaa.zip"}, PSEUDO).resources()["WorkerFunction"]
    new = Resolver(template(7, []), {"HandlerCodeKey": "handlers/bbb.zip"}, PSEUDO).resources()["WorkerFunction"]
    (value,) = resource_values(change, old, new, {"HandlerCodeKey": ("handlers/aaa.zip", "handlers/bbb.zip")})
    assert (value.path, value.before, value.after, value.source, value.causes) == (
        "Code.S3Key", "handlers/aaa.zip", "handlers/bbb.zip", SOURCE_COMPUTED, ("HandlerCodeKey",))


# --- the deep diff ----------------------------------------------------------------------------------

def test_lists_are_compared_by_natural_key_so_reordering_is_no_change():
    before = {"Tags": [{"Key": "Env", "Value": "dev"}, {"Key": "Team", "Value": "a"}],
              "Statement": [{"Sid": "A", "Action": "s3:GetObject"}, {"Sid": "B", "Action": "s3:PutObject"}]}
    after = {"Tags": [{"Key": "Team", "Value": "b"}, {"Key": "Env", "Value": "dev"}],
             "Statement": [{"Sid": "B", "Action": "s3:PutObject"}, {"Sid": "C", "Action": "kms:Decrypt"}]}
    assert diff(before, after) == [
        ("Tags[Key=Team].Value", "a", "b"),
        ("Statement[Sid=A]", {"Sid": "A", "Action": "s3:GetObject"}, ABSENT),
        ("Statement[Sid=C]", ABSENT, {"Sid": "C", "Action": "kms:Decrypt"})]


def test_lists_without_a_natural_key_are_compared_by_position_and_scalar_lists_whole():
    assert diff({"Rules": [{"Days": 1}, {"Days": 2}]}, {"Rules": [{"Days": 1}, {"Days": 3}, {"Days": 4}]}) == [
        ("Rules[1].Days", 2, 3), ("Rules[2]", ABSENT, {"Days": 4})]
    assert diff({"Subnets": ["a", "b"]}, {"Subnets": ["a", "c"]}) == [("Subnets", ["a", "b"], ["a", "c"])]
    assert diff({"Role": {"Ref": "A"}}, {"Role": {"Ref": "B"}}) == [("Role", {"Ref": "A"}, {"Ref": "B"})]


# --- resolving a template offline -------------------------------------------------------------------

def test_parameters_pseudo_parameters_and_functions_resolve_and_references_stay_readable():
    document = {
        "Parameters": {"Env": {"Type": "String", "Default": "dev"}, "Secret": {"Type": "String", "NoEcho": True},
                       "Zones": {"Type": "CommaDelimitedList"}},
        "Mappings": {"Sizes": {"dev": {"Memory": "256"}}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
        "Resources": {"Thing": {"Type": "AWS::X::Y", "Properties": {
            "Arn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Env}-${AWS::AccountId}/${Bucket.Arn}"},
            "Joined": {"Fn::Join": ["/", [{"Ref": "AWS::Region"}, {"Ref": "Bucket"}]]},
            "Picked": {"Fn::If": ["IsProd", "big", {"Ref": "AWS::NoValue"}]},
            "Memory": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]},
            "Zone": {"Fn::Select": ["1", {"Ref": "Zones"}]},
            "Secret": {"Ref": "Secret"}, "Target": {"Fn::GetAtt": "Queue.Arn"},
            "Literal": {"Fn::Sub": "${!NotAVariable}"},
        }}},
    }
    properties = Resolver(document, {"Zones": "a, b", "Secret": "hunter2"}, PSEUDO).resources()["Thing"]["Properties"]
    assert properties == {
        "Arn": {"Fn::Sub": "arn:aws:s3:::dev-123456789012/${Bucket.Arn}"},
        "Joined": {"Fn::Sub": "us-east-1/${Bucket}"},
        "Memory": "256", "Zone": "b", "Secret": "****", "Target": {"Fn::GetAtt": ["Queue", "Arn"]},
        "Literal": "${NotAVariable}"}


@pytest.mark.parametrize("environment, expected", [("prod", True), ("dev", False)])
def test_conditional_resources_follow_their_condition(environment, expected):
    document = {"Parameters": {"Env": {"Type": "String"}},
                "Conditions": {"IsProd": {"Fn::And": [{"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                                                      {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}]}},
                "Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "IsProd", "Properties": {}}}}
    assert ("Alarm" in Resolver(document, {"Env": environment}, PSEUDO).resources()) is expected
