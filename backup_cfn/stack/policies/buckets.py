"""Bucket policies: backup and replica buckets, source and trail buckets, the access-log bucket."""
from __future__ import annotations

from awacs import s3 as s3_actions
from awacs.aws import (
    Allow,
    ArnLike,
    ArnNotEquals,
    Bool,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    Null,
    StringEquals,
    StringNotEquals,
    StringNotLike,
)
from troposphere import GetAtt, Join, Sub

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.policies.elements import ROOT_ARN, account_root, all_of, document, objects_in, service, this_account


def deny_insecure_transport(bucket) -> Statement:
    # The object ARN as Join, not Sub: Control Tower's CT.S3.PR.8 recognises only this form.
    return Statement(
        Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"), Action=[s3_actions.Action("*")],
        Resource=[GetAtt(bucket, "Arn"), Join("", [GetAtt(bucket, "Arn"), "/*"])],
        Condition=all_of(Bool("aws:SecureTransport", "false")),
    )


def deny_uploads_not_encrypted_with(bucket, key_arn) -> list[Statement]:
    """Uploads may omit the headers (the bucket default applies our key) but may not name another
    algorithm or key. Each deny applies only when its header is sent (`Null` false): a negated
    operator is true on a missing key, with or without IfExists, and would refuse every upload
    relying on the bucket default, and every UploadPartCopy and CompleteMultipartUpload, which
    never carry the headers."""
    objects = objects_in(GetAtt(bucket, "Arn"))
    algorithm, key_id = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    return [
        Statement(
            Sid="DenyUploadsWithOtherEncryption", Effect=Deny, Principal=Principal("*"),
            Action=[s3_actions.PutObject], Resource=[objects],
            Condition=all_of(Null(algorithm, "false"), StringNotEquals(algorithm, "aws:kms")),
        ),
        Statement(
            Sid="DenyUploadsWithOtherKey", Effect=Deny, Principal=Principal("*"),
            Action=[s3_actions.PutObject], Resource=[objects],
            Condition=all_of(Null(key_id, "false"), StringNotEquals(key_id, key_arn)),
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


def write_rules(bucket, source_bucket_name) -> list[Statement]:
    """Manifests are written once and content is copied from the source, as tightly as S3 can say it.

    - `DenyManifestOverwrites`: a PutObject under manifests/ or journal/ without If-None-Match is
      refused (S3 User Guide, "Enforce conditional writes on Amazon S3 buckets": `Null
      s3:if-none-match` with `Bool s3:ObjectCreationOperation`, the second key exempting the
      multipart calls that cannot carry the header). A written snapshot or journal segment cannot be
      replaced, only a missing one written (both are written once: engine/manifest.py, engine/journal.py).
    - `ContentCopiedOnlyFromTheSource`: a PutObject under content/ that copies (`s3:x-amz-copy-source`
      present) from anywhere but the source bucket is refused. A plain upload cannot be refused
      without refusing CompleteMultipartUpload too (neither carries a header to tell them apart),
      which the copy of content over 5 GiB needs; restores, verify and the drills check every
      content's SHA-256 against its name and fall back to the version that matches."""
    copy_source = "s3:x-amz-copy-source"
    return [
        Statement(Sid="DenyManifestOverwrites", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.PutObject],
                  Resource=[objects_in(GetAtt(bucket, "Arn"), prefix)
                            for prefix in (contract.MANIFEST_PREFIX, contract.JOURNAL_PREFIX)],
                  Condition=all_of(Null("s3:if-none-match", "true"), Bool("s3:ObjectCreationOperation", "true"))),
        Statement(Sid="ContentCopiedOnlyFromTheSource", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.PutObject], Resource=[objects_in(GetAtt(bucket, "Arn"), contract.CONTENT_PREFIX)],
                  Condition=all_of(Null(copy_source, "false"),
                                   StringNotLike(copy_source, [Join("", [source_bucket_name, "/*"]),
                                                               Join("", ["/", source_bucket_name, "/*"])]))),
    ]


def backup_bucket_policy(env: Environment, bucket, key_arn, deleter_role_arn=None, *,
                         writes: list[Statement] = ()) -> PolicyDocument:
    """Backup and replica buckets: TLS only, our key only, deletes only by the collector (primary)
    or nobody (replica: deletes arrive by replication, which is not a delete call); the primary's
    write rules (`write_rules`)."""
    statements = [deny_insecure_transport(bucket), *deny_uploads_not_encrypted_with(bucket, key_arn),
                  *deny_backup_deletes(bucket, deleter_role_arn), *writes]
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
    trail_arn = names.trail_arn(env)
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




def artifacts_bucket_policy(bucket) -> PolicyDocument:
    """The bootstrap stack's artifacts bucket: TLS only."""
    return document(deny_insecure_transport(bucket))
