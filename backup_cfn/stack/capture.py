"""Continuous protection's path into the stack: the source bucket's changes, as S3 sends them to the
account's default event bus, matched by one rule and put on an encrypted queue the capture function
takes them from (functions.py subscribes it; monitoring.py watches its age, the RPO).

- S3 sends every object event of a bucket with EventBridge notifications on to the default bus
  (S3 User Guide, "Using EventBridge", https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html).
- The rule's target retries for 24 hours and 185 times, EventBridge's default, said explicitly;
  what still cannot be delivered goes to the failure queue, which is alarmed
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html).
- EventBridge may send to the queue only through the queue's policy, for this rule only
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions),
  and, the queue being encrypted with the backup key, uses the key under the key policy's statement
  for EventBridge (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html,
  "My rule runs but my Amazon SQS queue doesn't receive events": kms:GenerateDataKey, kms:Decrypt).
"""
from __future__ import annotations

from troposphere import GetAtt, Ref, Template, events, sqs

from backup_cfn.config import Environment
from backup_cfn.contract import (
    CAPTURE_MAX_RECEIVES,
    CAPTURE_MESSAGE_RETENTION_SECONDS,
    CAPTURE_VISIBILITY_SECONDS,
    DEAD_LETTER_RETENTION_SECONDS,
)
from backup_cfn.stack.messaging import DEAD_LETTER_QUEUE, add_encrypted_queue
from backup_cfn.stack.policies import messaging as messaging_policies
from backup_cfn.stack.resource_options import tags

SOURCE_EVENT_TYPES = ["Object Created", "Object Deleted"]
DELIVERY_RETRY_ATTEMPTS = 185
DELIVERY_MAX_EVENT_AGE_SECONDS = 24 * 3600


def add_capture_queues(t: Template, env: Environment, key) -> tuple[sqs.Queue, sqs.Queue]:
    """The capture queue and its dead-letter queue: a change whose capture failed every delivery
    waits there (alarmed) for the nightly run, which captures it anyway."""
    dead_letters = add_encrypted_queue(
        t, env, key, "CaptureDeadLetterQueue",
        MessageRetentionPeriod=DEAD_LETTER_RETENTION_SECONDS,
        RedriveAllowPolicy=DEAD_LETTER_QUEUE,
    )
    queue = add_encrypted_queue(
        t, env, key, "CaptureQueue",
        VisibilityTimeout=CAPTURE_VISIBILITY_SECONDS,
        MessageRetentionPeriod=CAPTURE_MESSAGE_RETENTION_SECONDS,
        RedrivePolicy=sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letters, "Arn"),
                                        maxReceiveCount=CAPTURE_MAX_RECEIVES),
    )
    return queue, dead_letters


def source_change_pattern(source_bucket_name) -> dict:
    """Object Created and Object Deleted events of the source bucket, nothing else."""
    return {"source": ["aws.s3"], "detail-type": SOURCE_EVENT_TYPES,
            "detail": {"bucket": {"name": [source_bucket_name]}}}


def add_source_change_rule(t: Template, env: Environment, *, source_bucket_name, queue, failure_queue) -> events.Rule:
    return t.add_resource(events.Rule(
        "SourceChangeRule",
        Description=f"backup-cfn {env.name}: every change of the source bucket, to the capture queue",
        EventPattern=source_change_pattern(source_bucket_name),
        State="ENABLED",
        Targets=[events.Target(
            Id="CaptureQueue",
            Arn=GetAtt(queue, "Arn"),
            RetryPolicy=events.RetryPolicy(MaximumRetryAttempts=DELIVERY_RETRY_ATTEMPTS,
                                           MaximumEventAgeInSeconds=DELIVERY_MAX_EVENT_AGE_SECONDS),
            DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(failure_queue, "Arn")),
        )],
        Tags=tags(env),
    ))


def add_capture_queue_policy(t: Template, queue: sqs.Queue, rule: events.Rule) -> sqs.QueuePolicy:
    return t.add_resource(sqs.QueuePolicy(
        "CaptureQueuePolicy", Queues=[Ref(queue)],
        PolicyDocument=messaging_policies.capture_queue_policy(queue, rule),
    ))
