"""The commands as an operator runs them: `backup-cfn deploy --env local --yes` end to end against
the emulator, and each error users will hit as one readable line with a non-zero exit."""
from __future__ import annotations

import re

import boto3
import pytest
from botocore.stub import Stubber

from backup_cfn.deploy.clients import DeployClients
from backup_cfn.deploy.outputs import stack_outputs

from cli_support import one_line_error, run


def test_deploy_local_end_to_end_then_a_no_op_then_status_and_delete(environments, local_env):
    first = run(environments, "deploy", "--env", "local", "--yes")
    assert first.exit_code == 0, first.output
    assert "backup-cfn-local-replica CREATE_COMPLETE" in first.output
    assert "backup-cfn-local CREATE_COMPLETE" in first.output
    assert "cfn-lint: 0 errors, 0 warnings" in first.output
    assert "backup-cfn-local outputs" in first.output and "WorkerFunctionName" in first.output
    outputs = stack_outputs(local_env)
    assert outputs["WorkerFunctionName"] == "backup-cfn-local-worker"

    second = run(environments, "deploy", "--env", "local", "--yes")
    assert second.exit_code == 0, second.output
    assert second.output.count("no changes") == 2
    assert "already in s3://" in second.output

    status = run(environments, "status", "--env", "local", "--drift")
    assert status.exit_code == 0, status.output
    assert status.output.count("template: matches this checkout") == 2
    assert "handler package: matches this checkout" in status.output
    assert "the local emulator cannot detect drift" in status.output

    refused = run(environments, "delete", "--env", "local")
    assert "no terminal to confirm the deletion on: rerun with --yes" in one_line_error(refused)

    deleted = run(environments, "delete", "--env", "local", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "BackupBucket (AWS::S3::Bucket)" in deleted.output and "ReplicaBucket (AWS::S3::Bucket)" in deleted.output
    assert "backup-cfn-local deleted" in deleted.output and "backup-cfn-local-replica deleted" in deleted.output
    after = run(environments, "status", "--env", "local")
    assert after.output.count("not deployed") == 2


def test_deploy_without_terminal_or_yes_refuses_in_one_line(environments):
    result = run(environments, "deploy", "--env", "local")
    assert "no terminal to confirm the change set on" in one_line_error(result)


def test_no_execute_prints_the_console_url(environments):
    result = run(environments, "deploy", "--env", "local", "--no-execute")
    assert result.exit_code == 2, result.output   # change sets kept for review
    assert "change set kept for review: https://us-west-2.console.aws.amazon.com/cloudformation/home" in result.output


def test_diff_then_package_then_package_again(environments):
    diff = run(environments, "diff", "--env", "local")
    assert diff.exit_code == 2, diff.output   # changes to review (docs/review.md, exit codes)
    assert "CREATE change set" in diff.output and "ReplicaBucket" in diff.output

    first = run(environments, "package", "--env", "local")
    second = run(environments, "package", "--env", "local")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    sha = re.search(r"package sha256 ([0-9a-f]{64})", first.output).group(1)
    assert f"package sha256 {sha}" in second.output
    assert "uploaded to" in first.output and "already in" in second.output


def test_prod_stack_is_protected_and_delete_names_the_command_to_lift_it(environments, local_env):
    text = environments.read_text().replace('[env.local]', '[env.local]\ntermination_protection = true', 1)
    environments.write_text(text)
    assert run(environments, "deploy", "--env", "local", "--yes").exit_code == 0
    result = run(environments, "delete", "--env", "local", "--yes")
    assert ("backup-cfn-local (us-east-1) has termination protection; to delete it, lift it first with "
            "`aws cloudformation update-termination-protection --no-enable-termination-protection "
            "--stack-name backup-cfn-local --region us-east-1`") in one_line_error(result)


def test_unknown_environment_is_one_line(environments):
    result = run(environments, "deploy", "--env", "staging", "--yes")
    assert "unknown environment 'staging' (known: dev, local, prod)" in one_line_error(result)


def test_wrong_region_in_the_environments_file_is_one_line(environments):
    environments.write_text(environments.read_text().replace('region = "us-east-1"', 'region = "us-east-7"', 1))
    result = run(environments, "deploy", "--env", "dev", "--yes")
    assert "field 'region' is not a known AWS region: 'us-east-7'" in one_line_error(result)


def test_no_credentials_is_one_line(environments, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    result = run(environments, "diff", "--env", "dev")
    assert "no AWS credentials found: set AWS_PROFILE" in one_line_error(result)


def stubbed_clients(monkeypatch, setup):
    """Clients whose calls answer as AWS would, set up by `setup(stubbers)`."""
    def make(service, region):
        return boto3.client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")

    clients = DeployClients(make("cloudformation", "us-east-1"), make("cloudformation", "us-west-2"),
                             make("s3", "us-east-1"), make("s3", "us-west-2"), make("sts", "us-east-1"))
    stubbers = {name: Stubber(getattr(clients, name)) for name in
                ("cloudformation", "replica_cloudformation", "s3", "replica_s3", "sts")}
    setup(stubbers)
    for stubber in stubbers.values():
        stubber.activate()
    monkeypatch.setattr(DeployClients, "for_environment", classmethod(lambda cls, env: clients))
    return stubbers


IDENTITY = {"UserId": "AIDAEXAMPLE", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/ops"}


@pytest.mark.parametrize("code, message, expected", [
    ("ExpiredToken", "The security token included in the request is expired",
     "AWS GetCallerIdentity failed: ExpiredToken: The security token included in the request is expired "
     "(credentials expired: refresh them, e.g. `aws sso login`)"),
    ("InvalidClientTokenId", "The security token included in the request is invalid.",
     "InvalidClientTokenId: The security token included in the request is invalid. "
     "(the access key is not valid in this account or region)"),
])
def test_expired_or_wrong_region_credentials_are_one_line(environments, monkeypatch, code, message, expected):
    stubbed_clients(monkeypatch, lambda s: s["sts"].add_client_error("get_caller_identity", code, message, 403))
    result = run(environments, "diff", "--env", "dev")
    assert expected in one_line_error(result)
    assert "--debug" in one_line_error(result)


def test_access_denied_is_one_line_with_aws_message(environments, monkeypatch):
    denied = ("User: arn:aws:iam::123456789012:user/ops is not authorized to perform: cloudformation:DescribeStacks "
              "on resource: arn:aws:cloudformation:us-west-2:123456789012:stack/backup-cfn-dev-replica/* because no "
              "identity-based policy allows the cloudformation:DescribeStacks action")

    def setup(s):
        s["sts"].add_response("get_caller_identity", IDENTITY)
        s["replica_cloudformation"].add_client_error("describe_stacks", "AccessDenied", denied, 403)
    stubbed_clients(monkeypatch, setup)
    result = run(environments, "diff", "--env", "dev")
    assert (f"AWS DescribeStacks failed: AccessDenied: {denied} (the credentials lack a permission this command "
            "needs)") in one_line_error(result)


def test_parameter_cloudformation_rejects_is_one_line_and_debug_shows_the_traceback(environments, monkeypatch):
    rejected = "Parameter 'NotificationEmail' must match pattern ^[^@]+@[^@]+$"

    def setup(s):
        s["sts"].add_response("get_caller_identity", IDENTITY)
        s["replica_cloudformation"].add_client_error(
            "describe_stacks", "ValidationError", "Stack with id backup-cfn-dev-replica does not exist", 400)
        s["replica_cloudformation"].add_client_error("create_change_set", "ValidationError", rejected, 400)
    stubbed_clients(monkeypatch, setup)
    result = run(environments, "diff", "--env", "dev")
    assert f"AWS CreateChangeSet failed: ValidationError: {rejected}" in one_line_error(result)

    stubbed_clients(monkeypatch, setup)
    debug = run(environments, "diff", "--env", "dev", debug=True)
    assert debug.exit_code == 1 and type(debug.exception).__name__ == "ClientError"
    assert rejected in str(debug.exception)
