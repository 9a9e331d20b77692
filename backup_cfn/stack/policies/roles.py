"""Role policies: who may assume each role (trust) and what each role may do (statements).

Every statement has a Sid and resources scoped to ARNs and key prefixes; the functions use the key
only through the services that encrypt for them (kms:ViaService).
"""
from __future__ import annotations

from dataclasses import dataclass

from awacs import (
    awslambda as lambda_actions,
    cloudformation as cfn_actions,
    dynamodb as ddb,
    ec2 as ec2_actions,
    kms as kms_actions,
    logs as logs_actions,
    s3 as s3_actions,
    sns as sns_actions,
    sqs as sqs_actions,
    sts,
)
from awacs.aws import Allow, ForAllValuesStringLike, PolicyDocument, Statement, StringEquals, StringLike
from troposphere import GetAtt, Ref, Sub

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.policies.elements import (ENCRYPT_DECRYPT, account_root, all_of, document, objects_in, service,
                                                s3_reading_a_copy_source_in, this_account, via)


def lambda_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=service("lambda.amazonaws.com"), Action=[sts.AssumeRole]))


def account_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=account_root(), Action=[sts.AssumeRole]))


@dataclass(frozen=True)
class RestoreScope:
    """What the operator role reads, writes and starts (template.build_template wires it)."""
    backup_bucket: object
    runs_table: object
    content_table: object
    key: object
    replica_bucket_arn: object
    replica_key_arn: object
    source_bucket_arn: object
    initiator_function: object
    drill_function: object


def restore_statements(env: Environment, scope: RestoreScope) -> list[Statement]:
    """The operator commands (docs/permissions.md): read snapshots and content in either region,
    restore into the source bucket, check the index, read run history, start a run or a drill. It cannot
    change or delete a backup: the bucket policies let nobody but the collector delete, and it
    writes to no backup prefix."""
    backup_arn = GetAtt(scope.backup_bucket, "Arn")
    readable = (contract.CONTENT_PREFIX, contract.MANIFEST_PREFIX, contract.JOURNAL_PREFIX)
    backup_objects = [objects_in(backup_arn, prefix) for prefix in readable]
    # With a vault, the disaster-recovery copy is read with the vault's own role, never from here.
    replica = not env.has_vault
    replica_objects = [objects_in(scope.replica_bucket_arn, prefix) for prefix in readable] if replica else []
    stacks = [_stack_arn(env.stack_name)] + ([_stack_arn(env.replica_stack_name, env.replica_region)] if replica else [])
    statements = [
        Statement(Sid="ReadStackOutputs", Effect=Allow, Action=[cfn_actions.DescribeStacks], Resource=stacks),
        # ListBucketVersions: a content whose SHA-256 does not match its name is read from the
        # version that does (engine/integrity.py).
        Statement(Sid="ListBackups", Effect=Allow, Action=[s3_actions.ListBucket, s3_actions.ListBucketVersions],
                  Resource=[backup_arn] + ([scope.replica_bucket_arn] if replica else [])),
        Statement(Sid="ReadSnapshotsAndContent", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.GetObjectVersion],
                  Resource=backup_objects + replica_objects),
        Statement(Sid="RestoreIntoSourceBucket", Effect=Allow,
                  Action=[s3_actions.PutObject, s3_actions.AbortMultipartUpload],
                  Resource=[objects_in(scope.source_bucket_arn)]),
        Statement(Sid="ReadRunHistory", Effect=Allow, Action=[ddb.GetItem, ddb.BatchGetItem, ddb.Query],
                  Resource=[GetAtt(scope.runs_table, "Arn"),
                            Sub("${TableArn}/index/*", TableArn=GetAtt(scope.runs_table, "Arn"))]),
        Statement(Sid="CheckContentIndex", Effect=Allow, Action=[ddb.BatchGetItem, ddb.Scan],
                  Resource=[GetAtt(scope.content_table, "Arn")]),
        Statement(Sid="StartBackupRunsAndDrills", Effect=Allow, Action=[lambda_actions.InvokeFunction],
                  Resource=[GetAtt(scope.initiator_function, "Arn"), GetAtt(scope.drill_function, "Arn")]),
        Statement(Sid="DecryptThroughS3AndDynamoDb", Effect=Allow, Action=[kms_actions.Decrypt],
                  Resource=[GetAtt(scope.key, "Arn")], Condition=all_of(via("s3", "dynamodb"))),
        Statement(Sid="EncryptRestoredFiles", Effect=Allow, Action=[kms_actions.GenerateDataKey],
                  Resource=[GetAtt(scope.key, "Arn")],
                  Condition=all_of(via("s3"), StringEquals("kms:EncryptionContext:aws:s3:arn", scope.source_bucket_arn))),
    ]
    if replica:
        statements.append(decrypt_replica_statement(env, scope))
    return statements


def decrypt_replica_statement(env: Environment, scope: RestoreScope) -> Statement:
    """Reading the replica (restore --from-replica) decrypts with the replica key through S3. A copy
    out of it into the source bucket (--to s3://...) is a request to the destination's Region, and
    AWS does not document which Region's S3 then asks KMS (in the replica's Region) to decrypt the
    source object: both are admitted. Either way the request is for the replica bucket's bucket key
    (the aws:s3:arn context is the bucket's ARN with S3 Bucket Keys, S3 User Guide)."""
    return Statement(Sid="DecryptReplica", Effect=Allow, Action=[kms_actions.Decrypt], Resource=[scope.replica_key_arn],
                     Condition=all_of(s3_reading_a_copy_source_in(env.replica_region),
                                      StringEquals("kms:EncryptionContext:aws:s3:arn", scope.replica_bucket_arn)))


def _stack_arn(stack_name: str, region: str = "${AWS::Region}") -> Sub:
    return Sub(f"arn:${{AWS::Partition}}:cloudformation:{region}:${{AWS::AccountId}}:stack/{stack_name}/*")


def cloudtrail_trust_policy(env: Environment) -> PolicyDocument:
    """CloudTrail, for this stack's trail only."""
    return document(Statement(
        Effect=Allow, Principal=service("cloudtrail.amazonaws.com"), Action=[sts.AssumeRole],
        Condition=all_of(this_account(), StringEquals("aws:SourceArn", names.trail_arn(env)))))


def trail_delivery_statement(env: Environment) -> Statement:
    """Write the trail's events into its own log group, nothing else."""
    return Statement(Sid="DeliverTrailEvents", Effect=Allow,
                     Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents],
                     Resource=[names.arn("logs", f"log-group:{names.trail_log_group_name(env)}:log-stream:*")])


def s3_trust_policy() -> PolicyDocument:
    return document(Statement(Effect=Allow, Principal=service("s3.amazonaws.com"), Action=[sts.AssumeRole],
                              Condition=all_of(this_account())))


def bucket_key_context(bucket_arn) -> StringLike:
    """kms:EncryptionContext:aws:s3:arn of objects in a bucket with an S3 Bucket Key: the bucket's
    ARN (S3 User Guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys"); the object's
    ARN for any object written before the bucket key was on."""
    return StringLike("kms:EncryptionContext:aws:s3:arn", [bucket_arn, objects_in(bucket_arn)])


def replication_statements(env: Environment, source_bucket, source_key_arn, replica_bucket_arn,
                           replica_key_arn) -> list[Statement]:
    """S3 replication: read versions from the backup bucket, write replicas, re-encrypt under the
    replica key in the replica region. Both buckets use bucket keys: S3 decrypts the source's and
    the replica's bucket key, and generates data keys, with the bucket ARN as context. Into a vault:
    no ReplicateDelete (delete markers are never sent; the vault refuses them too), and only the
    prefixes the vault accepts."""
    source_objects = objects_in(GetAtt(source_bucket, "Arn"))
    if env.has_vault:
        writes = [s3_actions.ReplicateObject, s3_actions.ReplicateTags]
        replicas = [objects_in(replica_bucket_arn, prefix) for prefix in contract.REPLICATED_PREFIXES]
    else:
        writes = [s3_actions.ReplicateObject, s3_actions.ReplicateDelete, s3_actions.ReplicateTags]
        replicas = [objects_in(replica_bucket_arn)]
    return [
        Statement(Sid="ReadReplicationConfiguration", Effect=Allow,
                  Action=[s3_actions.GetReplicationConfiguration, s3_actions.ListBucket],
                  Resource=[GetAtt(source_bucket, "Arn")]),
        Statement(Sid="ReadSourceVersions", Effect=Allow,
                  Action=[s3_actions.GetObjectVersionForReplication, s3_actions.GetObjectVersionAcl,
                          s3_actions.GetObjectVersionTagging, s3_actions.GetObjectRetention,
                          s3_actions.GetObjectLegalHold],
                  Resource=[source_objects]),
        Statement(Sid="WriteReplicas", Effect=Allow, Action=writes, Resource=replicas),
        Statement(Sid="DecryptSourceObjects", Effect=Allow, Action=[kms_actions.Decrypt],
                  Resource=[source_key_arn],
                  Condition=all_of(via("s3"), bucket_key_context(GetAtt(source_bucket, "Arn")))),
        Statement(Sid="EncryptReplicas", Effect=Allow,
                  Action=[kms_actions.Encrypt, kms_actions.GenerateDataKey, kms_actions.Decrypt],
                  Resource=[replica_key_arn],
                  Condition=all_of(via("s3", region=env.replica_region), bucket_key_context(replica_bucket_arn))),
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
        # BatchGetItem: the run's tallies, read to close it (engine/tally.py).
        Statement(Sid="RecordRuns", Effect=Allow,
                  Action=[ddb.GetItem, ddb.BatchGetItem, ddb.PutItem, ddb.UpdateItem, ddb.Query],
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
        # journal/: the reconciliation reads the day's captured changes and records the missed ones.
        Statement(Sid="ReadAndWriteContentAndManifests", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.PutObject, s3_actions.AbortMultipartUpload],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX),
                            _objects(backup_bucket, contract.JOURNAL_PREFIX)]),
        Statement(Sid="IndexContent", Effect=Allow, Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(content_table, "Arn")]),
        Statement(Sid="RecordJobs", Effect=Allow, Action=[ddb.GetItem, ddb.BatchGetItem, ddb.PutItem, ddb.UpdateItem],
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


def capture_statements(source_bucket_arn, backup_bucket, runs_table, content_table, capture_queue,
                       key_arn) -> list[Statement]:
    """Reads the source's changed objects, stores content and writes journal segments. It cannot
    write or read snapshots (manifests/), delete anything, or write to the source."""
    return [
        Statement(Sid="ReadSourceObjects", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.GetObjectVersion],
                  Resource=[objects_in(source_bucket_arn)]),
        # ListBucket: a HEAD of a key that is gone answers 404 (not 403) only with it, which is how
        # the capture tells a deleted object from a refused read.
        Statement(Sid="TellMissingSourceObjects", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[source_bucket_arn]),
        Statement(Sid="StoreContentAndJournal", Effect=Allow,
                  Action=[s3_actions.GetObject, s3_actions.PutObject, s3_actions.AbortMultipartUpload],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.JOURNAL_PREFIX)]),
        # Store-once is one conditional UpdateItem (claim or touch, engine/contentstore.py).
        Statement(Sid="IndexContent", Effect=Allow, Action=[ddb.GetItem, ddb.UpdateItem],
                  Resource=[GetAtt(content_table, "Arn")]),
        Statement(Sid="CountChangeBursts", Effect=Allow, Action=[ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")],
                  Condition=all_of(ForAllValuesStringLike("dynamodb:LeadingKeys", ["BURST#*"]))),
        Statement(Sid="ConsumeChanges", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage,
                          sqs_actions.ChangeMessageVisibility, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(capture_queue, "Arn")]),
        key_use_statement(key_arn, "s3", "dynamodb", "sqs", "lambda"),
    ]


def dead_letter_statements(runs_table, dead_letter_queue, topic, key_arn) -> list[Statement]:
    """Consumes the job dead-letter queue and records each job FAILED (its run's counters move in
    the same transaction, whose Update items need UpdateItem); announces a run it closes."""
    return [
        Statement(Sid="ConsumeDeadLetters", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage,
                          sqs_actions.ChangeMessageVisibility, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(dead_letter_queue, "Arn")]),
        Statement(Sid="RecordFailedJobs", Effect=Allow, Action=[ddb.GetItem, ddb.BatchGetItem, ddb.UpdateItem],
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
                  Resource=[_objects(backup_bucket, contract.MANIFEST_PREFIX),
                            _objects(backup_bucket, contract.JOURNAL_PREFIX)]),
        Statement(Sid="DeleteExpiredBackups", Effect=Allow, Action=[s3_actions.DeleteObject],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX),
                            _objects(backup_bucket, contract.JOURNAL_PREFIX)]),
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


def drill_statements(backup_bucket, runs_table, failure_queue, key_arn) -> list[Statement]:
    """Reads snapshots and the content they name (never writes or deletes backup data); records
    each drill in the runs table."""
    return [
        Statement(Sid="ListSnapshots", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[GetAtt(backup_bucket, "Arn")]),
        Statement(Sid="ReadSnapshotsAndContent", Effect=Allow, Action=[s3_actions.GetObject],
                  Resource=[_objects(backup_bucket, contract.CONTENT_PREFIX),
                            _objects(backup_bucket, contract.MANIFEST_PREFIX)]),
        Statement(Sid="RecordDrills", Effect=Allow, Action=[ddb.PutItem], Resource=[GetAtt(runs_table, "Arn")]),
        Statement(Sid="ReportFailedInvocations", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(failure_queue, "Arn")]),
        key_use_statement(key_arn, "s3", "dynamodb", "sqs", "lambda"),
    ]
