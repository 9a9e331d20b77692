"""Alarms on the trail's events (CloudTrail delivers them to its log group; stack/audit.py): the
changes that would quietly undo a backup. Each is a metric filter on the log group and an alarm
on its metric that publishes to the encrypted topic."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, cloudwatch, logs

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack.resource_options import tags

# What changes what the backup bucket keeps, who may delete in it, or where it replicates.
BUCKET_CONFIGURATION_EVENTS = ("PutBucketPolicy", "DeleteBucketPolicy", "PutBucketLifecycle", "DeleteBucketLifecycle",
                               "PutBucketReplication", "DeleteBucketReplication", "PutBucketVersioning",
                               "PutObjectLockConfiguration")
KEY_LOSS_EVENTS = ("DisableKey", "ScheduleKeyDeletion")
DELETE_EVENTS = ("DeleteObject", "DeleteObjects")


@dataclass(frozen=True)
class AuditAlarm:
    name: str
    description: str
    pattern: str        # a CloudWatch Logs filter pattern, with ${Bucket} / ${KeyArn} for Sub


def _any_event(events: tuple[str, ...]) -> str:
    return "(" + " || ".join(f'($.eventName = "{name}")' for name in events) + ")"


AUDIT_ALARMS = (
    AuditAlarm("BackupBucketConfigurationChanged",
               "The backup bucket's policy, lifecycle, replication, versioning or Object Lock was changed.",
               '{ ($.eventSource = "s3.amazonaws.com") && ' + _any_event(BUCKET_CONFIGURATION_EVENTS)
               + ' && ($.requestParameters.bucketName = "${Bucket}") }'),
    AuditAlarm("BackupKeyDisabledOrScheduledForDeletion",
               "The backup key was disabled or scheduled for deletion: every backup would become unreadable.",
               '{ ($.eventSource = "kms.amazonaws.com") && ' + _any_event(KEY_LOSS_EVENTS)
               + ' && ($.resources[0].ARN = "${KeyArn}") }'),
    AuditAlarm("BackupDeleteDenied",
               "Someone tried to delete backup objects and was refused (the bucket policy lets only the collector).",
               '{ ($.eventSource = "s3.amazonaws.com") && ' + _any_event(DELETE_EVENTS)
               + ' && ($.errorCode = "AccessDenied") && ($.requestParameters.bucketName = "${Bucket}") }'),
)


def metric_namespace(env: Environment) -> str:
    """Metric filters cannot add a fixed dimension: one namespace per stack keeps two stacks apart."""
    return f"{contract.METRIC_NAMESPACE}/Audit/{env.stack_name}"


def add_audit_alarms(t: Template, env: Environment, *, topic, log_group, backup_bucket, key) -> list[cloudwatch.Alarm]:
    alarms = []
    for spec in AUDIT_ALARMS:
        t.add_resource(logs.MetricFilter(
            f"{spec.name}Filter", LogGroupName=Ref(log_group),
            FilterPattern=Sub(spec.pattern, Bucket=Ref(backup_bucket), KeyArn=GetAtt(key, "Arn")),
            MetricTransformations=[logs.MetricTransformation(
                MetricNamespace=metric_namespace(env), MetricName=spec.name, MetricValue="1", DefaultValue=0)],
        ))
        alarms.append(t.add_resource(cloudwatch.Alarm(
            f"{spec.name}Alarm", AlarmDescription=spec.description,
            Namespace=metric_namespace(env), MetricName=spec.name, Statistic="Sum", Period=300,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching", AlarmActions=[Ref(topic)], Tags=tags(env),
        )))
    return alarms
