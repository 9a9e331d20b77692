"""CloudFormation as botocore's Stubber answers for it, with AWS's response shapes and messages:
the stacks, events and change sets the stubbed deploy and review tests script."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.stub import ANY
from troposphere import Output, Ref, Template, s3, sns

from backup_cfn.deploy import changeset
from backup_cfn.deploy.stack_deployer import StackDeployer
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.deploy.stack_spec import StackSpec

from deploy_helpers import console

REGION = "us-east-1"
NAME = "backup-cfn-dev"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{NAME}/4f3c2b10-0d6e-11ef-9d1a-0a1b2c3d4e5f"
CS_ID = f"arn:aws:cloudformation:{REGION}:123456789012:changeSet/backup-cfn-20260101-000000/6a7b8c9d-1111-2222-3333-444455556666"
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
# Every DescribeChangeSet asks for the property values before and after.
DESCRIBE = {"ChangeSetName": CS_ID, "IncludePropertyValues": True}
EMPTY_REASONS = [
    "The submitted information didn't contain changes. Submit different information to create a change set.",
    "No updates are to be performed.",
]


def hand_made_template() -> str:
    t = Template(Description="probe")
    bucket = t.add_resource(s3.Bucket("DataBucket", DeletionPolicy="Retain", UpdateReplacePolicy="Retain"))
    t.add_resource(sns.Topic("AlertTopic"))
    t.add_output(Output("DataBucketName", Value=Ref(bucket)))
    return json.dumps(t.to_dict(), indent=2, sort_keys=True) + "\n"


def spec(production=False, tags=None) -> StackSpec:
    return StackSpec("primary", NAME, REGION, hand_made_template(), {}, tags or {"Environment": "dev"}, production)


def deployer(client, out=None, sleeps=None) -> StackDeployer:
    poll = Poll(interval=7, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return StackDeployer(client, None, console=out or console(), poll=poll,
                         artifacts_bucket=lambda: pytest.fail("no artifacts bucket expected"))


def stack(status, tags=(), outputs=(), protected=False):
    return {"Stacks": [{"StackId": STACK_ID, "StackName": NAME, "CreationTime": NOW, "StackStatus": status,
                        "Tags": list(tags), "Outputs": list(outputs), "Parameters": [],
                        "EnableTerminationProtection": protected}]}


def missing(client, name=NAME):
    client.stubber.add_client_error("describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
                                    400, expected_params={"StackName": name})


def event(logical_id, status, reason=None, resource_type="AWS::S3::Bucket", n=0):
    item = {"StackId": STACK_ID, "EventId": f"{logical_id}-{status}-{n}", "StackName": NAME,
            "LogicalResourceId": logical_id, "PhysicalResourceId": "", "ResourceType": resource_type,
            "Timestamp": NOW + dt.timedelta(seconds=n), "ResourceStatus": status}
    if reason:
        item["ResourceStatusReason"] = reason
    return item


def stack_event(status, reason=None, n=0):
    return event(NAME, status, reason, "AWS::CloudFormation::Stack", n)


def newest_first(*events):
    return {"StackEvents": list(reversed(events))}


def resource_change(action, logical_id, resource_type="AWS::S3::Bucket", replacement=None, policy_action=None,
                    properties=(), scope=("Properties",)):
    change = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type,
              "Scope": list(scope) if action == "Modify" else [],
              "Details": [{"Target": {"Attribute": "Properties", "Name": p, "RequiresRecreation": "Always"},
                           "Evaluation": "Static", "ChangeSource": "DirectModification"} for p in properties]}
    if replacement:
        change["Replacement"] = replacement
    if policy_action:
        change["PolicyAction"] = policy_action
    return {"Type": "Resource", "ResourceChange": change}


def change_set_response(status="CREATE_COMPLETE", reason=None, changes=(), token=None):
    response = {"ChangeSetName": "backup-cfn-20260101-000000", "ChangeSetId": CS_ID, "StackId": STACK_ID,
                "StackName": NAME, "Status": status, "ExecutionStatus": "AVAILABLE" if status == "CREATE_COMPLETE"
                else "UNAVAILABLE", "CreationTime": NOW, "Changes": list(changes)}
    if reason:
        response["StatusReason"] = reason
    if token:
        response["NextToken"] = token
    return response


def deployed_template(client, body=None):
    """GetTemplate (Original) of the deployed stack, as AWS answers it: the review reads it for
    the values CloudFormation does not give."""
    client.stubber.add_response("get_template", {"TemplateBody": body or hand_made_template(),
                                                 "StagesAvailable": ["Original", "Processed"]},
                                {"StackName": STACK_ID, "TemplateStage": "Original"})


def plan(client, status_before, change_set, change_set_type="UPDATE", diff=False):
    """describe_stacks, list_change_sets (none stale; not for diff), create_change_set, describe_change_set,
    and the deployed template when the change set modifies or removes something."""
    client.stubber.add_response("describe_stacks", stack(status_before), {"StackName": NAME})
    if not diff:
        client.stubber.add_response("list_change_sets", {"Summaries": []}, {"StackName": STACK_ID})
    client.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID},
                                {"StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": change_set_type,
                                 "Parameters": [], "Tags": ANY, "Capabilities": changeset.CAPABILITIES,
                                 "Description": ANY, "TemplateBody": ANY})
    client.stubber.add_response("describe_change_set", change_set, DESCRIBE)
    if change_set_type == "UPDATE" and any(c["ResourceChange"]["Action"] in ("Modify", "Remove")
                                           for c in change_set.get("Changes", [])):
        deployed_template(client)
