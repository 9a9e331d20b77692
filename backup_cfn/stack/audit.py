"""CloudTrail: management events plus S3 data events on the backup bucket, KMS-encrypted, with
log file validation, into a versioned bucket kept seven years, and into a CloudWatch Logs group
(a year) where metric filters turn the events that matter to a backup into alarms
(stack/monitoring.py, add_audit_alarms)."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, cloudtrail, iam, logs, s3

from backup_cfn.config import Environment
from backup_cfn.stack import names, storage
from backup_cfn.stack.policies import buckets as bucket_policies, elements, roles as role_policies
from backup_cfn.stack.resource_options import TLS_STATEMENT_JOIN, retain, skip_checks, skip_lint, tags

TRAIL_RETENTION_DAYS = 2557  # seven years, leap days included
TRAIL_LOG_GROUP_DAYS = 365   # the alarms read minutes of it; a year is Control Tower's CT.CLOUDWATCH.PR.2 floor


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
    log_group: logs.LogGroup


def add_trail_log_group(t: Template, env: Environment, key) -> tuple[logs.LogGroup, iam.Role]:
    """The trail's CloudWatch Logs group and the role CloudTrail writes to it with."""
    log_group = t.add_resource(retain(logs.LogGroup(
        "TrailLogGroup", LogGroupName=names.trail_log_group_name(env), RetentionInDays=TRAIL_LOG_GROUP_DAYS,
        KmsKeyId=GetAtt(key, "Arn"), Tags=tags(env),
    )))
    role = t.add_resource(iam.Role(
        "TrailLogsRole",
        Description=f"backup-cfn {env.name}: CloudTrail delivers the trail's events to {names.trail_log_group_name(env)}",
        AssumeRolePolicyDocument=role_policies.cloudtrail_trust_policy(env),
        Policies=[iam.Policy(PolicyName="deliver-trail-events", PolicyDocument=elements.document(
            role_policies.trail_delivery_statement(env)))],
        Tags=tags(env),
    ))
    return log_group, role


def add_trail(t: Template, env: Environment, *, key, log_bucket, audited_buckets: list) -> Audit:
    bucket = add_trail_bucket(t, env, key, log_bucket)
    bucket_policy = t.add_resource(skip_lint(s3.BucketPolicy(
        "TrailBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=bucket_policies.trail_bucket_policy(env, bucket, GetAtt(key, "Arn")),
    ), TLS_STATEMENT_JOIN))
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
    log_group, logs_role = add_trail_log_group(t, env, key)
    trail = t.add_resource(cloudtrail.Trail(
        "Trail",
        TrailName=names.trail_name(env),
        IsLogging=True,
        S3BucketName=Ref(bucket),
        CloudWatchLogsLogGroupArn=GetAtt(log_group, "Arn"),
        CloudWatchLogsRoleArn=GetAtt(logs_role, "Arn"),
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
    return Audit(trail=trail, bucket=bucket, log_group=log_group)
