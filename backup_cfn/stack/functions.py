"""Lambda: initiator (daily schedule), worker (SQS jobs), pruner (garbage collection), drill
(weekly restore drill), dead-letter consumer (records jobs that failed every delivery) and capture
(continuous protection, from the capture queue), each with its own least-privilege role and
KMS-encrypted log group, and the EventBridge schedules."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import AccountId, GetAtt, Ref, Template, awslambda, events, iam, logs
from troposphere.validators import integer

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.network import Network
from backup_cfn.stack.policies import elements, roles as role_policies
from backup_cfn.stack.resource_options import retain, skip_checks, tags

# A year: Control Tower's CT.CLOUDWATCH.PR.2 asks for at least 365 days.
LOG_RETENTION_DAYS = 365
ASYNC_RETRIES = contract.ASYNC_INVOKE_RETRIES
ASYNC_MAX_EVENT_AGE_SECONDS = 6 * 3600
SCHEDULE_RETRY_ATTEMPTS = 8
SCHEDULE_MAX_EVENT_AGE_SECONDS = 6 * 3600
# Dead-lettered jobs are few: two consumers (the smallest MaximumConcurrency) are plenty.
DEAD_LETTER_CONCURRENCY = 2


class QueueScalingConfig(awslambda.ScalingConfig):
    """The event source mapping's ScalingConfig. troposphere 4.11.1 generates two classes of this
    name and keeps WebFunction's (MaxEnvironments); subclassing passes its type check."""

    props = {"MaximumConcurrency": (integer, False)}


class FunctionLoggingConfig(awslambda.LoggingConfig):
    """The function's LoggingConfig, shadowed the same way in troposphere 4.11.1 (no LogFormat)."""

    props = {"ApplicationLogLevel": (str, False), "LogFormat": (str, False), "LogGroup": (str, False),
             "SystemLogLevel": (str, False)}


@dataclass(frozen=True)
class FunctionSpec:
    role: str           # "initiator", "worker", "pruner", "drill", "dead-letter": names, log groups, logical IDs
    handler: str
    description: str
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None  # 1 keeps the initiator and the collector single-instance


INITIATOR = FunctionSpec("initiator", contract.HANDLER_INITIATOR, "discovers users and enqueues one backup job each",
                         512, contract.INITIATOR_TIMEOUT_SECONDS, 1)
WORKER = FunctionSpec("worker", contract.HANDLER_WORKER, "backs up one user: incremental, content-deduplicated",
                      1024, contract.WORKER_TIMEOUT_SECONDS, None)
PRUNER = FunctionSpec("pruner", contract.HANDLER_PRUNER, "expires snapshots and deletes unreferenced content",
                      1024, contract.PRUNER_TIMEOUT_SECONDS, 1)
DRILL = FunctionSpec("drill", contract.HANDLER_DRILL, "restore drill: re-hashes the newest snapshots of sampled users",
                     1024, contract.DRILL_TIMEOUT_SECONDS, 1)
CAPTURE = FunctionSpec("capture", contract.HANDLER_CAPTURE,
                       "continuous protection: stores each change of the source within seconds, in the journal",
                       1024, contract.CAPTURE_TIMEOUT_SECONDS, None)
DEAD_LETTER = FunctionSpec("dead-letter", contract.HANDLER_DEAD_LETTER,
                           "records each dead-lettered backup job FAILED with its reason and closes its run",
                           256, contract.DEAD_LETTER_TIMEOUT_SECONDS, None)


@dataclass(frozen=True)
class FunctionResources:
    function: awslambda.Function
    role: iam.Role
    log_group: logs.LogGroup


@dataclass(frozen=True)
class FunctionWiring:
    """What the functions are wired to; passed in by template.build_template."""
    key: object
    source_bucket_arn: object
    source_bucket_name: object
    backup_bucket: object
    runs_table: object
    content_table: object
    job_queue: object
    dead_letter_queue: object
    capture_queue: object
    failure_queue: object
    topic: object
    code_bucket: object
    code_key: object
    network: Network | None


def logical_prefix(role: str) -> str:
    """"dead-letter" -> "DeadLetter": the start of the logical IDs of a function's resources."""
    return "".join(part.capitalize() for part in role.split("-"))


def _logical(spec: FunctionSpec, suffix: str) -> str:
    return f"{logical_prefix(spec.role)}{suffix}"


def add_log_group(t: Template, env: Environment, spec: FunctionSpec, key) -> logs.LogGroup:
    return t.add_resource(retain(logs.LogGroup(
        _logical(spec, "LogGroup"),
        LogGroupName=names.log_group_name(env, spec.role),
        RetentionInDays=LOG_RETENTION_DAYS,
        KmsKeyId=GetAtt(key, "Arn"),
        Tags=tags(env),
    )))


def add_function(t: Template, env: Environment, spec: FunctionSpec, statements: list, res: FunctionWiring, *,
                 environment: dict | None = None) -> FunctionResources:
    log_group = add_log_group(t, env, spec, res.key)
    if res.network is not None:
        statements = [*statements, role_policies.vpc_statement()]
    role = t.add_resource(iam.Role(
        _logical(spec, "FunctionRole"),
        Description=f"backup-cfn {spec.role}: {spec.description}",
        AssumeRolePolicyDocument=role_policies.lambda_trust_policy(),
        Policies=[iam.Policy(PolicyName=spec.role, PolicyDocument=elements.document(
            role_policies.log_statement(log_group), *statements))],
        Tags=tags(env),
    ))
    optional = {}
    if spec.reserved_concurrency is not None:
        optional["ReservedConcurrentExecutions"] = spec.reserved_concurrency
    if res.network is not None:
        optional["VpcConfig"] = res.network.vpc_config()
    function = t.add_resource(awslambda.Function(
        _logical(spec, "Function"),
        FunctionName=names.function_name(env, spec.role),
        Description=f"backup-cfn {spec.role}: {spec.description}",
        Runtime=contract.LAMBDA_RUNTIME,
        Architectures=[contract.LAMBDA_ARCHITECTURE],
        Handler=spec.handler,
        Code=awslambda.Code(S3Bucket=res.code_bucket, S3Key=res.code_key),
        Role=GetAtt(role, "Arn"),
        MemorySize=spec.memory_mb,
        Timeout=spec.timeout_seconds,
        LoggingConfig=FunctionLoggingConfig(LogGroup=Ref(log_group), LogFormat="JSON"),
        Environment=awslambda.Environment(Variables={**_environment(env, res), **(environment or {})}),
        KmsKeyArn=GetAtt(res.key, "Arn"),
        Tags=tags(env),
        **optional,
    ))
    skip_checks(function, _not_applicable_checks(env, spec, res))
    if res.network is not None:
        skip_checks(role, {"CKV_AWS_111": (
            "Lambda's network-interface actions (ManageVpcNetworkInterfaces) accept no narrower resource; "
            "AWS's own AWSLambdaVPCAccessExecutionRole grants them on *")})
    return FunctionResources(function=function, role=role, log_group=log_group)


def _not_applicable_checks(env: Environment, spec: FunctionSpec, res: FunctionWiring) -> dict[str, str]:
    reasons = {}
    if spec.role == "restorer":
        reasons["CKV_AWS_116"] = ("invoked synchronously by the SQS event sources of RestoreQueue (failed jobs go to "
                                  "RestoreDeadLetterQueue through its redrive policy) and of that dead-letter queue")
        reasons["CKV_AWS_115"] = ("concurrency is bounded by the queue subscription's MaximumConcurrency "
                                  "(max_concurrent_restores) without reserving it from the account pool")
    elif spec is WORKER:
        reasons["CKV_AWS_116"] = ("invoked synchronously by the SQS event source: failed jobs go to "
                                  "JobDeadLetterQueue through the queue's redrive policy, not a function DLQ")
        reasons["CKV_AWS_115"] = ("concurrency is bounded by the queue subscription's MaximumConcurrency "
                                  "(max_concurrent_backups) without reserving it from the account pool")
    elif spec is CAPTURE:
        reasons["CKV_AWS_116"] = ("invoked synchronously by the SQS event source of the capture queue: a change it "
                                  "fails on goes to CaptureDeadLetterQueue through the queue's redrive policy")
        reasons["CKV_AWS_115"] = ("concurrency is bounded by its queue subscription's MaximumConcurrency "
                                  "(capture_concurrency) without reserving it from the account pool")
    elif spec is DEAD_LETTER:
        reasons["CKV_AWS_116"] = ("invoked synchronously by the SQS event source of the dead-letter queue: a message "
                                  "it fails on stays in that queue, whose age alarm fires")
        reasons["CKV_AWS_115"] = ("concurrency is bounded by its queue subscription's MaximumConcurrency "
                                  "without reserving it from the account pool")
    else:
        reasons["CKV_AWS_116"] = ("asynchronous failures go to FailedInvocationQueue through the "
                                  "EventInvokeConfig on-failure destination, which records more than a DLQ")
    if res.network is None:
        reasons["CKV_AWS_117"] = f"environment '{env.name}' sets vpc_endpoints = false"
    return reasons


def _environment(env: Environment, res: FunctionWiring) -> dict:
    return {
        contract.ENV_SOURCE_BUCKET: res.source_bucket_name,
        contract.ENV_BACKUP_BUCKET: Ref(res.backup_bucket),
        contract.ENV_RUNS_TABLE: Ref(res.runs_table),
        contract.ENV_CONTENT_TABLE: Ref(res.content_table),
        contract.ENV_JOB_QUEUE_URL: Ref(res.job_queue),
        contract.ENV_TOPIC_ARN: Ref(res.topic),
        contract.ENV_KEY_ARN: GetAtt(res.key, "Arn"),
        contract.ENV_RETENTION_DAYS: str(env.retention_days),
        contract.ENV_KEEP_WEEKLY: str(env.keep_weekly),
        contract.ENV_KEEP_MONTHLY: str(env.keep_monthly),
        contract.ENV_KEEP_YEARLY: str(env.keep_yearly),
        contract.ENV_DRILL_USERS: str(env.drill_users),
        contract.ENV_PRIORITY_USERS: ",".join(env.priority_users),
        contract.ENV_STACK_NAME: env.stack_name,
        contract.ENV_RETRY_BASE_SECONDS: str(env.retry_base_seconds),
        contract.ENV_RETRY_MAX_SECONDS: str(env.retry_max_seconds),
        contract.ENV_CAPTURE_QUEUE_URL: Ref(res.capture_queue),
        contract.ENV_BURST_CHANGES: str(env.burst_changes),
        "POWERTOOLS_SERVICE_NAME": "backup-cfn",
        "POWERTOOLS_METRICS_NAMESPACE": contract.METRIC_NAMESPACE,
    }


def add_async_failure_destination(t: Template, spec: FunctionSpec, deployed: FunctionResources, failure_queue) -> None:
    t.add_resource(awslambda.EventInvokeConfig(
        _logical(spec, "AsyncInvokeConfig"),
        FunctionName=Ref(deployed.function),
        Qualifier="$LATEST",
        MaximumRetryAttempts=ASYNC_RETRIES,
        MaximumEventAgeInSeconds=ASYNC_MAX_EVENT_AGE_SECONDS,
        DestinationConfig=awslambda.DestinationConfig(
            OnFailure=awslambda.OnFailure(Destination=GetAtt(failure_queue, "Arn"))),
    ))


def add_schedule(t: Template, env: Environment, name: str, expression: str, deployed: FunctionResources,
                 failure_queue) -> events.Rule:
    """A schedule whose undeliverable events land in the failure queue instead of vanishing."""
    rule = t.add_resource(events.Rule(
        f"{name}Schedule",
        Description=f"backup-cfn {env.name}: {name.lower()} on {expression}",
        ScheduleExpression=expression,
        State="ENABLED",
        Targets=[events.Target(
            Id=f"{name}Function",
            Arn=GetAtt(deployed.function, "Arn"),
            RetryPolicy=events.RetryPolicy(MaximumRetryAttempts=SCHEDULE_RETRY_ATTEMPTS,
                                           MaximumEventAgeInSeconds=SCHEDULE_MAX_EVENT_AGE_SECONDS),
            DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(failure_queue, "Arn")),
        )],
        Tags=tags(env),
    ))
    t.add_resource(awslambda.Permission(
        f"{name}SchedulePermission", Action="lambda:InvokeFunction", FunctionName=Ref(deployed.function),
        Principal="events.amazonaws.com", SourceArn=GetAtt(rule, "Arn"), SourceAccount=AccountId,
    ))
    return rule


def add_queue_subscription(t: Template, env: Environment, title: str, queue, deployed: FunctionResources,
                           batch_size: int, concurrency: int, batching_window: int = 0) -> awslambda.EventSourceMapping:
    """An SQS event source mapping reporting partial batch failures, its concurrency bounded. With a
    batching window, Lambda gathers up to `batch_size` messages for up to that many seconds (a batch
    over 10 needs a window of at least 1 s; standard queues allow 10,000:
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html)."""
    window = {"MaximumBatchingWindowInSeconds": batching_window} if batching_window else {}
    return t.add_resource(awslambda.EventSourceMapping(
        title,
        EventSourceArn=GetAtt(queue, "Arn"),
        FunctionName=Ref(deployed.function),
        BatchSize=batch_size,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig=QueueScalingConfig(MaximumConcurrency=concurrency),
        Tags=tags(env),
        **window,
    ))


def add_functions(t: Template, env: Environment, res: FunctionWiring) -> dict[str, FunctionResources]:
    """The six functions and the queue subscriptions of the worker (job queue), the dead-letter
    consumer (dead-letter queue) and the capture function (capture queue); returns them by role."""
    initiator = add_function(t, env, INITIATOR, role_policies.initiator_statements(
        res.source_bucket_arn, res.runs_table, res.job_queue, res.failure_queue, res.topic,
        GetAtt(res.key, "Arn")), res)
    worker = add_function(t, env, WORKER, role_policies.worker_statements(
        res.source_bucket_arn, res.backup_bucket, res.runs_table, res.content_table, res.job_queue, res.topic,
        GetAtt(res.key, "Arn")), res)
    pruner = add_function(t, env, PRUNER, role_policies.pruner_statements(
        res.backup_bucket, res.runs_table, res.content_table, res.topic, res.failure_queue,
        GetAtt(res.key, "Arn")), res)
    drill = add_function(t, env, DRILL, role_policies.drill_statements(
        res.backup_bucket, res.runs_table, res.failure_queue, GetAtt(res.key, "Arn")), res)
    dead_letter = add_function(t, env, DEAD_LETTER, role_policies.dead_letter_statements(
        res.runs_table, res.dead_letter_queue, res.topic, GetAtt(res.key, "Arn")), res)
    capture = add_function(t, env, CAPTURE, role_policies.capture_statements(
        res.source_bucket_arn, res.backup_bucket, res.runs_table, res.content_table, res.capture_queue,
        GetAtt(res.key, "Arn")), res)
    add_queue_subscription(t, env, "WorkerJobSubscription", res.job_queue, worker, contract.WORKER_BATCH_SIZE,
                           env.max_concurrent_backups)
    add_queue_subscription(t, env, "DeadLetterSubscription", res.dead_letter_queue, dead_letter,
                           contract.DEAD_LETTER_BATCH_SIZE, DEAD_LETTER_CONCURRENCY)
    add_queue_subscription(t, env, "CaptureSubscription", res.capture_queue, capture, contract.CAPTURE_BATCH_SIZE,
                           env.capture_concurrency, contract.CAPTURE_BATCHING_WINDOW_SECONDS)
    for spec, deployed in ((INITIATOR, initiator), (PRUNER, pruner), (DRILL, drill)):
        add_async_failure_destination(t, spec, deployed, res.failure_queue)
    return {"initiator": initiator, "worker": worker, "pruner": pruner, "drill": drill, "dead-letter": dead_letter,
            "capture": capture}


def add_schedules(t: Template, env: Environment, functions: dict[str, FunctionResources], failure_queue) -> list[events.Rule]:
    return [
        add_schedule(t, env, "Backup", env.schedule, functions["initiator"], failure_queue),
        add_schedule(t, env, "GarbageCollection", env.prune_schedule, functions["pruner"], failure_queue),
        add_schedule(t, env, "RestoreDrill", env.drill_schedule, functions["drill"], failure_queue),
    ]
