"""The capture function's role, evaluated against the committed templates with AWS's evaluation
logic (backup_cfn/permissions): what it does is allowed (its calls are recorded in
tests/engine/test_capture.py and the conformance scenario, and evaluated in
tests/test_permissions_conformance.py), and what an attacker holding it would try is DENIED, each
for the reason the templates give."""
from __future__ import annotations

import pytest

from backup_cfn.config import load_environment
from backup_cfn.permissions.conformance import check_calls, check_services
from backup_cfn.permissions.model import build_model
from backup_cfn.permissions.recorder import Call

CAPTURE = "CaptureFunctionRole"
ALIASES = {"backup": "BackupBucket", "source": "SourceBucket", "jobs": "JobQueue", "capture": "CaptureQueue",
           "runs": "RunsTable", "content": "ContentIndexTable", "initiator": "InitiatorFunction", "key": "BackupKey"}


def call(service: str, operation: str, **params) -> Call:
    return Call(CAPTURE, service, operation, params, "us-east-1", ALIASES)


ALLOWED = {
    "read a changed source object by version": call("s3", "GetObject", Bucket="source", Key="ann/a.pdf", VersionId="v1"),
    "tell a deleted source object (HEAD 404 needs ListBucket)": call("s3", "ListObjectsV2", Bucket="source",
                                                                     Prefix="ann/a.pdf"),
    "copy new content into the store": call("s3", "CopyObject", Bucket="backup", Key="content/ab/cd/" + "ab" * 32,
                                            CopySource={"Bucket": "source", "Key": "ann/a.pdf", "VersionId": "v1"},
                                            TaggingDirective="REPLACE", MetadataDirective="REPLACE"),
    "write a journal segment (once)": call("s3", "PutObject", Bucket="backup",
                                           Key="journal/ann/20261207T000000000000Z-x.json.gz", IfNoneMatch="*"),
    "claim content in the index": call("dynamodb", "UpdateItem", TableName="content",
                                       Key={"content_hash": {"S": "ab" * 32}}),
    "count a user's burst": call("dynamodb", "UpdateItem", TableName="runs",
                                 Key={"run_id": {"S": "BURST#ann"}, "item": {"S": "1800000000"}}),
    "take its batch off the capture queue": call("sqs", "DeleteMessage", QueueUrl="capture", ReceiptHandle="r"),
}

DENIED = {
    "overwrite a snapshot": call("s3", "PutObject", Bucket="backup", Key="manifests/ann/20261207T020000Z.json.gz"),
    "read a snapshot": call("s3", "GetObject", Bucket="backup", Key="manifests/ann/20261207T020000Z.json.gz"),
    "delete stored content": call("s3", "DeleteObject", Bucket="backup", Key="content/ab/cd/" + "ab" * 32),
    "delete a journal segment": call("s3", "DeleteObject", Bucket="backup", Key="journal/ann/x.json.gz"),
    "write over a journal segment": call("s3", "PutObject", Bucket="backup",
                                         Key="journal/ann/20261207T000000000000Z-x.json.gz"),
    "delete a content version": call("s3", "DeleteObject", Bucket="backup", Key="content/ab/cd/x", VersionId="v1"),
    "write to the source": call("s3", "PutObject", Bucket="source", Key="ann/a.pdf"),
    "delete from the source": call("s3", "DeleteObject", Bucket="source", Key="ann/a.pdf"),
    "turn the source's events off": call("s3", "PutBucketNotificationConfiguration", Bucket="source",
                                         NotificationConfiguration={}),
    "disable the capture rule": call("events", "DisableRule", Name="SourceChangeRule"),
    "retarget the capture rule": call("events", "PutTargets", Rule="SourceChangeRule", Targets=[]),
    "change a run's record": call("dynamodb", "UpdateItem", TableName="runs",
                                  Key={"run_id": {"S": "20261207T020000Z"}, "item": {"S": "RUN"}}),
    "record a job": call("dynamodb", "TransactWriteItems", TransactItems=[{"Update": {
        "TableName": "runs", "Key": {"run_id": {"S": "20261207T020000Z"}, "item": {"S": "USER#ann"}}}}]),
    "delete an index entry": call("dynamodb", "DeleteItem", TableName="content", Key={"content_hash": {"S": "ab" * 32}}),
    "send a backup job": call("sqs", "SendMessage", QueueUrl="jobs", MessageBody="{}"),
    "take backup jobs": call("sqs", "ReceiveMessage", QueueUrl="jobs"),
    "start a run": call("lambda", "Invoke", FunctionName="initiator"),
    "decrypt with the key directly": call("kms", "Decrypt", KeyId="key", CiphertextBlob=b"x"),
}


@pytest.mark.parametrize("env_name", ("dev", "prod", "local"))
def test_what_the_capture_function_does_is_allowed(env_name):
    model = build_model(load_environment(env_name))
    denials = check_calls(model, list(ALLOWED.values()))
    assert not denials, "\n".join(d.line() for d in denials)


@pytest.mark.parametrize("attempt", sorted(DENIED))
@pytest.mark.parametrize("env_name", ("dev", "prod"))
def test_what_an_attacker_holding_the_capture_role_tries_is_denied(env_name, attempt):
    denials = check_calls(build_model(load_environment(env_name)), [DENIED[attempt]])
    assert denials and all(d.why != "not evaluated" for d in denials), denials


@pytest.mark.parametrize("env_name", ("dev", "prod", "local"))
def test_eventbridge_delivers_the_source_changes_to_the_encrypted_capture_queue(env_name):
    """The queue's policy names the capture rule, and the key policy lets EventBridge encrypt for it:
    without either, EventBridge's deliveries fail silently (and land in the failure queue)."""
    model = build_model(load_environment(env_name))
    from backup_cfn.permissions.services import schedules
    delivery = [a for a in schedules(model) if a.need.why.startswith("SourceChangeRule:")]
    assert {a.need.action for a in delivery} == {"sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"}
    assert "SourceChangeRule: an event into CaptureQueue" in {a.need.why for a in delivery}
    assert not check_services(model, delivery)


def test_another_rule_cannot_send_to_the_capture_queue():
    model = build_model(load_environment("prod"))
    from backup_cfn.permissions.requests import Need
    from backup_cfn.permissions.services import ServiceAction
    queue = model.resources["CaptureQueue"]
    forged = ServiceAction("events.amazonaws.com", Need("sqs:SendMessage", queue.arn, {
        "aws:SourceArn": f"arn:aws:events:us-east-1:{model.account}:rule/someone-elses-rule",
        "aws:SourceAccount": model.account}, "another rule"))
    assert check_services(model, [forged])
