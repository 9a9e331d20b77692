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
    vault_functions,
    vault_storage,
)
from backup_cfn.stack.policies.restores import RestoreSource
from backup_cfn.stack.policies import roles as role_policies


def build_template(env: Environment) -> Template:
    """The primary stack, in the environment's region."""
    where = (f"the vault in account {env.vault.account_id} ({env.vault.region})" if env.has_vault
             else env.replica_region)
    t = Template(Description=f"backup-cfn {env.name}: scheduled, incremental, deduplicated backups of client "
                             f"reports with {env.retention_days}-day retention, replicated to {where}")
    params = parameters.add_primary_parameters(t, vault=env.has_vault, production=env.is_production)

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
    # With a vault, the restore service reads the backup bucket only: production has no read on the
    # vault (docs/vault.md); restore --all-users --from-vault, with the vault's credentials, is that path.
    sources = [RestoreSource("backup", GetAtt(backup_bucket, "Arn"), GetAtt(key, "Arn"), "${AWS::Region}")]
    source_names = {"backup": Ref(backup_bucket)}
    if not env.has_vault:
        sources.append(RestoreSource("replica", params.replica_bucket, params.replica_key, env.replica_region))
        source_names["replica"] = monitoring.replica_bucket_name(params.replica_bucket)
    restore_service = restores.add_restore_service(t, env, wiring, target_key_arn=GetAtt(key, "Arn"),
                                                   sources=sources, source_names=source_names)
    lambdas = {**lambdas, "restorer": restore_service.function}
    storage.add_backup_bucket_policy(t, env, bucket=backup_bucket, key=key, pruner_role=lambdas["pruner"].role,
                                     source_bucket_name=source.name)
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
                                      replica_bucket_arn=params.replica_bucket, rule_id=storage.replication_rule_id(env))
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


def build_dr_template(env: Environment) -> Template:
    """The disaster-recovery stack of an environment: its vault, or (one-account layout) its replica."""
    return build_vault_template(env) if env.has_vault else build_replica_template(env)


def build_vault_template(env: Environment) -> Template:
    """The vault, in its own account and region (docs/vault.md): deployed with the vault account's
    credentials only; the production stack replicates into it and can do nothing else to it."""
    vault = env.vault
    t = Template(Description=f"backup-cfn {env.name}: the vault, a compliance-locked disaster-recovery copy of "
                             f"{env.stack_name} (account {env.account_id}), administered by account {vault.account_id}")
    code_bucket, code_key = parameters.add_code_parameters(t)
    key = vault_storage.add_vault_key(t, env)
    log_bucket = storage.add_access_log_bucket(t, env, "VaultAccessLogBucket")
    bucket = vault_storage.add_vault_bucket(t, env, key, log_bucket)
    vault_storage.add_vault_bucket_policy(t, env, bucket, key)
    storage.add_access_log_policy(t, log_bucket, [bucket])
    table = vault_storage.add_lock_table(t, env, key)
    functions = vault_functions.add_vault_functions(t, env, vault_functions.VaultWiring(
        key=key, bucket=bucket, table=table, code_bucket=code_bucket.ref(), code_key=code_key.ref(),
        network=network.add_network(t, env, interface_services=())))
    vault_functions.add_triggers(t, env, bucket, functions["VaultLock"], functions["VaultDrill"])
    restore_role = vault_functions.add_vault_restore_role(t, env, bucket, key, functions["VaultDrill"])
    topic = vault_functions.add_vault_topic(t, env, key)
    vault_functions.add_vault_alarms(t, env, topic, functions)
    outputs.add_vault_outputs(t, bucket=bucket, key=key, table=table, functions=functions, restore_role=restore_role,
                              topic=topic)
    return t
