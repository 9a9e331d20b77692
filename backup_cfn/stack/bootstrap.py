"""The bootstrap stack: one artifacts bucket per account and region for handler packages and
templates too large to send inline (as CDK's bootstrap stack does). Built, linted, scanned and
golden-tested like the environments' stacks; `backup_cfn.deploy.artifacts` deploys it on first use."""
from __future__ import annotations

from troposphere import Output, Ref, Template, s3

from backup_cfn.stack import storage
from backup_cfn.stack.policies.buckets import artifacts_bucket_policy
from backup_cfn.stack.resource_options import TLS_STATEMENT_JOIN, skip_checks, skip_lint

STACK_NAME = "backup-cfn-bootstrap"
# Raised whenever the template changes, so deploy upgrades an older bootstrap stack it finds.
VERSION = 3
OUTPUT_BUCKET = "ArtifactsBucketName"
OUTPUT_VERSION = "BootstrapVersion"
PACKAGE_PREFIX = "handlers/"
TEMPLATE_PREFIX = "templates/"
# A package must outlive the stack update that uses it (a rollback re-reads it); templates are read
# once, when the change set is created.
PACKAGE_EXPIRY_DAYS = 365
TEMPLATE_EXPIRY_DAYS = 30
# Versioned, so an overwritten or deleted artifact can be recovered for a while (and a rollback
# never finds its package gone); older versions are not kept forever.
NONCURRENT_EXPIRY_DAYS = 30


def build_bootstrap_template() -> Template:
    t = Template(Description="backup-cfn bootstrap: artifacts bucket for handler packages and large templates")
    bucket = t.add_resource(skip_checks(s3.Bucket(
        "ArtifactsBucket",
        DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
        ObjectLockEnabled=True,  # no default retention: expiry still cleans up; Control Tower's CT.S3.PR.9
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=storage.block_public_access(),
        OwnershipControls=storage.owner_enforced(),
        VersioningConfiguration=storage.versioned(),
        NotificationConfiguration=storage.events_to_eventbridge(),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[
            s3.LifecycleRule(Id="ExpireOldPackages", Status="Enabled", Prefix=PACKAGE_PREFIX,
                             ExpirationInDays=PACKAGE_EXPIRY_DAYS),
            s3.LifecycleRule(Id="ExpireOldTemplates", Status="Enabled", Prefix=TEMPLATE_PREFIX,
                             ExpirationInDays=TEMPLATE_EXPIRY_DAYS),
            s3.LifecycleRule(Id="CleanUpOldVersionsAndUploads", Status="Enabled", Prefix="",
                             NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                                 NoncurrentDays=NONCURRENT_EXPIRY_DAYS),
                             ExpiredObjectDeleteMarker=True,
                             AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=1)),
        ]),
    ), {
        "CKV_AWS_18": "holds build artifacts, not data: handler zips named by their SHA-256 and templates, "
                      "each also in git; CloudTrail records who changed them",
        "CKV_AWS_145": "one bucket serves every environment of the account and region before any of their keys "
                       "exists: SSE-S3, so CloudFormation and Lambda read artifacts with no key policy to manage",
    }))
    t.add_resource(skip_lint(s3.BucketPolicy("ArtifactsBucketPolicy", Bucket=Ref(bucket),
                                             PolicyDocument=artifacts_bucket_policy(bucket)), TLS_STATEMENT_JOIN))
    t.add_output(Output(OUTPUT_BUCKET, Value=Ref(bucket)))
    t.add_output(Output(OUTPUT_VERSION, Value=str(VERSION)))
    return t
