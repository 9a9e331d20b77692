"""SQS and SNS: the per-user job queue with its dead-letter queue, the queue for failed
invocations and undeliverable schedule events, and the encrypted notification topic."""
from __future__ import annotations

from troposphere import GetAtt, Ref, Template, sns, sqs

from backup_cfn import common, policies
from backup_cfn.config import Environment
from backup_cfn.layout import JOB_MAX_RECEIVES, WORKER_TIMEOUT_SECONDS

# AWS's guidance for SQS event sources: visibility at least six times the function timeout, so a
# message is not redelivered while a throttled or retrying invocation still holds it.
JOB_VISIBILITY_SECONDS = 6 * WORKER_TIMEOUT_SECONDS
FOURTEEN_DAYS = 14 * 24 * 3600


def transient(queue: sqs.Queue) -> sqs.Queue:
    """Queues hold work in flight, not data: a run re-enqueues from the source. Deleting them with
    the stack is the intent, said explicitly."""
    queue.DeletionPolicy = "Delete"
    queue.UpdateReplacePolicy = "Delete"
    return queue


def add_job_queues(t: Template, env: Environment, key) -> tuple[sqs.Queue, sqs.Queue]:
    dead_letters = t.add_resource(transient(sqs.Queue(
        "JobDeadLetterQueue",
        KmsMasterKeyId=GetAtt(key, "Arn"),
        KmsDataKeyReusePeriodSeconds=3600,
        MessageRetentionPeriod=FOURTEEN_DAYS,
        Tags=common.tags(env),
    )))
    jobs = t.add_resource(transient(sqs.Queue(
        "JobQueue",
        KmsMasterKeyId=GetAtt(key, "Arn"),
        KmsDataKeyReusePeriodSeconds=3600,
        VisibilityTimeout=JOB_VISIBILITY_SECONDS,
        MessageRetentionPeriod=4 * 24 * 3600,
        RedrivePolicy=sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letters, "Arn"),
                                        maxReceiveCount=JOB_MAX_RECEIVES),
        Tags=common.tags(env),
    )))
    return jobs, dead_letters


def add_failed_invocation_queue(t: Template, env: Environment, key) -> sqs.Queue:
    """Where asynchronous invocations that failed all retries, and schedule events EventBridge
    could not deliver, end up: one place to look, one alarm."""
    return t.add_resource(transient(sqs.Queue(
        "FailedInvocationQueue",
        KmsMasterKeyId=GetAtt(key, "Arn"),
        KmsDataKeyReusePeriodSeconds=3600,
        MessageRetentionPeriod=FOURTEEN_DAYS,
        Tags=common.tags(env),
    )))


def add_failed_invocation_queue_policy(t: Template, queue: sqs.Queue, rules: list) -> sqs.QueuePolicy:
    return t.add_resource(sqs.QueuePolicy(
        "FailedInvocationQueuePolicy", Queues=[Ref(queue)],
        PolicyDocument=policies.failed_events_queue_policy(queue, rules),
    ))


def add_notification_topic(t: Template, env: Environment, key) -> sns.Topic:
    topic = t.add_resource(sns.Topic(
        "NotificationTopic",
        DisplayName=f"backup-cfn {env.name}",
        KmsMasterKeyId=GetAtt(key, "Arn"),
        Tags=common.tags(env),
    ))
    t.add_resource(sns.TopicPolicy("NotificationTopicPolicy", Topics=[Ref(topic)],
                                   PolicyDocument=policies.topic_policy(topic)))
    if env.notification_email:
        t.add_resource(sns.SubscriptionResource(
            "NotificationEmailSubscription", TopicArn=Ref(topic), Protocol="email",
            Endpoint=env.notification_email,
        ))
    return topic
