"""The vault's functions, their triggers and alarms, and the role restores run under.

- VaultLockFunction, the lock extender: on each manifest's arrival (an EventBridge rule on the vault
  bucket's "Object Created" events under manifests/) and once a day over every user;
- VaultDrillFunction: the weekly restore drill of the vault;
- VaultRestoreRole: restores with the production account gone;
- the alarms on a topic of the vault account: nothing replicated for 26 hours (production stopped
  replicating, or stopped backing up), a lock the extender could not keep long enough, errors,
  a failed drill.
"""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import AccountId, GetAtt, Ref, Template, awslambda, cloudwatch, events, iam, logs, sns

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack import names
from backup_cfn.stack.functions import LOG_RETENTION_DAYS, FunctionLoggingConfig
from backup_cfn.stack.network import Network
from backup_cfn.stack.policies import elements, messaging as messaging_policies, roles as role_policies
from backup_cfn.stack.policies import vault as vault_policies
from backup_cfn.stack.resource_options import retain, skip_checks, tags

# The daily pass, after the backup window and the collection (UTC).
LOCK_SCHEDULE = "cron(0 9 * * ? *)"
NOTHING_REPLICATED_HOURS = 26


@dataclass(frozen=True)
class VaultFunction:
    role_name: str       # "lock", "drill": function and log group names
    title: str           # logical ID prefix
    handler: str
    description: str
    timeout_seconds: int


LOCK = VaultFunction("lock", "VaultLock", contract.HANDLER_VAULT_LOCK,
                     "extends the vault's compliance locks over what the retention rules keep",
                     contract.VAULT_LOCK_TIMEOUT_SECONDS)
DRILL = VaultFunction("drill", "VaultDrill", contract.HANDLER_VAULT_DRILL,
                      "restore drill of the vault: re-hashes sampled users' newest snapshots",
                      contract.DRILL_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class VaultWiring:
    key: object
    bucket: object
    table: object
    code_bucket: object
    code_key: object
    network: Network | None


@dataclass(frozen=True)
class Deployed:
    function: awslambda.Function
    role: iam.Role


def _environment(env: Environment, wiring: VaultWiring) -> dict:
    return {
        contract.ENV_VAULT_BUCKET: Ref(wiring.bucket),
        contract.ENV_VAULT_LOCK_TABLE: Ref(wiring.table),
        contract.ENV_VAULT_LOCK_MODE: env.vault.lock_mode.upper(),
        contract.ENV_RETENTION_DAYS: str(env.retention_days),
        contract.ENV_KEEP_WEEKLY: str(env.keep_weekly),
        contract.ENV_KEEP_MONTHLY: str(env.keep_monthly),
        contract.ENV_KEEP_YEARLY: str(env.keep_yearly),
        contract.ENV_DRILL_USERS: str(env.drill_users),
        contract.ENV_STACK_NAME: env.vault.stack_name,
        "POWERTOOLS_SERVICE_NAME": "backup-cfn-vault",
        "POWERTOOLS_METRICS_NAMESPACE": contract.METRIC_NAMESPACE,
    }


def add_vault_function(t: Template, env: Environment, spec: VaultFunction, statements: list,
                       wiring: VaultWiring) -> Deployed:
    log_group = t.add_resource(retain(logs.LogGroup(
        f"{spec.title}LogGroup", LogGroupName=names.vault_log_group_name(env, spec.role_name),
        RetentionInDays=LOG_RETENTION_DAYS, KmsKeyId=GetAtt(wiring.key, "Arn"), Tags=tags(env))))
    if wiring.network is not None:
        statements = [*statements, role_policies.vpc_statement()]
    role = t.add_resource(iam.Role(
        f"{spec.title}FunctionRole", Description=f"backup-cfn vault {spec.role_name}: {spec.description}",
        AssumeRolePolicyDocument=role_policies.lambda_trust_policy(),
        Policies=[iam.Policy(PolicyName=spec.role_name, PolicyDocument=elements.document(
            role_policies.log_statement(log_group), *statements))],
        Tags=tags(env)))
    optional = {"VpcConfig": wiring.network.vpc_config()} if wiring.network is not None else {}
    function = t.add_resource(awslambda.Function(
        f"{spec.title}Function", FunctionName=names.vault_function_name(env, spec.role_name),
        Description=f"backup-cfn vault {spec.role_name}: {spec.description}",
        Runtime=contract.LAMBDA_RUNTIME, Architectures=[contract.LAMBDA_ARCHITECTURE], Handler=spec.handler,
        Code=awslambda.Code(S3Bucket=wiring.code_bucket, S3Key=wiring.code_key), Role=GetAtt(role, "Arn"),
        MemorySize=1024, Timeout=spec.timeout_seconds, ReservedConcurrentExecutions=2,
        LoggingConfig=FunctionLoggingConfig(LogGroup=Ref(log_group), LogFormat="JSON"),
        Environment=awslambda.Environment(Variables=_environment(env, wiring)),
        KmsKeyArn=GetAtt(wiring.key, "Arn"), Tags=tags(env), **optional))
    reasons = {"CKV_AWS_116": ("a failed invocation is retried by the next daily pass (the lock function) or the "
                               "next weekly drill; its errors alarm on the vault's topic")}
    if wiring.network is None:
        reasons["CKV_AWS_117"] = f"environment '{env.name}' sets vpc_endpoints = false"
    skip_checks(function, reasons)
    if wiring.network is not None:
        skip_checks(role, {"CKV_AWS_111": (
            "Lambda's network-interface actions (ManageVpcNetworkInterfaces) accept no narrower resource; "
            "AWS's own AWSLambdaVPCAccessExecutionRole grants them on *")})
    return Deployed(function, role)


def _invoked_by(t: Template, title: str, rule: events.Rule, deployed: Deployed) -> None:
    t.add_resource(awslambda.Permission(
        f"{title}Permission", Action="lambda:InvokeFunction", FunctionName=Ref(deployed.function),
        Principal="events.amazonaws.com", SourceArn=GetAtt(rule, "Arn"), SourceAccount=AccountId))


def add_triggers(t: Template, env: Environment, bucket, lock: Deployed, drill: Deployed) -> list[events.Rule]:
    """Each manifest's arrival and a daily pass start the lock function; the drill runs weekly."""
    arrival = t.add_resource(events.Rule(
        "VaultManifestArrivedRule", Description=f"backup-cfn {env.name}: a snapshot reached the vault",
        EventPattern={"source": ["aws.s3"], "detail-type": ["Object Created"],
                      "detail": {"bucket": {"name": [Ref(bucket)]},
                                 "object": {"key": [{"prefix": contract.MANIFEST_PREFIX}]}}},
        State="ENABLED", Targets=[events.Target(Id="VaultLockFunction", Arn=GetAtt(lock.function, "Arn"))],
        Tags=tags(env)))
    _invoked_by(t, "VaultManifestArrived", arrival, lock)
    schedules = []
    for title, expression, deployed in (("VaultLockSchedule", LOCK_SCHEDULE, lock),
                                        ("VaultDrillSchedule", env.drill_schedule, drill)):
        rule = t.add_resource(events.Rule(
            title, Description=f"backup-cfn {env.name}: {title} on {expression}", ScheduleExpression=expression,
            State="ENABLED", Targets=[events.Target(Id=f"{title}Target", Arn=GetAtt(deployed.function, "Arn"))],
            Tags=tags(env)))
        _invoked_by(t, title, rule, deployed)
        schedules.append(rule)
    return [arrival, *schedules]


def add_vault_topic(t: Template, env: Environment, key) -> sns.Topic:
    topic = t.add_resource(sns.Topic("VaultTopic", DisplayName=f"backup-cfn {env.name} vault",
                                     KmsMasterKeyId=GetAtt(key, "Arn"), Tags=tags(env)))
    t.add_resource(sns.TopicPolicy("VaultTopicPolicy", Topics=[Ref(topic)],
                                   PolicyDocument=messaging_policies.topic_policy(topic)))
    if env.vault.notification_email:
        t.add_resource(sns.SubscriptionResource("VaultEmailSubscription", TopicArn=Ref(topic), Protocol="email",
                                                Endpoint=env.vault.notification_email))
    return topic


def _vault_metric_alarm(title: str, env: Environment, metric: str, actions: dict, description: str,
                        **shape) -> cloudwatch.Alarm:
    options = dict(Statistic="Sum", Period=3600, EvaluationPeriods=1, Threshold=1,
                   ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    options.update(shape)
    return cloudwatch.Alarm(
        title, AlarmDescription=description, Namespace=contract.METRIC_NAMESPACE, MetricName=metric,
        Dimensions=[cloudwatch.MetricDimension(Name=contract.METRIC_DIMENSION, Value=env.vault.stack_name)],
        Tags=tags(env), **options, **actions)


def add_vault_alarms(t: Template, env: Environment, topic, functions: dict[str, Deployed]) -> list:
    actions = dict(AlarmActions=[Ref(topic)], OKActions=[Ref(topic)])
    alarms = [
        # Stopping replication is the one thing the production account can still do to the vault:
        # it is seen here, in the account it cannot reach. No data at all is that failure.
        _vault_metric_alarm(
            "NothingReplicatedAlarm", env, contract.METRIC_MANIFESTS_ARRIVED, actions,
            f"No snapshot reached the vault in {NOTHING_REPLICATED_HOURS} hours: production stopped replicating "
            "or stopped backing up.", ComparisonOperator="LessThanThreshold", TreatMissingData="breaching",
            EvaluationPeriods=NOTHING_REPLICATED_HOURS, DatapointsToAlarm=NOTHING_REPLICATED_HOURS),
        _vault_metric_alarm(
            "VaultLocksShortAlarm", env, contract.METRIC_VAULT_LOCKS_SHORT, actions,
            "A snapshot the retention rules keep is locked for less than a week more and the lock function "
            "could not extend it: see its log.", Statistic="Maximum"),
        _vault_metric_alarm("VaultDrillFailedAlarm", env, contract.METRIC_DRILLS_FAILED, actions,
                            "The vault's restore drill found a snapshot that would not restore.", Statistic="Maximum"),
    ]
    for name, deployed in functions.items():
        alarms.append(cloudwatch.Alarm(
            f"{name}ErrorsAlarm", AlarmDescription=f"The vault's {name} function reported errors.",
            Namespace="AWS/Lambda", MetricName="Errors",
            Dimensions=[cloudwatch.MetricDimension(Name="FunctionName", Value=Ref(deployed.function))],
            Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", Tags=tags(env),
            **actions))
    return [t.add_resource(alarm) for alarm in alarms]


def add_vault_functions(t: Template, env: Environment, wiring: VaultWiring) -> dict[str, Deployed]:
    key_arn = GetAtt(wiring.key, "Arn")
    lock = add_vault_function(t, env, LOCK, vault_policies.lock_statements(wiring.bucket, wiring.table, key_arn),
                              wiring)
    drill = add_vault_function(t, env, DRILL, vault_policies.drill_statements(wiring.bucket, key_arn), wiring)
    return {"VaultLock": lock, "VaultDrill": drill}


def add_vault_restore_role(t: Template, env: Environment, bucket, key, drill: Deployed) -> iam.Role:
    return t.add_resource(iam.Role(
        "VaultRestoreRole",
        Description=f"backup-cfn {env.name}: restores and drills from the vault; reads it, changes nothing",
        AssumeRolePolicyDocument=vault_policies.restore_trust_policy(env), MaxSessionDuration=3600,
        Policies=[iam.Policy(PolicyName="restore-from-vault", PolicyDocument=elements.document(
            *vault_policies.restore_statements(env, bucket, GetAtt(key, "Arn"), drill.function)))],
        Tags=tags(env)))
