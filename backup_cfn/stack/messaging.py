"""SQS and SNS: the per-user job queue with its dead-letter queue, the queue for failed
invocations and undeliverable schedule events, and the encrypted notification topic."""
from __future__ import annotations

from troposphere import GetAtt, Ref, Template, sns, sqs

from backup_cfn.config import Environment
from backup_cfn.contract import (
    DEAD_LETTER_RETENTION_SECONDS,
    DEAD_LETTER_VISIBILITY_SECONDS,
    JOB_MAX_RECEIVES,
    JOB_MESSAGE_RETENTION_SECONDS,
    JOB_VISIBILITY_SECONDS,
)
from backup_cfn.stack.policies import messaging as messaging_policies
from backup_cfn.stack.resource_options import tags, transient

FOURTEEN_DAYS = 14 * 24 * 3600
# A dead-letter queue says which queues may use it (Control Tower's CT.SQS.PR.1 exempts such a queue
# from having a DLQ of its own). allowAll rather than byQueue: the job queue names its DLQ, so the
# DLQ naming the job queue back would be a dependency cycle; SQS lets only queues of this account
# and region use it anyway.
DEAD_LETTER_QUEUE = {"redrivePermission": "allowAll"}


def add_encrypted_queue(t: Template, env: Environment, key, title: str, **properties) -> sqs.Queue:
    """A queue encrypted with the stack's key. A data key is reused for an hour (SQS's maximum): one
    KMS request an hour per queue and principal instead of one per message."""
    return t.add_resource(transient(sqs.Queue(
        title, KmsMasterKeyId=GetAtt(key, "Arn"), KmsDataKeyReusePeriodSeconds=3600, Tags=tags(env), **properties)))


def add_job_queues(t: Template, env: Environment, key) -> tuple[sqs.Queue, sqs.Queue]:
    dead_letters = add_encrypted_queue(
        t, env, key, "JobDeadLetterQueue",
        MessageRetentionPeriod=DEAD_LETTER_RETENTION_SECONDS,
        VisibilityTimeout=DEAD_LETTER_VISIBILITY_SECONDS,
        RedriveAllowPolicy=DEAD_LETTER_QUEUE,
    )
    jobs = add_encrypted_queue(
        t, env, key, "JobQueue",
        VisibilityTimeout=JOB_VISIBILITY_SECONDS,
        MessageRetentionPeriod=JOB_MESSAGE_RETENTION_SECONDS,
        RedrivePolicy=sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letters, "Arn"),
                                        maxReceiveCount=JOB_MAX_RECEIVES),
    )
    return jobs, dead_letters


def add_failed_invocation_queue(t: Template, env: Environment, key) -> sqs.Queue:
    """Where asynchronous invocations that failed all retries, and schedule events EventBridge
    could not deliver, end up: one place to look, one alarm."""
    return add_encrypted_queue(t, env, key, "FailedInvocationQueue", MessageRetentionPeriod=FOURTEEN_DAYS,
                               RedriveAllowPolicy=DEAD_LETTER_QUEUE)


def add_failed_invocation_queue_policy(t: Template, queue: sqs.Queue, rules: list) -> sqs.QueuePolicy:
    return t.add_resource(sqs.QueuePolicy(
        "FailedInvocationQueuePolicy", Queues=[Ref(queue)],
        PolicyDocument=messaging_policies.failed_events_queue_policy(queue, rules),
    ))


def add_notification_topic(t: Template, env: Environment, key) -> sns.Topic:
    topic = t.add_resource(sns.Topic(
        "NotificationTopic",
        DisplayName=f"backup-cfn {env.name}",
        KmsMasterKeyId=GetAtt(key, "Arn"),
        Tags=tags(env),
    ))
    t.add_resource(sns.TopicPolicy("NotificationTopicPolicy", Topics=[Ref(topic)],
                                   PolicyDocument=messaging_policies.topic_policy(topic)))
    if env.notification_email:
        t.add_resource(sns.SubscriptionResource(
            "NotificationEmailSubscription", TopicArn=Ref(topic), Protocol="email",
            Endpoint=env.notification_email,
        ))
    return topic
