"""The emulator's S3 -> EventBridge -> SQS delivery, in the shape AWS documents (S3 User Guide,
"EventBridge event message structure"): backup_cfn/local/patches/s3events.py, docs/emulator.md."""
from __future__ import annotations

import json
import uuid

import pytest

from backup_cfn import aws
from backup_cfn.stack.capture import source_change_pattern


def _events(sqs, queue_url: str) -> list[dict]:
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def wired(local_env):
    """A source bucket with EventBridge notifications, the capture rule's pattern, and a queue."""
    s3, events, sqs = (aws.client(local_env, name) for name in ("s3", "events", "sqs"))
    bucket = f"src-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    queue = sqs.create_queue(QueueName=f"q-{bucket}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"r-{bucket}", EventPattern=json.dumps(source_change_pattern(bucket)))
    events.put_targets(Rule=f"r-{bucket}", Targets=[{"Id": "q", "Arn": arn}])
    return s3, sqs, events, bucket, queue


def test_created_and_deleted_events_have_aws_shape_in_a_versioned_bucket(wired):
    s3, sqs, _, bucket, queue = wired
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="u/a.txt", Body=b"1")
    second = s3.put_object(Bucket=bucket, Key="u/a.txt", Body=b"22")
    marker = s3.delete_object(Bucket=bucket, Key="u/a.txt")
    batch = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "u/a.txt"}]})
    s3.delete_object(Bucket=bucket, Key="u/a.txt", VersionId=first["VersionId"])
    events = _events(sqs, queue)
    assert [(e["detail-type"], e["detail"]["reason"], e["detail"].get("deletion-type")) for e in events] == [
        ("Object Created", "PutObject", None), ("Object Created", "PutObject", None),
        ("Object Deleted", "DeleteObject", "Delete Marker Created"),
        ("Object Deleted", "DeleteObject", "Delete Marker Created"),
        ("Object Deleted", "DeleteObject", "Permanently Deleted")]
    created = events[1]
    assert created["source"] == "aws.s3" and created["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert created["time"].endswith("Z") and len(created["time"]) == len("2021-11-12T00:00:00Z")
    assert created["detail"]["object"] == {"key": "u/a.txt", "size": 2, "etag": second["ETag"].strip('"'),
                                           "version-id": second["VersionId"],
                                           "sequencer": created["detail"]["object"]["sequencer"]}
    assert events[2]["detail"]["object"]["version-id"] == marker["VersionId"]
    assert events[3]["detail"]["object"]["version-id"] == batch["Deleted"][0]["DeleteMarkerVersionId"]
    assert events[4]["detail"]["object"]["version-id"] == first["VersionId"]
    assert all(set(e["detail"]["object"]) == {"key", "version-id", "sequencer"} for e in events[2:])
    # Every event its own UUID; the sequencers of one key grow with each change.
    assert len({e["id"] for e in events}) == len(events) == 5
    sequencers = [e["detail"]["object"]["sequencer"] for e in events]
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == 5


def test_unversioned_bucket_events_carry_no_version_and_copies_say_so(wired):
    s3, sqs, _, bucket, queue = wired
    s3.put_object(Bucket=bucket, Key="u/a.txt", Body=b"1")
    s3.copy_object(Bucket=bucket, Key="u/b.txt", CopySource={"Bucket": bucket, "Key": "u/a.txt"})
    s3.delete_object(Bucket=bucket, Key="u/a.txt")
    events = _events(sqs, queue)
    assert [(e["detail"]["object"]["key"], e["detail"]["reason"], e["detail"].get("deletion-type")) for e in events] == [
        ("u/a.txt", "PutObject", None), ("u/b.txt", "CopyObject", None), ("u/a.txt", "DeleteObject", "Permanently Deleted")]
    assert not any("version-id" in e["detail"]["object"] for e in events)


def test_only_enabled_rules_of_the_default_bus_receive_s3_events(wired):
    s3, sqs, events_client, bucket, queue = wired
    events_client.create_event_bus(Name=f"other-{bucket}")
    other = sqs.create_queue(QueueName=f"other-{bucket}")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name="on-other-bus", EventBusName=f"other-{bucket}",
                           EventPattern=json.dumps(source_change_pattern(bucket)))
    events_client.put_targets(Rule="on-other-bus", EventBusName=f"other-{bucket}", Targets=[{"Id": "q", "Arn": other_arn}])
    s3.put_object(Bucket=bucket, Key="u/a.txt", Body=b"1")
    events_client.disable_rule(Name=f"r-{bucket}")
    s3.put_object(Bucket=bucket, Key="u/b.txt", Body=b"2")
    assert [e["detail"]["object"]["key"] for e in _events(sqs, queue)] == ["u/a.txt"]
    assert _events(sqs, other) == []


def test_a_cloudformation_bucket_with_eventbridge_enabled_sends_events(local_env):
    cfn, s3, sqs, events = (aws.client(local_env, name) for name in ("cloudformation", "s3", "sqs", "events"))
    name = f"cfn-src-{uuid.uuid4().hex[:8]}"
    template = {"Resources": {"Source": {"Type": "AWS::S3::Bucket", "Properties": {
        "BucketName": name,
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}}}}}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    assert s3.get_bucket_notification_configuration(Bucket=name).get("EventBridgeConfiguration") == {}
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(source_change_pattern(name)))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    s3.put_object(Bucket=name, Key="u/a.txt", Body=b"1")
    assert [e["detail"]["object"]["key"] for e in _events(sqs, queue)] == ["u/a.txt"]
