"""The restore service: many users restored by the stack (engine/restore_jobs.py), one job per user
on a queue, run by the restore function, which also takes that queue's dead-letter queue to record
the users whose every delivery failed. Its sources are the buckets it may read (the backup bucket,
the replica; a vault would be one more), its only target the source bucket."""
from __future__ import annotations

import json
from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, sqs

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.contract import DEAD_LETTER_RETENTION_SECONDS, JOB_MAX_RECEIVES
from backup_cfn.stack import functions, messaging
from backup_cfn.stack.functions import FunctionResources, FunctionSpec, FunctionWiring
from backup_cfn.stack.policies import restores as restore_policies
from backup_cfn.stack.policies.restores import RestoreSource

RESTORER = FunctionSpec("restorer", contract.HANDLER_RESTORER,
                        "restores one user per job from a snapshot into the source bucket (many users by the stack)",
                        1024, contract.RESTORE_TIMEOUT_SECONDS, None)
# Its dead-letter queue holds only what failed every retry: two consumers are plenty.
DEAD_LETTER_CONCURRENCY = 2


@dataclass(frozen=True)
class RestoreService:
    queue: sqs.Queue
    dead_letters: sqs.Queue
    function: FunctionResources


def add_restore_queues(t: Template, env: Environment, key) -> tuple[sqs.Queue, sqs.Queue]:
    # Both queues feed the restore function: visibility six times its timeout (AWS's guidance).
    visibility = 6 * contract.RESTORE_TIMEOUT_SECONDS
    dead_letters = messaging.add_encrypted_queue(
        t, env, key, "RestoreDeadLetterQueue", MessageRetentionPeriod=DEAD_LETTER_RETENTION_SECONDS,
        VisibilityTimeout=visibility, RedriveAllowPolicy=messaging.DEAD_LETTER_QUEUE)
    queue = messaging.add_encrypted_queue(
        t, env, key, "RestoreQueue", VisibilityTimeout=visibility,
        MessageRetentionPeriod=contract.JOB_MESSAGE_RETENTION_SECONDS,
        RedrivePolicy=sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letters, "Arn"), maxReceiveCount=JOB_MAX_RECEIVES))
    return queue, dead_letters


def sources_environment(sources: list[RestoreSource], names: dict) -> Sub:
    """RESTORE_SOURCES: the JSON object name -> bucket name, built by CloudFormation."""
    document = json.dumps({source.name: f"${{{source.name.capitalize()}Bucket}}" for source in sources},
                          separators=(",", ":"), sort_keys=True)
    return Sub(document, **{f"{source.name.capitalize()}Bucket": names[source.name] for source in sources})


def add_restore_service(t: Template, env: Environment, res: FunctionWiring, *, sources: list[RestoreSource],
                        source_names: dict, target_key_arn) -> RestoreService:
    queue, dead_letters = add_restore_queues(t, env, res.key)
    statements = restore_policies.restorer_statements(
        sources, res.source_bucket_arn, target_key_arn, res.runs_table, queue, dead_letters, res.topic,
        GetAtt(res.key, "Arn"))
    function = functions.add_function(t, env, RESTORER, statements, res, environment={
        contract.ENV_RESTORE_QUEUE_URL: Ref(queue),
        contract.ENV_RESTORE_DEAD_LETTER_QUEUE_ARN: GetAtt(dead_letters, "Arn"),
        contract.ENV_RESTORE_SOURCES: sources_environment(sources, source_names),
    })
    functions.add_queue_subscription(t, env, "RestoreJobSubscription", queue, function, contract.RESTORE_BATCH_SIZE,
                                     env.max_concurrent_restores)
    functions.add_queue_subscription(t, env, "RestoreDeadLetterSubscription", dead_letters, function,
                                     contract.DEAD_LETTER_BATCH_SIZE, DEAD_LETTER_CONCURRENCY)
    return RestoreService(queue, dead_letters, function)
