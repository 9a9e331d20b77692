"""Stack outputs: what the operator commands, the deploy command and the other stack read back.

Every output is exported as `<stack name>-<output name>`; the names the code reads are in the
contract (contract.OUTPUT_*), the rest are for people and the console.
"""
from __future__ import annotations

from troposphere import Export, GetAtt, Output, Ref, Sub, Template

from backup_cfn import contract


def add_outputs(t: Template, values: dict) -> None:
    for name, value in values.items():
        t.add_output(Output(name, Value=value, Export=Export(Sub(f"${{AWS::StackName}}-{name}"))))


def add_primary_outputs(t: Template, *, backup_bucket, source, runs_table, content_table, job_queue,
                        job_dead_letters, failure_queue, topic, key, functions: dict, audit, log_bucket,
                        dashboard, restore_role, restore_service, capture_queue, capture_dead_letters) -> None:
    add_outputs(t, {
        contract.OUTPUT_BACKUP_BUCKET: Ref(backup_bucket),
        "BackupBucketArn": GetAtt(backup_bucket, "Arn"),
        contract.OUTPUT_SOURCE_BUCKET: source.name,
        contract.OUTPUT_RUNS_TABLE: Ref(runs_table),
        contract.OUTPUT_CONTENT_TABLE: Ref(content_table),
        contract.OUTPUT_JOB_QUEUE_URL: Ref(job_queue),
        contract.OUTPUT_DEAD_LETTER_QUEUE_URL: Ref(job_dead_letters),
        "FailedInvocationQueueUrl": Ref(failure_queue),
        contract.OUTPUT_TOPIC_ARN: Ref(topic),
        contract.OUTPUT_KEY_ARN: GetAtt(key, "Arn"),
        contract.OUTPUT_INITIATOR: Ref(functions["initiator"].function),
        contract.OUTPUT_WORKER: Ref(functions["worker"].function),
        contract.OUTPUT_PRUNER: Ref(functions["pruner"].function),
        contract.OUTPUT_DRILL: Ref(functions["drill"].function),
        contract.OUTPUT_DEAD_LETTER_FUNCTION: Ref(functions["dead-letter"].function),
        contract.OUTPUT_CAPTURE_FUNCTION: Ref(functions["capture"].function),
        contract.OUTPUT_CAPTURE_QUEUE_URL: Ref(capture_queue),
        contract.OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL: Ref(capture_dead_letters),
        "TrailName": Ref(audit.trail),
        "TrailBucketName": Ref(audit.bucket),
        "AccessLogBucketName": Ref(log_bucket),
        "DashboardName": Ref(dashboard),
        "RestoreRoleArn": GetAtt(restore_role, "Arn"),
        contract.OUTPUT_RESTORE_QUEUE_URL: Ref(restore_service.queue),
        contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL: Ref(restore_service.dead_letters),
        contract.OUTPUT_RESTORE_FUNCTION: Ref(restore_service.function.function),
    })


def add_replica_outputs(t: Template, *, bucket, key) -> None:
    add_outputs(t, {
        contract.OUTPUT_REPLICA_BUCKET: Ref(bucket),
        contract.OUTPUT_REPLICA_BUCKET_ARN: GetAtt(bucket, "Arn"),
        contract.OUTPUT_REPLICA_KEY_ARN: GetAtt(key, "Arn"),
    })


def add_vault_outputs(t: Template, *, bucket, key, table, functions: dict, restore_role, topic) -> None:
    add_outputs(t, {
        contract.OUTPUT_VAULT_BUCKET: Ref(bucket),
        contract.OUTPUT_VAULT_BUCKET_ARN: GetAtt(bucket, "Arn"),
        contract.OUTPUT_VAULT_KEY_ARN: GetAtt(key, "Arn"),
        contract.OUTPUT_VAULT_LOCK_TABLE: Ref(table),
        contract.OUTPUT_VAULT_LOCK_FUNCTION: Ref(functions["VaultLock"].function),
        contract.OUTPUT_VAULT_DRILL_FUNCTION: Ref(functions["VaultDrill"].function),
        contract.OUTPUT_VAULT_RESTORE_ROLE: GetAtt(restore_role, "Arn"),
        "VaultTopicArn": Ref(topic),
    })
