"""CloudTrail: management events plus S3 data events on the backup bucket, KMS-encrypted, with
log file validation, into a versioned bucket kept seven years."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, cloudtrail, s3

from backup_cfn.config import Environment
from backup_cfn.stack import names, storage
from backup_cfn.stack.policies import buckets as bucket_policies
from backup_cfn.stack.resource_options import skip_checks, tags

TRAIL_RETENTION_DAYS = 2557  # seven years, leap days included


def add_trail_bucket(t: Template, env: Environment, key, log_bucket) -> s3.Bucket:
    bucket = t.add_resource(storage.private_bucket(
        "TrailBucket", env, key=key, log_bucket=log_bucket, log_prefix="trail/",
        rules=[s3.LifecycleRule(
            Id="KeepAuditLogsSevenYears", Status="Enabled", Prefix="",
            ExpirationInDays=TRAIL_RETENTION_DAYS,
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=30),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=1),
        )],
    ))
    return bucket


@dataclass(frozen=True)
class Audit:
    trail: cloudtrail.Trail
    bucket: s3.Bucket


def add_trail(t: Template, env: Environment, *, key, log_bucket, audited_buckets: list) -> Audit:
    bucket = add_trail_bucket(t, env, key, log_bucket)
    bucket_policy = t.add_resource(s3.BucketPolicy(
        "TrailBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=bucket_policies.trail_bucket_policy(env, bucket, GetAtt(key, "Arn")),
    ))
    data_events = cloudtrail.AdvancedEventSelector(
        Name="S3 data events on the backup buckets",
        FieldSelectors=[
            cloudtrail.AdvancedFieldSelector(Field="eventCategory", Equals=["Data"]),
            cloudtrail.AdvancedFieldSelector(Field="resources.type", Equals=["AWS::S3::Object"]),
            cloudtrail.AdvancedFieldSelector(
                Field="resources.ARN", StartsWith=[Sub("${BucketArn}/", BucketArn=GetAtt(b, "Arn"))
                                                 for b in audited_buckets]),
        ],
    )
    management_events = cloudtrail.AdvancedEventSelector(
        Name="Management events",
        FieldSelectors=[cloudtrail.AdvancedFieldSelector(Field="eventCategory", Equals=["Management"])],
    )
    trail = t.add_resource(cloudtrail.Trail(
        "Trail",
        TrailName=names.trail_name(env),
        IsLogging=True,
        S3BucketName=Ref(bucket),
        KMSKeyId=GetAtt(key, "Arn"),
        EnableLogFileValidation=True,
        IncludeGlobalServiceEvents=True,
        IsMultiRegionTrail=env.multi_region_trail,
        AdvancedEventSelectors=[management_events, data_events],
        Tags=tags(env),
    ))
    trail.DependsOn = [bucket_policy]
    if not env.multi_region_trail:
        skip_checks(trail, {"CKV_AWS_67": f"environment '{env.name}' sets multi_region_trail = false: "
                                                 "this stack audits its own region"})
    return Audit(trail=trail, bucket=bucket)
