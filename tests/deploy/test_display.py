import datetime as dt

from backup_cfn.deploy import progress

from deploy_helpers import console, text

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def event(logical_id, status, resource_type="AWS::SQS::Queue", reason=None):
    return {"LogicalResourceId": logical_id, "ResourceStatus": status, "ResourceType": resource_type,
            "Timestamp": NOW, **({"ResourceStatusReason": reason} if reason else {})}


def test_progress_counts_each_resource_once_when_it_finishes_and_prints_every_event():
    out = console()
    with progress.resource_progress(out, "primary backup-cfn-dev", total=3) as on_event:
        on_event(event("backup-cfn-dev", "UPDATE_IN_PROGRESS", "AWS::CloudFormation::Stack", "User Initiated"))
        on_event(event("JobQueue", "UPDATE_IN_PROGRESS"))
        assert on_event.finished == set()
        on_event(event("JobQueue", "UPDATE_COMPLETE"))
        on_event(event("JobQueue", "UPDATE_COMPLETE"))
        on_event(event("Topic", "CREATE_FAILED", "AWS::SNS::Topic", "Invalid parameter: TopicName"))
        on_event(event("backup-cfn-dev", "UPDATE_ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack"))
        assert on_event.finished == {"JobQueue", "Topic"}
    lines = [line for line in text(out).splitlines() if line.strip()]
    assert len(lines) == 6
    assert lines[4] == "12:00:00 CREATE_FAILED                Topic (AWS::SNS::Topic) Invalid parameter: TopicName"
    assert "User Initiated" not in lines[0]
