"""The one place the stacks are composed: read top to bottom, it is the system's table of contents."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from troposphere import Export, GetAtt, Output, Parameter, Ref, Sub, Template

from backup_cfn import access, audit, functions, keys, layout, messaging, monitoring, network, storage, tables
from backup_cfn.config import Environment

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_S3_ARN = r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_KMS_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$"


@dataclass(frozen=True)
class PrimaryParameters:
    code_bucket: Parameter
    code_key: Parameter
    replica_bucket_arn: Parameter
    replica_key_arn: Parameter


def add_parameters(t: Template) -> PrimaryParameters:
    """Per-build and per-deployment values: a committed template changes only with the design."""
    return PrimaryParameters(
        code_bucket=t.add_parameter(Parameter(
            layout.PARAM_CODE_BUCKET, Type="String", AllowedPattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            Description="bucket holding the handler package (backup-cfn package)")),
        code_key=t.add_parameter(Parameter(
            layout.PARAM_CODE_KEY, Type="String", AllowedPattern=r"^[\w./-]+\.zip$",
            Description="key of the handler package, named by its SHA-256")),
        replica_bucket_arn=t.add_parameter(Parameter(
            layout.PARAM_REPLICA_BUCKET_ARN, Type="String", AllowedPattern=_S3_ARN,
            Description="replica bucket ARN, from the replica stack's outputs")),
        replica_key_arn=t.add_parameter(Parameter(
            layout.PARAM_REPLICA_KEY_ARN, Type="String", AllowedPattern=_KMS_ARN,
            Description="replica KMS key ARN, from the replica stack's outputs")),
    )


def build_template(env: Environment) -> Template:
    """The primary stack, in the environment's region."""
    t = Template(Description=f"backup-cfn {env.name}: scheduled, incremental, deduplicated backups of client "
                             f"reports with {env.retention_days}-day retention, replicated to {env.replica_region}")
    params = add_parameters(t)

    key = keys.add_backup_key(t, env)
    log_bucket = storage.add_access_log_bucket(t, env)
    source_bucket = storage.add_source_bucket(t, env, key, log_bucket)
    replication_role = storage.add_replication_role(t, env)
    backup_bucket = storage.add_backup_bucket(
        t, env, key=key, log_bucket=log_bucket, replication_role=replication_role,
        replica_bucket_arn=Ref(params.replica_bucket_arn), replica_key_arn=Ref(params.replica_key_arn))
    storage.add_replication_policy(t, env, role=replication_role, bucket=backup_bucket, key=key,
                                   replica_bucket_arn=Ref(params.replica_bucket_arn),
                                   replica_key_arn=Ref(params.replica_key_arn))

    runs_table = tables.add_runs_table(t, env, key)
    content_table = tables.add_content_index_table(t, env, key)

    job_queue, job_dead_letters = messaging.add_job_queues(t, env, key)
    failure_queue = messaging.add_failed_invocation_queue(t, env, key)
    topic = messaging.add_notification_topic(t, env, key)

    vpc = network.add_network(t, env)
    if source_bucket is not None:
        source_arn, source_name = GetAtt(source_bucket, "Arn"), Ref(source_bucket)
    else:
        source_arn, source_name = Sub(f"arn:${{AWS::Partition}}:s3:::{env.source_bucket}"), env.source_bucket
    deployed = functions.add_functions(t, env, functions.Resources(
        key=key, source_bucket_arn=source_arn, source_bucket_name=source_name, backup_bucket=backup_bucket,
        runs_table=runs_table, content_table=content_table, job_queue=job_queue, failure_queue=failure_queue,
        topic=topic, code_bucket=Ref(params.code_bucket), code_key=Ref(params.code_key), network=vpc))
    storage.add_backup_bucket_policy(t, env, bucket=backup_bucket, key=key, pruner_role=deployed["pruner"].role)
    schedules = functions.add_schedules(t, env, deployed, failure_queue)
    messaging.add_failed_invocation_queue_policy(t, failure_queue, schedules)

    restore_role = access.add_restore_role(t, env, backup_bucket=backup_bucket, key=key, runs_table=runs_table)

    trail = audit.add_trail(t, env, key=key, log_bucket=log_bucket, audited_buckets=[backup_bucket])
    trail_bucket = t.resources["TrailBucket"]
    logged = [b for b in (backup_bucket, source_bucket, trail_bucket) if b is not None]
    storage.add_access_log_policy(t, log_bucket, logged)

    monitoring.add_alarms(t, env, topic=topic, job_dead_letters=job_dead_letters, failure_queue=failure_queue,
                          functions=deployed)
    buckets = {"BackupBucket": backup_bucket, "AccessLogBucket": log_bucket, "TrailBucket": trail_bucket}
    if source_bucket is not None:
        buckets["SourceBucket"] = source_bucket
    dashboard = monitoring.add_dashboard(
        t, env, buckets=buckets, replica_bucket_arn=Ref(params.replica_bucket_arn),
        queues={"JobQueue": job_queue, "JobDeadLetterQueue": job_dead_letters,
                "FailedInvocationQueue": failure_queue},
        functions=deployed)

    add_outputs(t, {
        layout.OUTPUT_BACKUP_BUCKET: Ref(backup_bucket),
        "BackupBucketArn": GetAtt(backup_bucket, "Arn"),
        layout.OUTPUT_SOURCE_BUCKET: source_name,
        layout.OUTPUT_RUNS_TABLE: Ref(runs_table),
        layout.OUTPUT_CONTENT_TABLE: Ref(content_table),
        layout.OUTPUT_JOB_QUEUE_URL: Ref(job_queue),
        layout.OUTPUT_DEAD_LETTER_QUEUE_URL: Ref(job_dead_letters),
        "FailedInvocationQueueUrl": Ref(failure_queue),
        layout.OUTPUT_TOPIC_ARN: Ref(topic),
        layout.OUTPUT_KEY_ARN: GetAtt(key, "Arn"),
        layout.OUTPUT_INITIATOR: Ref(deployed["initiator"].function),
        layout.OUTPUT_WORKER: Ref(deployed["worker"].function),
        layout.OUTPUT_PRUNER: Ref(deployed["pruner"].function),
        "TrailName": Ref(trail),
        "TrailBucketName": Ref(trail_bucket),
        "AccessLogBucketName": Ref(log_bucket),
        "DashboardName": Ref(dashboard),
        "RestoreRoleArn": GetAtt(restore_role, "Arn"),
    })
    return t


def build_replica_template(env: Environment) -> Template:
    """The disaster-recovery stack, in the replica region; deployed first, its outputs feed the primary."""
    t = Template(Description=f"backup-cfn {env.name}: replica of the backups of {env.region}, in {env.replica_region}")
    key = keys.add_replica_key(t, env)
    log_bucket = storage.add_access_log_bucket(t, env, "ReplicaAccessLogBucket")
    bucket = storage.add_replica_bucket(t, env, key, log_bucket)
    storage.add_access_log_policy(t, log_bucket, [bucket])
    add_outputs(t, {
        layout.OUTPUT_REPLICA_BUCKET: Ref(bucket),
        layout.OUTPUT_REPLICA_BUCKET_ARN: GetAtt(bucket, "Arn"),
        layout.OUTPUT_REPLICA_KEY_ARN: GetAtt(key, "Arn"),
    })
    return t


def add_outputs(t: Template, values: dict) -> None:
    for name, value in values.items():
        t.add_output(Output(name, Value=value, Export=Export(Sub(f"${{AWS::StackName}}-{name}"))))


# CloudFormation's limits: a template body sent inline, and one fetched from S3 (TemplateURL).
INLINE_TEMPLATE_LIMIT = 51_200
TEMPLATE_URL_LIMIT = 1_000_000


def wire_body(rendered: str) -> str:
    """What CloudFormation receives: the rendered template without its indentation. Its size
    decides inline (up to INLINE_TEMPLATE_LIMIT) or TemplateURL."""
    return json.dumps(json.loads(rendered), sort_keys=True, separators=(",", ":"))


def render(t: Template) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(t.to_dict(), indent=2, sort_keys=True) + "\n"


def template_paths(env: Environment, directory: Path = TEMPLATES_DIR) -> tuple[Path, Path]:
    """(primary, replica) template files of an environment."""
    return directory / f"backup-{env.name}.json", directory / f"backup-replica-{env.name}.json"


def render_environment(env: Environment) -> tuple[str, str]:
    return render(build_template(env)), render(build_replica_template(env))


@dataclass(frozen=True)
class WriteResult:
    paths: list[Path]
    build_seconds: float


def write_templates(envs: list[Environment], directory: Path = TEMPLATES_DIR) -> WriteResult:
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rendered = {env.name: render_environment(env) for env in envs}
    build_seconds = time.perf_counter() - started
    paths = []
    for env in envs:
        for path, text in zip(template_paths(env, directory), rendered[env.name]):
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            paths.append(path)
    return WriteResult(paths=paths, build_seconds=build_seconds)
