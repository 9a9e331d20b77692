"""Continuous protection as an operator deploys and watches it on the local environment: `status`
shows the RPO (and `--json` carries it), a change of the source is captured without any run, and an
existing source bucket gets its EventBridge notifications turned on by the deploy (shown by the
review first), its other notification settings untouched, with only the deployer policy's own
statement for that bucket."""
from __future__ import annotations

import dataclasses
import json
import re
import uuid

from backup_cfn import aws
from backup_cfn.local.capture_source import drain, take_over
from backup_cfn.ops.target import connect
from backup_cfn.permissions.deployer import as_managed_policies, call_resource, deployer_policy
from backup_cfn.permissions.iam import PolicyStore, Principal, Request, parse_policy
from backup_cfn.permissions.recorder import Recorder
from backup_cfn.stack.render import render_bootstrap, render_environment

from cli_support import run


def status_document(environments) -> dict:
    result = run(environments, "status", "--env", "local", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["continuous_protection"]


def test_status_shows_the_rpo_and_a_change_is_protected_without_a_run(environments, local_env):
    assert run(environments, "deploy", "--env", "local", "--yes").exit_code == 0
    idle = status_document(environments)
    assert (idle["rpo_seconds"], idle["waiting"], idle["within_target"]) == (0, 0, True)
    target = connect(local_env)
    take_over(target)
    target.clients.s3.put_object(Bucket=target.settings.source_bucket, Key="client-0001/late-night.pdf", Body=b"v1")
    waiting = status_document(environments)
    assert waiting["waiting"] == 1 and waiting["source"] == "cloudwatch" and 0 <= waiting["rpo_seconds"] < 60
    text = run(environments, "status", "--env", "local").output
    assert re.search(r"continuous protection: RPO \d+ s; 1 change\(s\) waiting", text), text
    drain(target.clients, target.settings)
    assert status_document(environments)["waiting"] == 0
    listed = target.clients.s3.list_objects_v2(Bucket=target.settings.backup_bucket, Prefix="journal/client-0001/")
    assert listed["KeyCount"] == 1


def test_an_existing_source_bucket_gets_eventbridge_notifications_and_keeps_its_others(environments, local_env):
    s3, sqs = aws.client(local_env, "s3"), aws.client(local_env, "sqs")
    bucket = f"client-reports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName=f"{bucket}-uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    existing = [{"Id": "uploads-to-their-indexer", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": existing})
    environments.write_text(environments.read_text().replace('[env.local]\n',
                                                             f'[env.local]\nsource_bucket = "{bucket}"\n'))

    recorder = Recorder()
    plain_client = aws.client

    def recorded_client(env, service, region=None):
        return recorder.attach(plain_client(env, service, region), "Deployer")

    aws.client = recorded_client
    try:
        deployed = run(environments, "deploy", "--env", "local", "--yes")
    finally:
        aws.client = plain_client
    assert deployed.exit_code == 0, deployed.output
    # The review says it before the change set executes; the deploy does it after.
    review = deployed.output.index(f"source-events:{bucket}")
    assert "does not send its events to EventBridge: once this change set executes, deploy turns them on" in deployed.output
    assert "keeping its 1 topic, queue and function configuration(s)" in deployed.output
    done = deployed.output.index(f"source bucket {bucket}: EventBridge notifications turned on; its 1 other notification")
    assert review < done
    after = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert after["EventBridgeConfiguration"] == {}
    assert [c["Id"] for c in after["QueueConfigurations"]] == ["uploads-to-their-indexer"]
    # The bucket's changes now reach the capture queue, and its own queue still gets its events.
    env = dataclasses.replace(local_env, source_bucket=bucket)
    target = connect(env)
    take_over(target)
    s3.put_object(Bucket=bucket, Key="client-0009/report.pdf", Body=b"report")
    assert drain(target.clients, target.settings).messages == 1
    assert sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages")

    # The deployer policy allows exactly these notification calls, on this bucket only.
    calls = [c for c in recorder.distinct() if "Notification" in c.operation]
    assert {c.operation for c in calls} == {"GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration"}
    env = dataclasses.replace(env, account_id="123456789012")
    templates = [json.loads(b) for b in (*render_environment(env), render_bootstrap())]
    store, role = PolicyStore(), "arn:aws:iam::123456789012:role/deployer"
    for i, document in enumerate(as_managed_policies(deployer_policy(env, templates))):
        store.add_identity_policy(role, parse_policy(document, f"deployer-{i}"))
    deployer = Principal.assumed_role(role, "ci", name="Deployer")
    action = {"GetBucketNotificationConfiguration": "s3:GetBucketNotification",
              "PutBucketNotificationConfiguration": "s3:PutBucketNotification"}
    for c in calls:
        resource = call_resource(c, "123456789012", None)
        assert store.evaluate(Request(deployer, action[c.operation], resource, {})).allowed
        assert not store.evaluate(Request(deployer, action[c.operation], "arn:aws:s3:::someone-elses-bucket", {})).allowed
