"""Topic and queue policies: who may publish to the notification topic and send to the failure and
capture queues."""
from __future__ import annotations

from awacs import sns as sns_actions, sqs as sqs_actions
from awacs.aws import Allow, ArnEquals, ArnLike, Bool, Deny, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref

from backup_cfn.stack import names
from backup_cfn.stack.policies.elements import all_of, document, service, this_account


def topic_policy(topic) -> PolicyDocument:
    """CloudWatch alarms and EventBridge rules of this account may publish; nothing over plain HTTP."""
    return document(
        Statement(
            Sid="CloudWatchAlarmsPublish", Effect=Allow, Principal=service("cloudwatch.amazonaws.com"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", names.arn("cloudwatch", "alarm:*"))),
        ),
        Statement(
            Sid="EventBridgePublish", Effect=Allow, Principal=service("events.amazonaws.com"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(this_account(), ArnLike("aws:SourceArn", names.arn("events", "rule/*"))),
        ),
        Statement(
            Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=all_of(Bool("aws:SecureTransport", "false")),
        ),
    )


def failed_events_queue_policy(queue, rules: list) -> PolicyDocument:
    """EventBridge puts undeliverable schedule events here (the rules' DLQ)."""
    return document(
        Statement(
            Sid="EventBridgeRulesDeadLetter", Effect=Allow, Principal=service("events.amazonaws.com"),
            Action=[sqs_actions.SendMessage], Resource=[GetAtt(queue, "Arn")],
            Condition=all_of(ArnEquals("aws:SourceArn", [GetAtt(rule, "Arn") for rule in rules])),
        ),
    )




def capture_queue_policy(queue, rule) -> PolicyDocument:
    """The source bucket's change events, from the one rule that matches them, and nothing else."""
    return document(
        Statement(
            Sid="SourceChangeRuleSends", Effect=Allow, Principal=service("events.amazonaws.com"),
            Action=[sqs_actions.SendMessage], Resource=[GetAtt(queue, "Arn")],
            Condition=all_of(ArnEquals("aws:SourceArn", GetAtt(rule, "Arn"))),
        ),
    )
