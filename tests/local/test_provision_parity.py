"""The tests' and the bench's fixture (backup_cfn.local.provision) builds, without CloudFormation,
what the template builds for the engine: if the two drift, the engine is tested against resources
that are not the ones deployed."""
from __future__ import annotations

import dataclasses
import json

from backup_cfn import aws, contract
from backup_cfn.config import load_environment
from backup_cfn.local.provision import provision
from backup_cfn.stack.template import build_template

# prod's primary in the one-account layout: provision() builds the same-account replica, not a vault.
TEMPLATE = build_template(dataclasses.replace(load_environment("prod"), vault=None)).to_dict()["Resources"]


def _table_shape(description: dict) -> dict:
    """Keys, attribute types and indexes of a DescribeTable answer, or of a template's table."""
    indexes = {i["IndexName"]: ([(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]],
                                i["Projection"]["ProjectionType"])
               for i in description.get("GlobalSecondaryIndexes", [])}
    return {
        "keys": [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]],
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in description["AttributeDefinitions"]),
        "indexes": indexes,
        "billing": description.get("BillingModeSummary", {}).get("BillingMode") or description.get("BillingMode"),
    }


def test_provisioned_tables_and_queue_match_the_template(local_env):
    outputs = provision(lambda service, region: aws.client(local_env, service, region), prefix="parity",
                        region=local_env.region, replica_region=local_env.replica_region)
    dynamodb, sqs = aws.client(local_env, "dynamodb"), aws.client(local_env, "sqs")
    for output, logical in ((contract.OUTPUT_RUNS_TABLE, "RunsTable"), (contract.OUTPUT_CONTENT_TABLE,
                                                                          "ContentIndexTable")):
        provisioned = dynamodb.describe_table(TableName=outputs[output])["Table"]
        assert _table_shape(provisioned) == _table_shape(TEMPLATE[logical]["Properties"]), logical
    ttl = dynamodb.describe_time_to_live(TableName=outputs[contract.OUTPUT_RUNS_TABLE])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == TEMPLATE["RunsTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]

    attributes = sqs.get_queue_attributes(QueueUrl=outputs[contract.OUTPUT_JOB_QUEUE_URL],
                                          AttributeNames=["All"])["Attributes"]
    queue = TEMPLATE["JobQueue"]["Properties"]
    assert int(attributes["VisibilityTimeout"]) == queue["VisibilityTimeout"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == queue["RedrivePolicy"]["maxReceiveCount"]
    dead_letters = sqs.get_queue_attributes(QueueUrl=outputs[contract.OUTPUT_DEAD_LETTER_QUEUE_URL],
                                            AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert int(dead_letters["VisibilityTimeout"]) == TEMPLATE["JobDeadLetterQueue"]["Properties"]["VisibilityTimeout"]


def test_the_provisioned_backup_bucket_replicates_as_the_templates(local_env):
    outputs = provision(lambda service, region: aws.client(local_env, service, region), prefix="parity",
                        region=local_env.region, replica_region=local_env.replica_region)
    s3 = aws.client(local_env, "s3")
    [rule] = s3.get_bucket_replication(Bucket=outputs[contract.OUTPUT_BACKUP_BUCKET])["ReplicationConfiguration"]["Rules"]
    [template_rule] = TEMPLATE["BackupBucket"]["Properties"]["ReplicationConfiguration"]["Rules"]
    for element in ("Priority", "Status", "Filter", "DeleteMarkerReplication", "SourceSelectionCriteria"):
        assert rule[element] == template_rule[element], element
    assert rule["ID"] == template_rule["Id"]
    assert rule["Destination"] == {"Bucket": f"arn:aws:s3:::{outputs[contract.OUTPUT_REPLICA_BUCKET]}",
                                   "EncryptionConfiguration": {"ReplicaKmsKeyID": outputs[contract.OUTPUT_REPLICA_KEY_ARN]}}
    assert set(template_rule["Destination"]) - {"Metrics", "ReplicationTime"} == {"Bucket", "EncryptionConfiguration"}
