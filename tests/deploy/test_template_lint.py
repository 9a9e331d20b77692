"""cfn-lint (current release, every rule) reports nothing on any template; sizes are in limits."""
from __future__ import annotations

import json
from pathlib import Path

import cfnlint
import pytest

from backup_cfn.config import load_environments
from backup_cfn.contract import LAMBDA_RUNTIME as RUNTIME
from backup_cfn.deploy.validate import TEMPLATE_URL_LIMIT, check_size, lint_template, validate_environments

ENVS = load_environments()


@pytest.mark.parametrize("env_name", sorted(ENVS))
def test_cfn_lint_reports_no_errors_warnings_or_informational_findings(env_name):
    report = validate_environments([ENVS[env_name]], bootstrap=False)
    assert [f.line() for f in report.findings] == []
    assert report.ok


def test_lint_catches_a_real_problem():
    broken = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue",
                                                 "Properties": {"VisibilityTimeout": "forever"}}}})
    findings = lint_template("broken", broken, ["us-east-1"])
    assert any(f.severity == "error" for f in findings)


def test_oversized_template_is_an_error_before_any_call():
    findings = check_size("huge", "x" * (TEMPLATE_URL_LIMIT + 1))
    assert len(findings) == 1 and findings[0].blocking and "over CloudFormation's limit" in findings[0].message


def test_runtime_is_the_newest_python_cfn_lint_does_not_deprecate():
    lifecycle = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/LmbdRuntimeLifecycle.json").read_text())
    pythons = [r for r in lifecycle if r.startswith("python3.")]
    newest = max(pythons, key=lambda r: int(r.split(".")[1]))
    assert RUNTIME == newest
    assert lifecycle[RUNTIME]["successor"] is None


def test_checkov_skips_carry_reasons_and_are_listed_by_validate():
    from troposphere import sqs

    from backup_cfn.stack.resource_options import skip_checks

    with pytest.raises(ValueError, match="needs a reason"):
        skip_checks(sqs.Queue("Q"), {"CKV_AWS_27": ""})
    queue = skip_checks(sqs.Queue("Q"), {"CKV_AWS_27": "because"})
    assert queue.Metadata == {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": "because"}]}}
    report = validate_environments([ENVS["prod"]])
    assert report.skipped_checks and all(line.count(": ") >= 2 for line in report.skipped_checks)
    assert any("CKV_AWS_116" in line for line in report.lines())


def test_cfn_lint_reports_nothing_on_the_bootstrap_template_in_any_region_it_deploys_to():
    report = validate_environments(list(ENVS.values()))
    assert [f.line() for f in report.findings if f.template == "backup-cfn-bootstrap"] == []
    assert "backup-cfn-bootstrap" in report.sizes
