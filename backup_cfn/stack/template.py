"""The one place the stacks are composed: read top to bottom, it is the system's table of contents.

Each concern has its own module (keys, storage, tables, messaging, capture, network, functions,
access, audit, monitoring); outputs and parameters have theirs; rendering and size limits live in render.py.
"""
from __future__ import annotations

from troposphere import GetAtt, Ref, Template

from backup_cfn.config import Environment
from backup_cfn.stack import (
    access,
    audit,
    audit_alarms,
    capture,
    functions,
    keys,
    messaging,
    monitoring,
    network,
    outputs,
    parameters,
    restores,
    storage,
    tables,
)
from backup_cfn.stack.policies.restores import RestoreSource
from backup_cfn.stack.policies import roles as role_policies


def build_template(env: Environment) -> Template:
    """The primary stack, in the environment's region."""
    t = Template(Description=f"backup-cfn {env.name}: scheduled, incremental, deduplicated backups of client "
                             f"reports with {env.retention_days}-day retention, replicated to {env.replica_region}")
    params = parameters.add_primary_parameters(t, production=env.is_production)

    key = keys.add_backup_key(t, env)
    log_bucket = storage.add_access_log_bucket(t, env)
    source = storage.add_source(t, env, key, log_bucket)
    backup_bucket = storage.add_replicated_backup_bucket(
        t, env, key=key, log_bucket=log_bucket, replica_bucket_arn=params.replica_bucket,
        replica_key_arn=params.replica_key)

    runs_table = tables.add_runs_table(t, env, key, params.tables_protected)
    content_table = tables.add_content_index_table(t, env, key, params.tables_protected)

    job_queue, job_dead_letters = messaging.add_job_queues(t, env, key)
    failure_queue = messaging.add_failed_invocation_queue(t, env, key)
    capture_queue, capture_dead_letters = capture.add_capture_queues(t, env, key)
    topic = messaging.add_notification_topic(t, env, key)

    wiring = functions.FunctionWiring(
        key=key, source_bucket_arn=source.arn, source_bucket_name=source.name, backup_bucket=backup_bucket,
        runs_table=runs_table, content_table=content_table, job_queue=job_queue, dead_letter_queue=job_dead_letters,
        capture_queue=capture_queue, failure_queue=failure_queue,
        topic=topic, code_bucket=params.code_bucket.ref(), code_key=params.code_key.ref(),
        network=network.add_network(t, env))
    lambdas = functions.add_functions(t, env, wiring)
    restore_service = restores.add_restore_service(
        t, env, wiring, target_key_arn=GetAtt(key, "Arn"),
        sources=[RestoreSource("backup", GetAtt(backup_bucket, "Arn"), GetAtt(key, "Arn"), "${AWS::Region}"),
                 RestoreSource("replica", params.replica_bucket, params.replica_key, env.replica_region)],
        source_names={"backup": Ref(backup_bucket), "replica": monitoring.replica_bucket_name(params.replica_bucket)})
    lambdas = {**lambdas, "restorer": restore_service.function}
    storage.add_backup_bucket_policy(t, env, bucket=backup_bucket, key=key, pruner_role=lambdas["pruner"].role)
    schedules = functions.add_schedules(t, env, lambdas, failure_queue)
    source_changes = capture.add_source_change_rule(t, env, source_bucket_name=source.name, queue=capture_queue,
                                                    failure_queue=failure_queue)
    capture.add_capture_queue_policy(t, capture_queue, source_changes)
    messaging.add_failed_invocation_queue_policy(t, failure_queue, schedules + [source_changes])

    restore_role = access.add_restore_role(t, env, role_policies.RestoreScope(
        backup_bucket=backup_bucket, runs_table=runs_table, content_table=content_table, key=key,
        replica_bucket_arn=params.replica_bucket, replica_key_arn=params.replica_key, source_bucket_arn=source.arn,
        initiator_function=lambdas["initiator"].function, drill_function=lambdas["drill"].function),
        restore_queue=restore_service.queue)
    trail = audit.add_trail(t, env, key=key, log_bucket=log_bucket, audited_buckets=[backup_bucket])
    logged = [b for b in (backup_bucket, source.bucket, trail.bucket) if b is not None]
    storage.add_access_log_policy(t, log_bucket, logged)

    monitoring.add_alarms(t, env, topic=topic, job_dead_letters=job_dead_letters, failure_queue=failure_queue,
                          functions=lambdas, restore_dead_letters=restore_service.dead_letters)
    monitoring.add_capture_alarms(t, env, topic=topic, capture_queue=capture_queue,
                                  capture_dead_letters=capture_dead_letters)
    monitoring.add_replication_alarms(t, env, topic=topic, backup_bucket=backup_bucket,
                                      replica_bucket_arn=params.replica_bucket, rule_id=storage.REPLICATION_RULE_ID)
    audit_alarms.add_audit_alarms(t, env, topic=topic, log_group=trail.log_group, backup_bucket=backup_bucket, key=key)
    dashboard = monitoring.add_dashboard(
        t, env, buckets={b.title: b for b in logged + [log_bucket]}, replica_bucket_arn=params.replica_bucket,
        queues={q.title: q for q in (job_queue, job_dead_letters, failure_queue, restore_service.queue,
                                     restore_service.dead_letters, capture_queue, capture_dead_letters)},
        functions=lambdas)

    outputs.add_primary_outputs(
        t, backup_bucket=backup_bucket, source=source, runs_table=runs_table, content_table=content_table,
        job_queue=job_queue, job_dead_letters=job_dead_letters, failure_queue=failure_queue, topic=topic, key=key,
        capture_queue=capture_queue, capture_dead_letters=capture_dead_letters,
        functions=lambdas, audit=trail, log_bucket=log_bucket, dashboard=dashboard, restore_role=restore_role,
        restore_service=restore_service)
    return t


def build_replica_template(env: Environment) -> Template:
    """The disaster-recovery stack, in the replica region; deployed first, its outputs feed the primary."""
    t = Template(Description=f"backup-cfn {env.name}: replica of the backups of {env.region}, in {env.replica_region}")
    key = keys.add_replica_key(t, env)
    log_bucket = storage.add_access_log_bucket(t, env, "ReplicaAccessLogBucket")
    bucket = storage.add_replica_bucket(t, env, key, log_bucket)
    storage.add_access_log_policy(t, log_bucket, [bucket])
    outputs.add_replica_outputs(t, bucket=bucket, key=key)
    return t
