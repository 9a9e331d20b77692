"""Continuous protection's alarms in the committed templates (issue 20, items 3 and 4): each watches
the metric its condition is about, at the documented threshold, on the stack's topic; the engine's
metrics carry the dimension the alarms query (handlers/runtime.py)."""
from __future__ import annotations

import pytest

from backup_cfn import contract
from backup_cfn.config import load_environment

from template_helpers import ENV_NAMES, primary, props


def alarm(env_name: str, name: str) -> dict:
    p = props(primary(env_name), name)
    assert p["AlarmActions"] == p["OKActions"] == [{"Ref": "NotificationTopic"}], name
    assert p["TreatMissingData"] == "notBreaching" and p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    return p


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_rpo_alarm_fires_when_a_change_has_waited_15_minutes(env_name):
    p = alarm(env_name, "CaptureRpoAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum")
    assert p["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["CaptureQueue", "QueueName"]}}]
    assert p["Threshold"] == contract.RPO_TARGET_SECONDS == 900


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_missed_changes_alarm_on_two_nights_in_a_row_and_bursts_at_once(env_name):
    stack = [{"Name": contract.METRIC_DIMENSION, "Value": load_environment(env_name).stack_name}]
    missed = alarm(env_name, "ChangesMissedAlarm")
    assert (missed["Namespace"], missed["MetricName"], missed["Dimensions"]) == (
        contract.METRIC_NAMESPACE, contract.METRIC_CHANGES_MISSED, stack)
    assert (missed["Period"], missed["EvaluationPeriods"], missed["DatapointsToAlarm"], missed["Threshold"]) == (
        86400, 2, 2, 1)
    burst = alarm(env_name, "ChangeBurstAlarm")
    assert (burst["MetricName"], burst["Dimensions"], burst["Period"], burst["Threshold"]) == (
        contract.METRIC_USERS_BURSTING, stack, contract.BURST_WINDOW_SECONDS, 1)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_a_change_given_up_on_and_a_failing_capture_are_alarmed(env_name):
    dead = alarm(env_name, "CaptureDeadLetterQueueNotEmptyAlarm")
    assert (dead["MetricName"], dead["Dimensions"], dead["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["CaptureDeadLetterQueue", "QueueName"]}}], 1)
    errors = alarm(env_name, "CaptureErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"], errors["Dimensions"]) == (
        "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": "CaptureFunction"}}])
