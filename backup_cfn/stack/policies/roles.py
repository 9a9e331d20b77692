"""Role policies: who may assume each role (trust) and what each role may do (statements).

Every statement has a Sid and resources scoped to ARNs and key prefixes; the functions use the key
only through the services that encrypt for them (kms:ViaService).
"""
from __future__ import annotations

from awacs import (
    dynamodb as ddb,
    ec2 as ec2_actions,
    kms as kms_actions,
    logs as logs_actions,
    s3 as s3_actions,
    sns as sns_actions,
    sqs as sqs_actions,
    sts,
)
from awacs.aws import Allow, PolicyDocument, Statement, StringLike
from troposphere import GetAtt, Ref, Sub

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack.policies.elements import (
    ENCRYPT_DECRYPT,
    account_root,
    all_of,
    document,
    objects_in,
    service,
    this_account,
    via,
)


def lambda_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=service("lambda.amazonaws.com"), Action=[sts.AssumeRole]))


def account_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=account_root(), Action=[sts.AssumeRole]))


def restore_statements(backup_bucket, runs_table, key) -> list[Statement]:
    """Read snapshots and content, look up run history; no write, no delete."""
    return [
        Statement(Sid="ListBackups", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[GetAtt(backup_bucket, "Arn")]),
        Statement(Sid="ReadSnapshotsAndContent", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.GetObjectVersion],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX)]),
        Statement(Sid="ReadRunHistory", Effect=Allow, Action=[ddb.GetItem, ddb.Query],
                  Resource=[GetAtt(runs_table, "Arn"), Sub("${TableArn}/index/*", TableArn=GetAtt(runs_table, "Arn"))]),
        Statement(Sid="DecryptThroughS3AndDynamoDb", Effect=Allow, Action=[kms_actions.Decrypt],
                  Resource=[GetAtt(key, "Arn")], Condition=all_of(via("s3", "dynamodb"))),
    ]


def s3_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=service("s3.amazonaws.com"), Action=[sts.AssumeRole],
                              Condition=all_of(this_account())))


def replication_statements(env: Environment, source_bucket, source_key_arn, replica_bucket_arn,
                           replica_key_arn) -> list[Statement]:
    """S3 replication: read versions from the backup bucket, write replicas, re-encrypt under the
    replica key in the replica region."""
    source_objects = objects_in(GetAtt(source_bucket, "Arn"))
    return [
        Statement(Sid="ReadReplicationConfiguration", Effect=Allow,
                  Action=[s3_actions.GetReplicationConfiguration, s3_actions.ListBucket],
                  Resource=[GetAtt(source_bucket, "Arn")]),
        Statement(Sid="ReadSourceVersions", Effect=Allow,
                  Action=[s3_actions.GetObjectVersionForReplication, s3_actions.GetObjectVersionAcl,
                          s3_actions.GetObjectVersionTagging, s3_actions.GetObjectRetention,
                          s3_actions.GetObjectLegalHold],
                  Resource=[source_objects]),
        Statement(Sid="WriteReplicas", Effect=Allow,
                  Action=[s3_actions.ReplicateObject, s3_actions.ReplicateDelete, s3_actions.ReplicateTags],
                  Resource=[objects_in(replica_bucket_arn)]),
        Statement(Sid="DecryptSourceObjects", Effect=Allow, Action=[kms_actions.Decrypt],
                  Resource=[source_key_arn],
                  Condition=all_of(via("s3"), StringLike("kms:EncryptionContext:aws:s3:arn", source_objects))),
        Statement(Sid="EncryptReplicas", Effect=Allow, Action=[kms_actions.Encrypt, kms_actions.GenerateDataKey],
                  Resource=[replica_key_arn],
                  Condition=all_of(
                      via("s3", region=env.replica_region),
                      StringLike("kms:EncryptionContext:aws:s3:arn", objects_in(replica_bucket_arn)),
                  )),
    ]


def log_statement(log_group) -> Statement:
    return Statement(Sid="WriteOwnLogs", Effect=Allow,
                     Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents],
                     Resource=[GetAtt(log_group, "Arn")])


def vpc_statement() -> Statement:
    # Lambda's ENI management: Describe* calls accept only "*", and AWS's own managed policy
    # (AWSLambdaVPCAccessExecutionRole) grants these on "*".
    return Statement(Sid="ManageVpcNetworkInterfaces", Effect=Allow,
                     Action=[ec2_actions.CreateNetworkInterface, ec2_actions.DescribeNetworkInterfaces,
                             ec2_actions.DescribeSubnets, ec2_actions.DeleteNetworkInterface,
                             ec2_actions.AssignPrivateIpAddresses, ec2_actions.UnassignPrivateIpAddresses],
                     Resource=["*"])


def key_use_statement(key_arn, *services: str) -> Statement:
    """The key, used only by the services that encrypt for the function: its data stores, its
    queues and topic, and Lambda itself for the function's environment variables."""
    return Statement(Sid="UseBackupKeyThroughServices", Effect=Allow, Action=ENCRYPT_DECRYPT,
                     Resource=[key_arn], Condition=all_of(via(*services)))


def _objects(bucket, prefix: str = ""):
    return objects_in(GetAtt(bucket, "Arn"), prefix)


def initiator_statements(source_bucket_arn, runs_table, job_queue, failure_queue, topic, key_arn) -> list[Statement]:
    """Discovers users (list only), records the run, enqueues one job per user; announces a run it
    closes itself (no users, or every worker finished before it did)."""
    return [
        Statement(Sid="ListSourceUsers", Effect=Allow, Action=[s3_actions.ListBucket], Resource=[source_bucket_arn]),
        Statement(Sid="RecordRuns", Effect=Allow,
                  Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem, ddb.Query],
                  Resource=[GetAtt(runs_table, "Arn")]),
        Statement(Sid="EnqueueUserJobs", Effect=Allow,
                  Action=[sqs_actions.SendMessage, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(job_queue, "Arn")]),
        Statement(Sid="ReportFailedInvocations", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(failure_queue, "Arn")]),
        Statement(Sid="PublishRunSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        key_use_statement(key_arn, "dynamodb", "sqs", "sns", "lambda"),
    ]


def worker_statements(source_bucket_arn, backup_bucket, runs_table, content_table, job_queue, topic,
                      key_arn) -> list[Statement]:
    """Reads the source, writes content and manifests. It cannot delete anything."""
    return [
        Statement(Sid="ReadSource", Effect=Allow, Action=[s3_actions.ListBucket], Resource=[source_bucket_arn]),
        Statement(Sid="ReadSourceObjects", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.GetObjectVersion, s3_actions.GetObjectAttributes,
                          s3_actions.GetObjectVersionAttributes],
                  Resource=[objects_in(source_bucket_arn)]),
        Statement(Sid="ListBackups", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[GetAtt(backup_bucket, "Arn")]),
        # AbortMultipartUpload: a failed copy of a content object over 5 GiB cleans up its parts.
        Statement(Sid="ReadAndWriteContentAndManifests", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.PutObject, s3_actions.AbortMultipartUpload],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX)]),
        Statement(Sid="IndexContent", Effect=Allow, Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(content_table, "Arn")]),
        Statement(Sid="RecordJobs", Effect=Allow, Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")]),
        # ChangeMessageVisibility: a job's retry is timed by the worker (engine/attempts.py);
        # SendMessage: a job too large for one invocation hands the rest on in a continuation.
        Statement(Sid="ConsumeJobs", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage,
                          sqs_actions.ChangeMessageVisibility, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(job_queue, "Arn")]),
        Statement(Sid="HandOnJobContinuations", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(job_queue, "Arn")]),
        Statement(Sid="PublishRunSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        key_use_statement(key_arn, "s3", "dynamodb", "sqs", "sns", "lambda"),
    ]


def dead_letter_statements(runs_table, dead_letter_queue, topic, key_arn) -> list[Statement]:
    """Consumes the job dead-letter queue and records each job FAILED (its run's counters move in
    the same transaction, whose Update items need UpdateItem); announces a run it closes."""
    return [
        Statement(Sid="ConsumeDeadLetters", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage,
                          sqs_actions.ChangeMessageVisibility, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(dead_letter_queue, "Arn")]),
        Statement(Sid="RecordFailedJobs", Effect=Allow, Action=[ddb.GetItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")]),
        Statement(Sid="PublishRunSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        key_use_statement(key_arn, "dynamodb", "sqs", "sns", "lambda"),
    ]


def pruner_statements(backup_bucket, runs_table, content_table, topic, failure_queue, key_arn) -> list[Statement]:
    """The only deleter: expired manifests and unreferenced content, nothing else."""
    return [
        Statement(Sid="ListBackups", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[GetAtt(backup_bucket, "Arn")]),
        Statement(Sid="ReadManifests", Effect=Allow, Action=[s3_actions.GetObject],
                  Resource=[_objects(backup_bucket, contract.MANIFEST_PREFIX)]),
        Statement(Sid="DeleteExpiredBackups", Effect=Allow, Action=[s3_actions.DeleteObject],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX)]),
        Statement(Sid="SweepContentIndex", Effect=Allow,
                  Action=[ddb.Scan, ddb.GetItem, ddb.UpdateItem, ddb.DeleteItem],
                  Resource=[GetAtt(content_table, "Arn")]),
        Statement(Sid="RecordPruneRuns", Effect=Allow, Action=[ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")]),
        Statement(Sid="PublishPruneSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        Statement(Sid="ReportFailedInvocations", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(failure_queue, "Arn")]),
        key_use_statement(key_arn, "s3", "dynamodb", "sns", "sqs", "lambda"),
    ]


