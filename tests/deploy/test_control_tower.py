"""The committed templates against AWS Control Tower's proactive controls (AWS's own cfn-guard rules and
binary, from requirements-controltower.txt): a stack that fails one is refused where the controls
run as CloudFormation Hooks. Every applicable control passes, or is exempted for a named resource with
its reason (backup_cfn.deploy.controltower.EXEMPTIONS, listed in SECURITY.md)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from backup_cfn.deploy import controltower

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "templates").glob("*.json"))}


@pytest.fixture(scope="module")
def committed() -> controltower.ControlReport:
    return controltower.check_templates(TEMPLATES)


def test_every_committed_template_passes_every_applicable_control(committed):
    assert len(TEMPLATES) == 7
    # The controls that report on the resource types these stacks hold (S3, KMS, SQS, Lambda, IAM,
    # CloudTrail, CloudWatch Logs, DynamoDB, EC2): the runner found them in AWS's rule set.
    assert {"CT.S3.PR.8", "CT.SQS.PR.1", "CT.KMS.PR.3", "CT.CLOUDWATCH.PR.2", "CT.CLOUDTRAIL.PR.3",
            "CT.S3.PR.4", "CT.S3.PR.9", "CT.IAM.PR.1", "CT.LAMBDA.PR.3"} <= set(committed.controls)
    assert committed.passed > 100
    assert not committed.blocking, "controls failed:\n" + "\n".join(f.line() for f in committed.blocking)


def test_every_exemption_is_needed_and_listed_in_security_md(committed):
    used = {f.exemption() for f in committed.exempted}
    unused = [e for e in controltower.EXEMPTIONS if e not in used]
    assert not unused, f"exemptions no template needs any more: {unused}"
    security = (ROOT / "SECURITY.md").read_text()
    for exemption in controltower.EXEMPTIONS:
        assert f"| {exemption.control} | {exemption.resource} |" in security, exemption


# Each finding of the issue, put back into the prod templates: the gate must refuse every one.
def _tls_statement_as_sub(t):
    statement = t["Resources"]["BackupBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Resource"][1] = {"Fn::Sub": ["${BucketArn}/*", {"BucketArn": {"Fn::GetAtt": ["BackupBucket", "Arn"]}}]}


def _dead_letter_queue_without_redrive_allow_policy(t):
    del t["Resources"]["JobDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]


def _grants_for_anyone(t):
    policy = t["Resources"]["BackupKey"]["Properties"]["KeyPolicy"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DenyGrantsNotForAwsResources"]


def _logs_kept_90_days(t):
    t["Resources"]["WorkerLogGroup"]["Properties"]["RetentionInDays"] = 90


def _trail_without_cloudwatch_logs(t):
    for name in ("CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
        del t["Resources"]["Trail"]["Properties"][name]


REINTRODUCED = {
    "CT.S3.PR.8": ("BackupBucketPolicy", _tls_statement_as_sub),
    "CT.SQS.PR.1": ("JobDeadLetterQueue", _dead_letter_queue_without_redrive_allow_policy),
    "CT.KMS.PR.3": ("BackupKey", _grants_for_anyone),
    "CT.CLOUDWATCH.PR.2": ("WorkerLogGroup", _logs_kept_90_days),
    "CT.CLOUDTRAIL.PR.3": ("Trail", _trail_without_cloudwatch_logs),
}


def test_the_gate_refuses_each_finding_put_back():
    mutated = {}
    for control, (_, mutate) in REINTRODUCED.items():
        template = copy.deepcopy(TEMPLATES["backup-prod.json"])
        mutate(template)
        mutated[f"backup-prod-{control}.json"] = template
    report = controltower.check_templates(mutated, only=frozenset(REINTRODUCED))
    for control, (resource, _) in REINTRODUCED.items():
        found = {(f.control, f.resource) for f in report.blocking if f.template == f"backup-prod-{control}.json"}
        assert found == {(control, resource)}, (control, found)
