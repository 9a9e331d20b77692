"""The engine's resources created directly with boto3 in the emulator, without CloudFormation: a
test and bench fixture that does not depend on `deploy`. It builds what the template builds for
the engine (key names, indexes and attributes from the contract, the job and capture queues'
visibility and redrive, the source's change events to the capture queue, the backup bucket's
replication to the replica bucket), which tests/local/test_provision_parity.py checks against the
template, and returns outputs shaped like the stacks' (contract.OUTPUT_*)."""
from __future__ import annotations

import json

from backup_cfn import contract
from backup_cfn.contract import DEAD_LETTER_VISIBILITY_SECONDS, JOB_MAX_RECEIVES, JOB_VISIBILITY_SECONDS
from backup_cfn.stack.capture import source_change_pattern


def provision(session_client, *, prefix: str, region: str, replica_region: str) -> dict[str, str]:
    """`session_client(service, region)` makes a client; returns the stack-like outputs."""
    s3 = session_client("s3", region)
    replica_s3 = session_client("s3", replica_region)
    kms = session_client("kms", region)
    replica_kms = session_client("kms", replica_region)
    dynamodb = session_client("dynamodb", region)
    sqs = session_client("sqs", region)
    sns = session_client("sns", region)
    events = session_client("events", region)

    key_arn = kms.create_key(Description=f"{prefix} backups")["KeyMetadata"]["Arn"]
    replica_key_arn = replica_kms.create_key(Description=f"{prefix} replica")["KeyMetadata"]["Arn"]
    buckets = {"source": f"{prefix}-source", "backup": f"{prefix}-backup", "replica": f"{prefix}-replica"}
    for name, client, bucket_region, key in ((buckets["source"], s3, region, key_arn),
                                             (buckets["backup"], s3, region, key_arn),
                                             (buckets["replica"], replica_s3, replica_region, replica_key_arn)):
        args = {"Bucket": name}
        if bucket_region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": bucket_region}
        client.create_bucket(**args)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
            "BucketKeyEnabled": True}]})
    # The backup bucket replicates to the replica bucket as the template's rule says (the emulator
    # replicates: docs/emulator.md); the role is named, not created: the emulator assumes none.
    account = session_client("sts", region).get_caller_identity()["Account"]
    s3.put_bucket_replication(Bucket=buckets["backup"], ReplicationConfiguration={
        "Role": f"arn:aws:iam::{account}:role/{prefix}-replication",
        "Rules": [{"ID": "ReplicateEverythingToReplicaRegion", "Priority": 1, "Status": "Enabled",
                   "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Enabled"},
                   "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                   "Destination": {"Bucket": f"arn:aws:s3:::{buckets['replica']}",
                                   "EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key_arn}}}]})

    runs_table, content_table = f"{prefix}-runs", f"{prefix}-content"
    dynamodb.create_table(
        TableName=runs_table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in
                              (contract.RUNS_PARTITION_KEY, contract.RUNS_SORT_KEY, "user", "status")],
        KeySchema=[{"AttributeName": contract.RUNS_PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": contract.RUNS_SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": name, "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                           {"AttributeName": contract.RUNS_PARTITION_KEY, "KeyType": "RANGE"}]}
            for name, pk in ((contract.RUNS_BY_USER_INDEX, "user"), (contract.RUNS_BY_STATUS_INDEX, "status"))],
    )
    dynamodb.update_time_to_live(TableName=runs_table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": contract.RUNS_TTL_ATTRIBUTE})
    dynamodb.create_table(
        TableName=content_table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": contract.CONTENT_PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": contract.CONTENT_PARTITION_KEY, "KeyType": "HASH"}],
    )

    jobs, dead_letters = _queue_pair(sqs, f"{prefix}-jobs", JOB_VISIBILITY_SECONDS)
    restores, restore_dead_letters = _queue_pair(sqs, f"{prefix}-restores", 6 * contract.RESTORE_TIMEOUT_SECONDS,
                                                 dead_letter_visibility=6 * contract.RESTORE_TIMEOUT_SECONDS)
    # The capture queue's dead-letter queue keeps SQS's default visibility, as the template's does.
    capture, capture_dead_letters = _queue_pair(sqs, f"{prefix}-capture", contract.CAPTURE_VISIBILITY_SECONDS,
                                                dead_letter_visibility=30)
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The source's changes, as the stack wires them: EventBridge notifications on, one rule, the queue.
    s3.put_bucket_notification_configuration(Bucket=buckets["source"],
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    events.put_rule(Name=f"{prefix}-source-changes", EventPattern=json.dumps(source_change_pattern(buckets["source"])))
    events.put_targets(Rule=f"{prefix}-source-changes", Targets=[{"Id": "CaptureQueue", "Arn": capture_arn}])
    topic = sns.create_topic(Name=f"{prefix}-notifications")["TopicArn"]
    return {
        contract.OUTPUT_SOURCE_BUCKET: buckets["source"], contract.OUTPUT_BACKUP_BUCKET: buckets["backup"],
        contract.OUTPUT_REPLICA_BUCKET: buckets["replica"], contract.OUTPUT_RUNS_TABLE: runs_table,
        contract.OUTPUT_CONTENT_TABLE: content_table, contract.OUTPUT_JOB_QUEUE_URL: jobs,
        contract.OUTPUT_DEAD_LETTER_QUEUE_URL: dead_letters, contract.OUTPUT_TOPIC_ARN: topic,
        contract.OUTPUT_CAPTURE_QUEUE_URL: capture, contract.OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL: capture_dead_letters,
        contract.OUTPUT_KEY_ARN: key_arn, contract.OUTPUT_REPLICA_KEY_ARN: replica_key_arn,
        contract.OUTPUT_RESTORE_QUEUE_URL: restores, contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL: restore_dead_letters,
    }


def provision_vault(vault_client, *, prefix: str, region: str, retention_days: int = 60,
                    lifecycle: list[dict] | None = None) -> dict[str, str]:
    """The vault's data resources in the vault account (clients made with its credentials), as the
    vault template builds them: a versioned bucket with Object Lock, COMPLIANCE default retention
    and the vault's lifecycle rules (in the API's shape; default: none), its key, the lock table.
    Returns outputs shaped like the vault stack's."""
    s3, kms, dynamodb = vault_client("s3", region), vault_client("kms", region), vault_client("dynamodb", region)
    key_arn = kms.create_key(Description=f"{prefix} vault")["KeyMetadata"]["Arn"]
    bucket = f"{prefix}-vault"
    args = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}}})
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle})
    table = f"{prefix}-vault-locks"
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": contract.VAULT_LOCK_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": contract.VAULT_LOCK_KEY, "KeyType": "HASH"}])
    return {contract.OUTPUT_VAULT_BUCKET: bucket, contract.OUTPUT_VAULT_KEY_ARN: key_arn,
            contract.OUTPUT_VAULT_LOCK_TABLE: table}


def vault_lifecycle(retention_days: int) -> list[dict]:
    """The vault template's lifecycle rules (stack/vault_storage.py) in the API's shape."""
    return [
        {"ID": "ExpireCurrentVersions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": retention_days}},
        {"ID": "RemoveUnlockedVersions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"ExpiredObjectDeleteMarker": True}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    ]


def _queue_pair(sqs, name: str, visibility: int, *,
                dead_letter_visibility: int = DEAD_LETTER_VISIBILITY_SECONDS) -> tuple[str, str]:
    """A queue and its dead-letter queue, as the template makes them (visibility and redrive)."""
    dead_letters = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={
        "VisibilityTimeout": str(dead_letter_visibility)})["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": JOB_MAX_RECEIVES}),
    })["QueueUrl"]
    return queue, dead_letters
