"""Key policies: the backup key (primary region) and the replica key (replica region).

A key policy is the key's only authority: IAM policies grant use of a key only where the key
policy delegates to the account (the first statement here), and AWS services named below use the
key on the stack's behalf, each held to this account and, where known, to the calling resource.
"""
from __future__ import annotations

from awacs import kms as kms_actions
from awacs.aws import (
    Allow,
    ArnEquals,
    ArnLike,
    ArnLikeIfExists,
    BoolIfExists,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringEqualsIfExists,
    StringLike,
)
from troposphere import AccountId, Sub

from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.policies.elements import (
    ENCRYPT_DECRYPT,
    account_root,
    all_of,
    document,
    service,
    this_account,
    via,
)

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



def key_root_statement() -> Statement:
    return Statement(Sid="AccountAdministersKeyAndDelegatesToIam", Effect=Allow,
                     Principal=account_root(), Action=KEY_ADMIN_ACTIONS, Resource=["*"])


def logs_encrypt_log_groups(log_group_arns: list) -> Statement:
    """CloudWatch Logs encrypts these log groups with the key, in the key's Region (CloudWatch Logs
    User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the context names the log group)."""
    return Statement(
        Sid="CloudWatchLogsEncryptsLogGroups", Effect=Allow,
        Principal=service(Sub("logs.${AWS::Region}.amazonaws.com")),
        Action=[kms_actions.Encrypt, kms_actions.Decrypt, kms_actions.ReEncryptFrom, kms_actions.ReEncryptTo,
                kms_actions.GenerateDataKey, kms_actions.DescribeKey],
        Resource=["*"],
        Condition=all_of(ArnLike("kms:EncryptionContext:aws:logs:arn",
                                 log_group_arns if len(log_group_arns) > 1 else log_group_arns[0])),
    )


def deny_grants_not_for_aws_resources() -> Statement:
    """Grants only through the services that use the key (DynamoDB, Lambda... create their own):
    nobody hands out the key's use directly. Spelled exactly as Control Tower's CT.KMS.PR.3 reads it."""
    return Statement(
        Sid="DenyGrantsNotForAwsResources", Effect=Deny, Principal=Principal("*"),
        Action=[kms_actions.CreateGrant], Resource=["*"],
        Condition=all_of(BoolIfExists("kms:GrantIsForAWSResource", "false"),
                         BoolIfExists("aws:PrincipalIsAWSService", "false")),
    )


def backup_key_policy(env: Environment) -> PolicyDocument:
    """The primary key: used by S3, DynamoDB, SQS, SNS (through IAM), and by the services below,
    each of which must be named here or its writes to encrypted targets fail silently."""
    statements = [
        key_root_statement(),
        Statement(
            Sid="CloudWatchAlarmsPublishToEncryptedTopic", Effect=Allow,
            Principal=service("cloudwatch.amazonaws.com"), Action=ENCRYPT_DECRYPT, Resource=["*"],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", names.arn("cloudwatch", "alarm:*"))),
        ),
        eventbridge_delivers_to_encrypted_queues(env),
        # The trail's ARN in the context carries its home region (arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME);
        # CreateTrail refuses a key it cannot use with exactly that context.
        Statement(
            Sid="CloudTrailEncryptsLogs", Effect=Allow,
            Principal=service("cloudtrail.amazonaws.com"), Action=[kms_actions.GenerateDataKey], Resource=["*"],
            Condition=all_of(StringEquals("aws:SourceArn", names.trail_arn(env)),
                             StringEquals("kms:EncryptionContext:aws:cloudtrail:arn", names.trail_arn(env))),
        ),
        cloudtrail_decrypts_through_the_trail_bucket_key(env),
        Statement(
            Sid="CloudTrailDescribesKey", Effect=Allow,
            Principal=service("cloudtrail.amazonaws.com"), Action=[kms_actions.DescribeKey], Resource=["*"],
            Condition=all_of(StringEquals("aws:SourceArn", names.trail_arn(env))),
        ),
        logs_encrypt_log_groups([names.arn("logs", f"log-group:{names.log_group_name(env, '*')}"),
                                 names.arn("logs", f"log-group:{names.trail_log_group_name(env)}")]),
        deny_grants_not_for_aws_resources(),
    ]
    if env.trusted_account_ids:
        statements.append(trusted_accounts_decrypt_statement(env))
    return document(*statements)


def eventbridge_delivers_to_encrypted_queues(env: Environment) -> Statement:
    """EventBridge putting an undeliverable schedule event into the failure queue (the rules' DLQ):
    SQS asks KMS for the queue's data key on EventBridge's behalf, as events.amazonaws.com.

    AWS documents this statement with no condition at all ("If you create a rule with an encrypted
    Amazon SQS queue as a target, you must have the following section included in your AWS KMS key
    policy", EventBridge User Guide, Creating rules; SQS Developer Guide, Key management, "Configure
    KMS permissions for AWS services"), and nowhere says whether that KMS request carries
    aws:SourceArn or aws:SourceAccount. So the statement is right either way: it requires what every
    such request certainly has, SQS of this region asking (kms:ViaService) for a queue of this stack
    (the aws:sqs:arn encryption context SQS binds every data key to), and holds the source keys to this
    account's rules only when they are present (...IfExists). The queue policy still admits only the
    stack's own rules (aws:SourceArn, which EventBridge documents for sqs:SendMessage)."""
    return Statement(
        Sid="EventBridgeDeliversToEncryptedQueues", Effect=Allow,
        Principal=service("events.amazonaws.com"), Action=ENCRYPT_DECRYPT, Resource=["*"],
        Condition=all_of(via("sqs"),
                         StringLike("kms:EncryptionContext:aws:sqs:arn", names.arn("sqs", f"{env.stack_name}-*")),
                         StringEqualsIfExists("aws:SourceAccount", AccountId),
                         ArnLikeIfExists("aws:SourceArn", names.arn("events", "rule/*"))),
    )


def cloudtrail_decrypts_through_the_trail_bucket_key(env: Environment) -> Statement:
    """The trail bucket uses an S3 Bucket Key under this key, and "If you are using an existing S3
    bucket with an S3 Bucket Key, kms:Decrypt permissions are required to create or update a trail
    with SSE-KMS encryption enabled" (CloudTrail User Guide, Configure AWS KMS key policies for
    CloudTrail, Granting decrypt permissions). The same section gives the statement "required to
    allow the CloudTrail service principal to decrypt trail logs": the principal is the service,
    which writes (and test-writes, when the trail is created or updated) the log objects; the
    deploying principal only calls CreateTrail and needs no Decrypt. Narrowed by aws:SourceArn,
    which "is always the trail ARN" on CloudTrail's key requests (same page), and nothing else: the
    page does not say whether the Decrypt comes through S3 (the bucket key's context) or from
    CloudTrail itself (its own context), and either must work."""
    return Statement(
        Sid="CloudTrailDecryptsThroughTheTrailBucketKey", Effect=Allow,
        Principal=service("cloudtrail.amazonaws.com"), Action=[kms_actions.Decrypt], Resource=["*"],
        Condition=all_of(StringEquals("aws:SourceArn", names.trail_arn(env))),
    )


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
    role_arn = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + names.replication_role_name(env))
    statements = [
        key_root_statement(),
        # Decrypt too: with a bucket key on the replica bucket, S3 decrypts the bucket key to encrypt each replica.
        Statement(
            Sid="ReplicationRoleEncryptsReplicas", Effect=Allow, Principal=account_root(),
            Action=[kms_actions.Encrypt, kms_actions.GenerateDataKey, kms_actions.Decrypt], Resource=["*"],
            Condition=all_of(ArnEquals("aws:PrincipalArn", role_arn), via("s3")),
        ),
        deny_grants_not_for_aws_resources(),
    ]
    if env.trusted_account_ids:
        statements.append(trusted_accounts_decrypt_statement(env))
    return document(*statements)

