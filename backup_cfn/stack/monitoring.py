"""CloudWatch: one dashboard for storage, queues, functions and the engine's own figures, and
alarms that publish to the encrypted topic (the key policy lets CloudWatch use the key)."""
from __future__ import annotations

import json

from troposphere import GetAtt, Ref, Select, Split, Sub, Template, cloudwatch

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack.functions import FunctionResources, logical_prefix
from backup_cfn.stack.resource_options import tags

NO_SUCCESS_HOURS = 26  # a daily schedule plus two hours of slack before anyone is woken
# Replication is behind when its newest pending object waited this long, three 5-minute periods in a
# row: well past RTC's 15 minutes, short enough that a DR copy never lags a day unnoticed.
REPLICATION_LATENCY_ALARM_SECONDS = 3600
REPLICATION_LATENCY_PERIODS = 3
DEAD_LETTER_AGE_ALARM_SECONDS = 900
# Events going missing is a pattern, not one late event: two nights in a row.
MISSED_CHANGE_NIGHTS = 2


def add_alarms(t: Template, env: Environment, *, topic, job_dead_letters, failure_queue,
               functions: dict[str, FunctionResources], restore_dead_letters) -> list[cloudwatch.Alarm]:
    actions = dict(AlarmActions=[Ref(topic)], OKActions=[Ref(topic)])
    alarms = [
        # The dead-letter consumer takes each dead-lettered job off the queue as it records it, so
        # "not empty" would only flicker: the alarm counts the jobs it took instead, and a second
        # one fires when a message stays there (the consumer itself failing).
        _engine_count("JobsDeadLetteredAlarm", contract.METRIC_JOBS_DEAD_LETTERED, 300, env, actions,
                      "Backup jobs failed every retry and reached the dead-letter queue (recorded FAILED)."),
        _not_drained("JobDeadLetterQueueNotDrainedAlarm", job_dead_letters, env, actions,
                     "A dead-lettered job has waited 15 minutes: the dead-letter consumer cannot record it."),
        _not_drained("RestoreDeadLetterQueueNotDrainedAlarm", restore_dead_letters, env, actions,
                     "A dead-lettered restore job has waited 15 minutes: the restore function cannot record it."),
        _queue_not_empty("FailedInvocationQueueNotEmptyAlarm", failure_queue, env, actions,
                         "A scheduled backup or collection could not run (failed invocation or event)."),
        cloudwatch.Alarm(
            "NoSuccessfulBackupAlarm",
            AlarmDescription=f"No backup run completed successfully in {NO_SUCCESS_HOURS} hours.",
            Namespace=contract.METRIC_NAMESPACE, MetricName=contract.METRIC_RUNS_SUCCEEDED,
            Dimensions=[cloudwatch.MetricDimension(Name=contract.METRIC_DIMENSION, Value=env.stack_name)],
            Statistic="Sum", Period=3600, EvaluationPeriods=NO_SUCCESS_HOURS, DatapointsToAlarm=NO_SUCCESS_HOURS,
            Threshold=1, ComparisonOperator="LessThanThreshold",
            # No data at all is exactly the failure this alarm exists for.
            TreatMissingData="breaching", Tags=tags(env), **actions,
        ),
        _engine_count("RestoreDrillFailedAlarm", contract.METRIC_DRILLS_FAILED, 3600, env, actions,
                      "A restore drill found a snapshot that would not restore: see `backup-cfn runs`.",
                      statistic="Maximum"),
        _engine_count("UsersFailedAlarm", contract.METRIC_USERS_FAILED, 3600, env, actions,
                      "At least one user's backup failed in the last hour."),
    ]
    for role, deployed in functions.items():
        alarms.append(cloudwatch.Alarm(
            f"{logical_prefix(role)}ErrorsAlarm",
            AlarmDescription=f"The {role} function reported errors.",
            Namespace="AWS/Lambda", MetricName="Errors",
            Dimensions=[cloudwatch.MetricDimension(Name="FunctionName", Value=Ref(deployed.function))],
            Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env), **actions,
        ))
    return [t.add_resource(alarm) for alarm in alarms]


def add_capture_alarms(t: Template, env: Environment, *, topic, capture_queue,
                       capture_dead_letters) -> list[cloudwatch.Alarm]:
    """Continuous protection: the RPO (the age of the oldest change not yet captured is the age of
    the capture queue's oldest message), a change given up on, events missed on consecutive
    nights (the reconciliation's count), and a ransomware-shaped burst of one user's changes."""
    actions = dict(AlarmActions=[Ref(topic)], OKActions=[Ref(topic)])
    stack = [cloudwatch.MetricDimension(Name=contract.METRIC_DIMENSION, Value=env.stack_name)]
    return [t.add_resource(alarm) for alarm in (
        cloudwatch.Alarm(
            "CaptureRpoAlarm",
            AlarmDescription=f"A change of the source has waited {contract.RPO_TARGET_SECONDS // 60} minutes to be "
                             "captured: continuous protection is behind its recovery point objective.",
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(capture_queue, "QueueName"))],
            Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=contract.RPO_TARGET_SECONDS,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env),
            **actions,
        ),
        _queue_not_empty("CaptureDeadLetterQueueNotEmptyAlarm", capture_dead_letters, env, actions,
                         "A change could not be captured after every retry: the nightly run will back it up; "
                         "see the capture function's log."),
        cloudwatch.Alarm(
            "ChangesMissedAlarm",
            AlarmDescription=f"The nightly reconciliation found changes the capture missed, {MISSED_CHANGE_NIGHTS} "
                             "nights in a row: S3's events are not all reaching the journal.",
            Namespace=contract.METRIC_NAMESPACE, MetricName=contract.METRIC_CHANGES_MISSED, Dimensions=stack,
            Statistic="Sum", Period=86400, EvaluationPeriods=MISSED_CHANGE_NIGHTS,
            DatapointsToAlarm=MISSED_CHANGE_NIGHTS, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching", Tags=tags(env), **actions,
        ),
        _engine_count("ChangeBurstAlarm", contract.METRIC_USERS_BURSTING, contract.BURST_WINDOW_SECONDS, env, actions,
                      f"A user's files changed more than {env.burst_changes} times in "
                      f"{contract.BURST_WINDOW_SECONDS // 60} minutes (ransomware-shaped): the capture function's "
                      "log names the user; every minute before it stays restorable (restore --at)."),
    )]


def replica_bucket_name(replica_bucket_arn) -> Select:
    """arn:aws:s3:::NAME -> NAME: the replica lives in the other stack, known here only by ARN."""
    return Select(5, Split(":", replica_bucket_arn))


def add_replication_alarms(t: Template, env: Environment, *, topic, backup_bucket, replica_bucket_arn,
                           rule_id: str) -> list[cloudwatch.Alarm]:
    """S3 replication metrics (on in the replication rule): a failed replication, or replication
    falling an hour behind, so the disaster-recovery copy cannot stay empty unnoticed."""
    actions = dict(AlarmActions=[Ref(topic)], OKActions=[Ref(topic)])
    dimensions = [cloudwatch.MetricDimension(Name="SourceBucket", Value=Ref(backup_bucket)),
                  cloudwatch.MetricDimension(Name="DestinationBucket", Value=replica_bucket_name(replica_bucket_arn)),
                  cloudwatch.MetricDimension(Name="RuleId", Value=rule_id)]
    return [t.add_resource(alarm) for alarm in (
        cloudwatch.Alarm(
            "ReplicationFailedAlarm",
            AlarmDescription=f"Objects failed to replicate to the replica bucket in {env.replica_region}.",
            Namespace="AWS/S3", MetricName="OperationsFailedReplication", Dimensions=dimensions,
            Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env),
            **actions,
        ),
        cloudwatch.Alarm(
            "ReplicationBehindAlarm",
            AlarmDescription=f"Replication to {env.replica_region} is more than "
                             f"{REPLICATION_LATENCY_ALARM_SECONDS // 60} minutes behind.",
            Namespace="AWS/S3", MetricName="ReplicationLatency", Dimensions=dimensions,
            Statistic="Maximum", Period=300, EvaluationPeriods=REPLICATION_LATENCY_PERIODS,
            DatapointsToAlarm=REPLICATION_LATENCY_PERIODS, Threshold=REPLICATION_LATENCY_ALARM_SECONDS,
            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching", Tags=tags(env), **actions,
        ),
    )]


def _engine_count(title: str, metric: str, period: int, env: Environment, actions: dict, description: str, *,
                  statistic: str = "Sum") -> cloudwatch.Alarm:
    """At least one of an engine metric's events within the period (no data: all is well)."""
    return cloudwatch.Alarm(
        title, AlarmDescription=description,
        Namespace=contract.METRIC_NAMESPACE, MetricName=metric,
        Dimensions=[cloudwatch.MetricDimension(Name=contract.METRIC_DIMENSION, Value=env.stack_name)],
        Statistic=statistic, Period=period, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env), **actions,
    )


def _not_drained(title: str, queue, env: Environment, actions: dict, description: str) -> cloudwatch.Alarm:
    """A message older than DEAD_LETTER_AGE_ALARM_SECONDS in a queue its consumer should empty."""
    return cloudwatch.Alarm(
        title, AlarmDescription=description,
        Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(queue, "QueueName"))],
        Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=DEAD_LETTER_AGE_ALARM_SECONDS,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env), **actions,
    )


def _queue_not_empty(title: str, queue, env: Environment, actions: dict, description: str) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(
        title, AlarmDescription=description,
        Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(queue, "QueueName"))],
        Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Tags=tags(env), **actions,
    )


def _metric(namespace: str, name: str, *dimensions: str, **options) -> list:
    return [namespace, name, *dimensions, *([options] if options else [])]


def _widget(title: str, metrics: list, x: int, y: int, *, stat: str = "Sum", period: int = 300,
            width: int = 12, region: str = "${AWS::Region}") -> dict:
    return {"type": "metric", "x": x, "y": y, "width": width, "height": 6,
            "properties": {"title": title, "metrics": metrics, "stat": stat, "period": period,
                           "region": region, "view": "timeSeries"}}


def dashboard_body(env: Environment, function_roles: list[str], has_source_bucket: bool) -> str:
    """The dashboard JSON with ${Placeholders} that add_dashboard fills with Sub."""
    storage = []
    for bucket in ("BackupBucket", "SourceBucket", "AccessLogBucket", "TrailBucket"):
        if bucket == "SourceBucket" and not has_source_bucket:
            continue
        for storage_type in ("StandardStorage", "StandardIAStorage"):
            storage.append(_metric("AWS/S3", "BucketSizeBytes", "BucketName", f"${{{bucket}}}",
                                   "StorageType", storage_type))
    for storage_type in ("StandardStorage", "StandardIAStorage"):
        storage.append(_metric("AWS/S3", "BucketSizeBytes", "BucketName", "${ReplicaBucket}",
                               "StorageType", storage_type, region=env.replica_region))
    objects = [_metric("AWS/S3", "NumberOfObjects", "BucketName", "${BackupBucket}", "StorageType",
                       "AllStorageTypes"),
               _metric("AWS/S3", "NumberOfObjects", "BucketName", "${ReplicaBucket}", "StorageType",
                       "AllStorageTypes", region=env.replica_region)]
    queues = [_metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"${{{queue}}}")
              for queue in ("JobQueue", "JobDeadLetterQueue", "FailedInvocationQueue", "CaptureQueue",
                            "CaptureDeadLetterQueue")]
    oldest = [_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "${JobQueue}")]
    rpo = [_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "${CaptureQueue}"),
           _metric(contract.METRIC_NAMESPACE, contract.METRIC_CAPTURE_LATENCY, contract.METRIC_DIMENSION, env.stack_name)]
    errors = [_metric("AWS/Lambda", name, "FunctionName", f"${{{logical_prefix(role)}}}")
              for role in function_roles for name in ("Errors", "Throttles")]
    durations = [_metric("AWS/Lambda", "Duration", "FunctionName", f"${{{logical_prefix(role)}}}")
                 for role in function_roles]
    stack = (contract.METRIC_DIMENSION, env.stack_name)
    users = [_metric(contract.METRIC_NAMESPACE, contract.METRIC_USERS_BACKED_UP, *stack),
             _metric(contract.METRIC_NAMESPACE, contract.METRIC_USERS_FAILED, *stack),
             _metric(contract.METRIC_NAMESPACE, contract.METRIC_JOBS_DEAD_LETTERED, *stack),
             _metric(contract.METRIC_NAMESPACE, contract.METRIC_RUNS_SUCCEEDED, *stack)]
    data = [_metric(contract.METRIC_NAMESPACE, contract.METRIC_BYTES_NEW, *stack),
            _metric(contract.METRIC_NAMESPACE, contract.METRIC_BYTES_DEDUPLICATED, *stack)]
    continuous = [_metric(contract.METRIC_NAMESPACE, name, *stack) for name in (
        contract.METRIC_CHANGES_CAPTURED, contract.METRIC_CHANGES_MISSED, contract.METRIC_CAPTURE_EVENTS_IGNORED,
        contract.METRIC_USERS_BURSTING)]
    drills = [_metric(contract.METRIC_NAMESPACE, contract.METRIC_DRILLS_PASSED, *stack),
              _metric(contract.METRIC_NAMESPACE, contract.METRIC_DRILLS_FAILED, *stack)]
    widgets = [
        _widget("Stored bytes by bucket and storage class", storage, 0, 0, stat="Average", period=86400),
        _widget("Objects", objects, 12, 0, stat="Average", period=86400),
        _widget("Queue depth (visible messages)", queues, 0, 6, stat="Maximum"),
        _widget("Oldest job age (s)", oldest, 12, 6, stat="Maximum"),
        _widget("Function errors and throttles", errors, 0, 12),
        _widget("Function duration p95 (ms)", durations, 12, 12, stat="p95"),
        _widget("Users backed up / failed, jobs dead-lettered, runs succeeded", users, 0, 18, period=3600),
        _widget("Bytes stored new vs deduplicated", data, 12, 18, period=3600),
        _widget("Restore drills passed / failed", drills, 0, 24, period=86400),
        _widget("RPO: oldest uncaptured change, capture latency (s)", rpo, 12, 24, stat="Maximum", period=60),
        _widget("Changes captured / missed, events ignored, users bursting", continuous, 0, 30, period=3600),
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True)


def add_dashboard(t: Template, env: Environment, *, buckets: dict, replica_bucket_arn, queues: dict,
                  functions: dict[str, FunctionResources]) -> cloudwatch.Dashboard:
    variables = {name: Ref(bucket) for name, bucket in buckets.items()}
    variables["ReplicaBucket"] = replica_bucket_name(replica_bucket_arn)
    variables.update({name: GetAtt(queue, "QueueName") for name, queue in queues.items()})
    variables.update({logical_prefix(role): Ref(deployed.function) for role, deployed in functions.items()})
    body = dashboard_body(env, list(functions), has_source_bucket="SourceBucket" in buckets)
    return t.add_resource(cloudwatch.Dashboard(
        "Dashboard", DashboardName=f"{env.stack_name}-{env.region}", DashboardBody=Sub(body, **variables),
        Tags=tags(env)))
