"""Every IAM, key, bucket, topic and queue policy, as small named awacs builders.

Rules kept here (and asserted by tests/test_template_security.py):
- no `*` or `service:*` action; `Resource: "*"` only where AWS offers nothing narrower, with a reason;
- every service principal is held to this account (`aws:SourceAccount`) and, where the calling
  resource is known, to that resource (`aws:SourceArn`);
- KMS use by functions is only through the services that encrypt for them (`kms:ViaService`).
"""
from __future__ import annotations

from awacs import dynamodb as ddb
from awacs import ec2 as ec2_actions
from awacs import kms as kms_actions
from awacs import logs as logs_actions
from awacs import s3 as s3_actions
from awacs import sns as sns_actions
from awacs import sqs as sqs_actions
from awacs import sts
from awacs.aws import (
    Allow,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    AWSPrincipal,
    Bool,
    Condition,
    ConditionElement,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringLike,
    StringNotEqualsIfExists,
)
from troposphere import AccountId, GetAtt, Ref, Sub

from backup_cfn import common, layout
from backup_cfn.config import Environment

VERSION = "2012-10-17"

# Spelled out rather than kms:*: the account root administers the key and delegates use to IAM.
KEY_ADMIN_ACTIONS = [
    kms_actions.CancelKeyDeletion, kms_actions.CreateAlias, kms_actions.CreateGrant, kms_actions.Decrypt,
    kms_actions.DeleteAlias, kms_actions.DescribeKey, kms_actions.DisableKey, kms_actions.DisableKeyRotation,
    kms_actions.EnableKey, kms_actions.EnableKeyRotation, kms_actions.Encrypt, kms_actions.GenerateDataKey,
    kms_actions.GenerateDataKeyWithoutPlaintext, kms_actions.GetKeyPolicy, kms_actions.GetKeyRotationStatus,
    kms_actions.ListAliases, kms_actions.ListGrants, kms_actions.ListKeyPolicies,
    kms_actions.ListKeyRotations, kms_actions.ListResourceTags, kms_actions.PutKeyPolicy,
    kms_actions.ReEncryptFrom, kms_actions.ReEncryptTo, kms_actions.RetireGrant, kms_actions.RevokeGrant,
    kms_actions.RotateKeyOnDemand, kms_actions.ScheduleKeyDeletion, kms_actions.TagResource,
    kms_actions.UntagResource, kms_actions.UpdateAlias, kms_actions.UpdateKeyDescription,
]
ENCRYPT_DECRYPT = [kms_actions.Decrypt, kms_actions.GenerateDataKey]


def all_of(*elements: ConditionElement) -> Condition:
    """A Condition requiring every element. awacs's own Condition([...]) keeps only the last of two
    elements with the same operator; here same-operator elements are merged, and a key given
    twice is an error rather than a silent overwrite."""
    merged: dict[str, dict] = {}
    for element in elements:
        keys = merged.setdefault(element.condition, {})
        for key, value in element.get_dict().items():
            if key in keys:
                raise ValueError(f"condition key {key} given twice under {element.condition}")
            keys[key] = value
    return Condition([type(e)(merged.pop(e.condition)) for e in elements if e.condition in merged])


def document(*statements: Statement) -> PolicyDocument:
    return PolicyDocument(Version=VERSION, Statement=list(statements))


def service(name: str) -> Principal:
    return Principal("Service", name)


def account_root(*account_ids: str) -> AWSPrincipal:
    """Accounts as a principal; default: this stack's account."""
    ids = account_ids or ("${AWS::AccountId}",)
    roots = [Sub(f"arn:${{AWS::Partition}}:iam::{account_id}:root") for account_id in ids]
    return AWSPrincipal(roots if len(roots) > 1 else roots[0])


def this_account():
    return StringEquals("aws:SourceAccount", AccountId)


def via(*services: str, region: str = "${AWS::Region}") -> StringEquals:
    """kms:ViaService for the given services in `region` (default: this stack's region)."""
    names = [f"{name}.{region}.amazonaws.com" for name in services]
    return StringEquals("kms:ViaService", [Sub(n) if "${" in n else n for n in names])


def objects_in(bucket_arn, prefix: str = "") -> Sub:
    """The ARN of every object under `prefix` of a bucket, from the bucket's ARN (an object)."""
    return Sub(f"${{BucketArn}}/{prefix}*", BucketArn=bucket_arn)


# --- key policies --------------------------------------------------------------------------

def key_root_statement() -> Statement:
    return Statement(Sid="AccountAdministersKeyAndDelegatesToIam", Effect=Allow,
                     Principal=account_root(), Action=KEY_ADMIN_ACTIONS, Resource=["*"])


def backup_key_policy(env: Environment) -> PolicyDocument:
    """The primary key: used by S3, DynamoDB, SQS, SNS (through IAM), and by the services below,
    each of which must be named here or its writes to encrypted targets fail silently."""
    statements = [
        key_root_statement(),
        Statement(
            Sid="CloudWatchAlarmsPublishToEncryptedTopic", Effect=Allow,
            Principal=service("cloudwatch.amazonaws.com"), Action=ENCRYPT_DECRYPT, Resource=["*"],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", common.arn("cloudwatch", "alarm:*"))),
        ),
        Statement(
            Sid="EventBridgeDeliversToEncryptedTopicAndQueues", Effect=Allow,
            Principal=service("events.amazonaws.com"), Action=ENCRYPT_DECRYPT, Resource=["*"],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", common.arn("events", "rule/*"))),
        ),
        Statement(
            Sid="CloudTrailEncryptsLogs", Effect=Allow,
            Principal=service("cloudtrail.amazonaws.com"), Action=[kms_actions.GenerateDataKey], Resource=["*"],
            Condition=all_of(
                StringEquals("aws:SourceArn", common.arn("cloudtrail", f"trail/{common.trail_name(env)}")),
                StringLike("kms:EncryptionContext:aws:cloudtrail:arn",
                           common.arn("cloudtrail", "trail/*", region=False)),
            ),
        ),
        Statement(
            Sid="CloudTrailDescribesKey", Effect=Allow,
            Principal=service("cloudtrail.amazonaws.com"), Action=[kms_actions.DescribeKey], Resource=["*"],
            Condition=all_of(
                StringEquals("aws:SourceArn", common.arn("cloudtrail", f"trail/{common.trail_name(env)}"))),
        ),
        Statement(
            Sid="CloudWatchLogsEncryptsFunctionLogs", Effect=Allow,
            Principal=service(Sub("logs.${AWS::Region}.amazonaws.com")),
            Action=[kms_actions.Encrypt, kms_actions.Decrypt, kms_actions.ReEncryptFrom, kms_actions.ReEncryptTo,
                    kms_actions.GenerateDataKey, kms_actions.DescribeKey],
            Resource=["*"],
            Condition=all_of(ArnLike("kms:EncryptionContext:aws:logs:arn",
                                        common.arn("logs", f"log-group:/aws/lambda/{env.stack_name}-*"))),
        ),
    ]
    if env.trusted_account_ids:
        statements.append(trusted_accounts_decrypt_statement(env))
    return document(*statements)


def trusted_accounts_decrypt_statement(env: Environment) -> Statement:
    """Trusted accounts may decrypt only while reading objects through S3 (restore), nothing else."""
    return Statement(
        Sid="TrustedAccountsDecryptThroughS3", Effect=Allow,
        Principal=account_root(*env.trusted_account_ids),
        Action=[kms_actions.Decrypt, kms_actions.DescribeKey], Resource=["*"],
        Condition=all_of(via("s3")),
    )


def replica_key_policy(env: Environment) -> PolicyDocument:
    """The replica key, in the replica region: the primary's replication role encrypts with it.
    The role lives in the other stack; KMS rejects a principal that does not exist yet, so it is
    named by aws:PrincipalArn under the account principal instead."""
    role_arn = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + common.replication_role_name(env))
    statements = [
        key_root_statement(),
        Statement(
            Sid="ReplicationRoleEncryptsReplicas", Effect=Allow, Principal=account_root(),
            Action=[kms_actions.Encrypt, kms_actions.GenerateDataKey], Resource=["*"],
            Condition=all_of(ArnEquals("aws:PrincipalArn", role_arn), via("s3")),
        ),
    ]
    if env.trusted_account_ids:
        statements.append(trusted_accounts_decrypt_statement(env))
    return document(*statements)


# --- bucket policies -----------------------------------------------------------------------

def deny_insecure_transport(bucket) -> Statement:
    return Statement(
        Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"), Action=[s3_actions.Action("*")],
        Resource=[GetAtt(bucket, "Arn"), objects_in(GetAtt(bucket, "Arn"))],
        Condition=all_of(Bool("aws:SecureTransport", "false")),
    )


def deny_uploads_not_encrypted_with(bucket, key_arn) -> list[Statement]:
    """Uploads may omit the headers (the bucket default applies our key) but may not name another
    algorithm or key. `IfExists` is what lets default encryption through."""
    objects = objects_in(GetAtt(bucket, "Arn"))
    return [
        Statement(
            Sid="DenyUploadsWithOtherEncryption", Effect=Deny, Principal=Principal("*"),
            Action=[s3_actions.PutObject], Resource=[objects],
            Condition=all_of(StringNotEqualsIfExists("s3:x-amz-server-side-encryption", "aws:kms")),
        ),
        Statement(
            Sid="DenyUploadsWithOtherKey", Effect=Deny, Principal=Principal("*"),
            Action=[s3_actions.PutObject], Resource=[objects],
            Condition=all_of(StringNotEqualsIfExists("s3:x-amz-server-side-encryption-aws-kms-key-id", key_arn)),
        ),
    ]


def trusted_accounts_read_statement(env: Environment, bucket) -> Statement:
    """Read-only restore access for trusted accounts: list and read, nothing else."""
    return Statement(
        Sid="TrustedAccountsRestoreReadOnly", Effect=Allow,
        Principal=account_root(*env.trusted_account_ids),
        Action=[s3_actions.GetObject, s3_actions.GetObjectVersion, s3_actions.ListBucket],
        Resource=[GetAtt(bucket, "Arn"), objects_in(GetAtt(bucket, "Arn"))],
        Condition=all_of(StringEquals("aws:PrincipalAccount", list(env.trusted_account_ids))),
    )


ROOT_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"


def deny_backup_deletes(bucket, deleter_role_arn=None) -> list[Statement]:
    """Deleting backup data is the collector's job alone. A delete without a version leaves a
    recoverable version behind; deleting a version destroys data, so only the account root (break
    glass) may, and lifecycle expiry, which no bucket policy governs."""
    objects = objects_in(GetAtt(bucket, "Arn"))
    deleters = [Sub(ROOT_ARN)] + ([deleter_role_arn] if deleter_role_arn is not None else [])
    return [
        Statement(Sid="OnlyTheCollectorDeletesBackups", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.DeleteObject], Resource=[objects],
                  Condition=all_of(ArnNotEquals("aws:PrincipalArn", deleters))),
        Statement(Sid="NobodyDeletesBackupVersions", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.DeleteObjectVersion], Resource=[objects],
                  Condition=all_of(ArnNotEquals("aws:PrincipalArn", Sub(ROOT_ARN)))),
    ]


def backup_bucket_policy(env: Environment, bucket, key_arn, deleter_role_arn=None) -> PolicyDocument:
    """Backup and replica buckets: TLS only, our key only, deletes only by the collector (primary)
    or nobody (replica: deletes arrive by replication, which is not a delete call)."""
    statements = [deny_insecure_transport(bucket), *deny_uploads_not_encrypted_with(bucket, key_arn),
                  *deny_backup_deletes(bucket, deleter_role_arn)]
    if env.trusted_account_ids:
        statements.append(trusted_accounts_read_statement(env, bucket))
    return document(*statements)


def encrypted_bucket_policy(bucket, key_arn) -> PolicyDocument:
    """Source and trail buckets: TLS only, our key only."""
    return document(deny_insecure_transport(bucket), *deny_uploads_not_encrypted_with(bucket, key_arn))


def access_log_bucket_policy(log_bucket, logged_buckets: list) -> PolicyDocument:
    return document(
        deny_insecure_transport(log_bucket),
        Statement(
            Sid="S3ServerAccessLogsDelivery", Effect=Allow, Principal=service("logging.s3.amazonaws.com"),
            Action=[s3_actions.PutObject], Resource=[objects_in(GetAtt(log_bucket, "Arn"))],
            Condition=all_of(
                this_account(),
                ArnLike("aws:SourceArn", [GetAtt(b, "Arn") for b in logged_buckets]),
            ),
        ),
    )


def trail_bucket_policy(env: Environment, trail_bucket, key_arn) -> PolicyDocument:
    trail_arn = common.arn("cloudtrail", f"trail/{common.trail_name(env)}")
    return document(
        deny_insecure_transport(trail_bucket),
        Statement(
            Sid="CloudTrailChecksBucketAcl", Effect=Allow, Principal=service("cloudtrail.amazonaws.com"),
            Action=[s3_actions.GetBucketAcl], Resource=[GetAtt(trail_bucket, "Arn")],
            Condition=all_of(StringEquals("aws:SourceArn", trail_arn)),
        ),
        Statement(
            Sid="CloudTrailWritesLogs", Effect=Allow, Principal=service("cloudtrail.amazonaws.com"),
            Action=[s3_actions.PutObject],
            Resource=[Sub("${BucketArn}/AWSLogs/${AWS::AccountId}/*", BucketArn=GetAtt(trail_bucket, "Arn"))],
            Condition=all_of(StringEquals("aws:SourceArn", trail_arn),
                             StringEquals("s3:x-amz-acl", "bucket-owner-full-control")),
        ),
    )


# --- topic and queue policies -------------------------------------------------------------

def topic_policy(topic) -> PolicyDocument:
    """CloudWatch alarms and EventBridge rules of this account may publish; nothing over plain HTTP."""
    return document(
        Statement(
            Sid="CloudWatchAlarmsPublish", Effect=Allow, Principal=service("cloudwatch.amazonaws.com"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", common.arn("cloudwatch", "alarm:*"))),
        ),
        Statement(
            Sid="EventBridgePublish", Effect=Allow, Principal=service("events.amazonaws.com"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", common.arn("events", "rule/*"))),
        ),
        Statement(
            Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(Bool("aws:SecureTransport", "false")),
        ),
    )


def failed_events_queue_policy(queue, rules: list) -> PolicyDocument:
    """EventBridge puts undeliverable schedule events here (the rules' DLQ)."""
    return document(
        Statement(
            Sid="EventBridgeRulesDeadLetter", Effect=Allow, Principal=service("events.amazonaws.com"),
            Action=[sqs_actions.SendMessage], Resource=[GetAtt(queue, "Arn")],
            Condition=all_of(ArnEquals("aws:SourceArn", [GetAtt(rule, "Arn") for rule in rules])),
        ),
    )


# --- role policies -------------------------------------------------------------------------

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
                  Resource=[_objects(backup_bucket, layout.CONTENT_PREFIX),
                            _objects(backup_bucket, layout.MANIFEST_PREFIX)]),
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
                  Resource=[_objects(backup_bucket, layout.CONTENT_PREFIX),
                            _objects(backup_bucket, layout.MANIFEST_PREFIX)]),
        Statement(Sid="IndexContent", Effect=Allow, Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(content_table, "Arn")]),
        Statement(Sid="RecordJobs", Effect=Allow, Action=[ddb.GetItem, ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")]),
        Statement(Sid="ConsumeJobs", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage,
                          sqs_actions.ChangeMessageVisibility, sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(job_queue, "Arn")]),
        Statement(Sid="PublishRunSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        key_use_statement(key_arn, "s3", "dynamodb", "sqs", "sns", "lambda"),
    ]


def pruner_statements(backup_bucket, runs_table, content_table, topic, failure_queue, key_arn) -> list[Statement]:
    """The only deleter: expired manifests and unreferenced content, nothing else."""
    return [
        Statement(Sid="ListBackups", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[GetAtt(backup_bucket, "Arn")]),
        Statement(Sid="ReadManifests", Effect=Allow, Action=[s3_actions.GetObject],
                  Resource=[_objects(backup_bucket, layout.MANIFEST_PREFIX)]),
        Statement(Sid="DeleteExpiredBackups", Effect=Allow, Action=[s3_actions.DeleteObject],
                  Resource=[_objects(backup_bucket, layout.CONTENT_PREFIX),
                            _objects(backup_bucket, layout.MANIFEST_PREFIX)]),
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


