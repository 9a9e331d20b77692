"""deploy, diff, status and delete end to end against the emulator, with the real templates of
the `local` environment (the same the `prod` templates are built from)."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re

import botocore.exceptions
import pytest

from backup_cfn import aws, contract
from backup_cfn.deploy import artifacts, handler_package, stack_deployer
from backup_cfn.deploy.clients import DeployClients as Clients
from backup_cfn.deploy.deployment import Deployment
from backup_cfn.deploy.outputs import stack_outputs
from backup_cfn.deploy.stack_spec import Options
from backup_cfn.errors import Refused, UserError
from backup_cfn.stack import render
from backup_cfn.stack.bootstrap import build_bootstrap_template
from backup_cfn.stack.render import render_environment

from deploy_helpers import NO_WAIT, CallRecorder, console, package_builder, text, with_resource

PROBE_TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "probe-topic"}}
PROBE_BUCKET = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


@pytest.fixture(scope="module")
def rendered():
    from backup_cfn.config import load_environment

    # The one-account layout, as `local_env` is in these tests (tests/deploy/conftest.py).
    return render_environment(dataclasses.replace(load_environment("local"), vault=None))


@pytest.fixture
def make(local_env, rendered, tmp_path):
    """A Deployment of the local environment; keyword arguments override its parts."""

    def build(env=None, templates=None, out=None):
        env = env or local_env
        return Deployment(env, Clients.for_environment(env), out or console(), poll=NO_WAIT,
                          templates=templates or rendered, build_package=package_builder(tmp_path / "src"),
                          validate=False, commit="0123abc")
    return build


def _stack(env, region=None, name=None):
    clients = Clients.for_environment(env)
    cfn = clients.replica_cloudformation if region == "replica" else clients.cloudformation
    return cfn.describe_stacks(StackName=name or (env.replica_stack_name if region == "replica" else env.stack_name))["Stacks"][0]


def _change_sets(env):
    """Change sets of both stacks waiting for execution (none for a stack that does not exist). An
    executed one stays listed, ExecutionStatus EXECUTE_COMPLETE, as AWS keeps it (ExecuteChangeSet in
    the CloudFormation API Reference; docs/emulator.md): it is history, not something left behind."""
    clients = Clients.for_environment(env)
    found = []
    for cfn, name in ((clients.cloudformation, env.stack_name), (clients.replica_cloudformation, env.replica_stack_name)):
        try:
            found += [c for c in cfn.list_change_sets(StackName=name)["Summaries"]
                      if c["ExecutionStatus"] not in ("EXECUTE_COMPLETE", "EXECUTE_FAILED")]
        except botocore.exceptions.ClientError as exc:
            assert "does not exist" in str(exc)
    return found


def test_first_deploy_creates_replica_then_primary_wired_by_outputs(make, local_env, rendered, tmp_path):
    out = console()
    deployment = make(out=out)
    recorder = CallRecorder(deployment.clients.cloudformation, deployment.clients.replica_cloudformation)
    results = deployment.run(Options(yes=True))

    assert {k: r.outcome for k, r in results.items()} == {"replica": "executed", "primary": "executed"}
    created = [region for region, _, op in recorder.calls if op == "ExecuteChangeSet"]
    assert created == [local_env.replica_region, local_env.region]
    primary, replica = _stack(local_env), _stack(local_env, "replica")
    assert (primary["StackStatus"], replica["StackStatus"]) == ("CREATE_COMPLETE", "CREATE_COMPLETE")
    outputs = stack_outputs(local_env)
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in primary["Parameters"]}
    built = handler_package.build_package(tmp_path / "src")
    assert parameters[contract.PARAM_REPLICA_BUCKET_ARN] == outputs[contract.OUTPUT_REPLICA_BUCKET_ARN]
    assert parameters[contract.PARAM_REPLICA_KEY_ARN] == outputs[contract.OUTPUT_REPLICA_KEY_ARN]
    assert parameters[contract.PARAM_CODE_KEY] == built.key
    code = deployment.clients.s3.get_object(Bucket=parameters[contract.PARAM_CODE_BUCKET], Key=built.key)["Body"].read()
    assert hashlib.sha256(code).hexdigest() == built.sha256
    tags = {t["Key"]: t["Value"] for t in primary["Tags"]}
    assert tags[stack_deployer.TAG_TEMPLATE] == hashlib.sha256(rendered[0].encode()).hexdigest()
    assert tags[stack_deployer.TAG_PACKAGE] == built.sha256
    assert tags[stack_deployer.TAG_COMMIT] == "0123abc"
    assert tags["Environment"] == "local"
    assert {contract.OUTPUT_BACKUP_BUCKET, contract.OUTPUT_RUNS_TABLE, contract.OUTPUT_REPLICA_BUCKET} <= set(outputs)
    assert _change_sets(local_env) == []
    streamed = [line.split(maxsplit=1)[1] for line in text(out).splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert streamed.index("CREATE_IN_PROGRESS           ReplicaKey (AWS::KMS::Key)") \
        < streamed.index("CREATE_COMPLETE              backup-cfn-local-replica (AWS::CloudFormation::Stack)") \
        < streamed.index("CREATE_COMPLETE              BackupBucket (AWS::S3::Bucket)") \
        < streamed.index("CREATE_COMPLETE              backup-cfn-local (AWS::CloudFormation::Stack)")


def test_second_deploy_with_nothing_changed_says_so_and_leaves_no_change_set(make, local_env):
    make().run(Options(yes=True))
    out = console()
    deployment = make(out=out)
    recorder = CallRecorder(deployment.clients.cloudformation, deployment.clients.replica_cloudformation,
                            deployment.clients.s3)
    results = deployment.run(Options(yes=True))

    assert {k: r.outcome for k, r in results.items()} == {"replica": "no changes", "primary": "no changes"}
    assert "CreateChangeSet" not in recorder.operations() and "PutObject" not in recorder.operations()
    assert text(out).count("no changes") == 2 and "already in" in text(out)
    assert _change_sets(local_env) == []
    assert _stack(local_env)["StackStatus"] == "CREATE_COMPLETE"


def test_changed_template_is_updated_through_a_change_set(make, local_env, rendered):
    make().run(Options(yes=True))
    changed = (with_resource(rendered[0], "ProbeTopic", PROBE_TOPIC), rendered[1])
    out = console()
    results = make(templates=changed, out=out).run(Options(yes=True))

    assert results["replica"].outcome == "no changes"
    assert results["primary"].outcome == "executed"
    assert [(c.action, c.logical_id) for c in results["primary"].change_set.changes] == [("Add", "ProbeTopic")]
    assert "ProbeTopic" in text(out) and "1 add" in text(out)
    assert _stack(local_env)["StackStatus"] == "UPDATE_COMPLETE"
    resources = Clients.for_environment(local_env).cloudformation.list_stack_resources(StackName=local_env.stack_name)
    assert "ProbeTopic" in {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]}
    assert _change_sets(local_env) == []


def test_diff_of_an_unchanged_deployment_reports_the_empty_change_sets_and_deletes_them(make, local_env):
    make().run(Options(yes=True))
    out = console()
    results = make(out=out).run(Options(), diff_only=True)

    assert {k: r.outcome for k, r in results.items()} == {"replica": "no changes", "primary": "no changes"}
    assert text(out).count("no changes") == 2
    assert _change_sets(local_env) == []


def test_diff_shows_the_change_and_executes_nothing(make, local_env, rendered):
    make().run(Options(yes=True))
    changed = (with_resource(rendered[0], "ProbeTopic", PROBE_TOPIC), rendered[1])
    out = console()
    results = make(templates=changed, out=out).run(Options(), diff_only=True)

    assert results["primary"].outcome == "planned"
    assert "Add" in text(out) and "ProbeTopic" in text(out) and "AWS::SNS::Topic" in text(out)
    resources = Clients.for_environment(local_env).cloudformation.list_stack_resources(StackName=local_env.stack_name)
    assert "ProbeTopic" not in {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]}
    assert _change_sets(local_env) == []


def test_diff_before_the_first_deploy_leaves_no_stack_behind(make, local_env):
    out = console()
    results = make(out=out).run(Options(), diff_only=True)

    assert results["replica"].outcome == "planned"
    assert "primary" not in results and "computed once" in text(out)
    assert "ReplicaBucket" in text(out)
    with pytest.raises(Exception, match="does not exist"):
        _stack(local_env, "replica")
    assert _change_sets(local_env) == []


def test_no_execute_keeps_the_change_set_and_prints_its_console_url_then_deploy_completes(make, local_env):
    out = console()
    results = make(out=out).run(Options(no_execute=True))

    change_set = results["replica"].change_set
    assert results["replica"].outcome == "planned"
    assert "https://us-west-2.console.aws.amazon.com/cloudformation/home?region=us-west-2#/stacks/changesets/" \
           "changes?stackId=arn%3Aaws%3Acloudformation%3Aus-west-2" in text(out)
    assert change_set.console_url in text(out)
    assert _stack(local_env, "replica")["StackStatus"] == "REVIEW_IN_PROGRESS"
    assert [c["ChangeSetId"] for c in _change_sets(local_env)] == [change_set.id]

    # Planned again for review: the first change set is replaced, not piled up.
    again = make().run(Options(no_execute=True))
    assert [c["ChangeSetId"] for c in _change_sets(local_env)] == [again["replica"].change_set.id]

    # The operator reviewed it in the console and deploys: the REVIEW_IN_PROGRESS stack is created.
    results = make().run(Options(yes=True))
    assert {k: r.outcome for k, r in results.items()} == {"replica": "executed", "primary": "executed"}
    assert _stack(local_env, "replica")["StackStatus"] == "CREATE_COMPLETE"


def test_declined_create_deletes_the_change_set_and_the_empty_stack(make, local_env):
    prompts = []
    options = Options(interactive=True, confirm=lambda prompt: prompts.append(prompt) or False)
    with pytest.raises(UserError, match="declined: the change set for backup-cfn-local-replica was deleted"):
        make().run(options)

    assert prompts == ["Execute this change set on backup-cfn-local-replica (us-west-2)?"]
    with pytest.raises(Exception, match="does not exist"):
        _stack(local_env, "replica")
    assert _change_sets(local_env) == []


def test_confirmed_change_sets_are_executed(make, local_env):
    prompts = []
    results = make().run(Options(interactive=True, confirm=lambda prompt: prompts.append(prompt) or True))
    assert len(prompts) == 2
    assert {k: r.outcome for k, r in results.items()} == {"replica": "executed", "primary": "executed"}


def test_without_a_terminal_and_without_yes_deploy_refuses_and_cleans_up(make, local_env):
    with pytest.raises(UserError, match="no terminal to confirm .* rerun with --yes, or with --no-execute"):
        make().run(Options(interactive=False))
    with pytest.raises(Exception, match="does not exist"):
        _stack(local_env, "replica")
    assert _change_sets(local_env) == []


def test_removing_a_stateful_resource_is_refused_unless_allowed(make, local_env, rendered):
    with_bucket = (with_resource(rendered[0], "ProbeBucket", PROBE_BUCKET), rendered[1])
    make(templates=with_bucket).run(Options(yes=True))

    out = console()
    with pytest.raises(UserError, match=r"refusing to replace or remove stateful resources in backup-cfn-local: "
                                        r"ProbeBucket \(AWS::S3::Bucket, removed\).*--allow-replace ProbeBucket"):
        make(out=out).run(Options(yes=True))
    assert "Remove" in text(out) and "ProbeBucket" in text(out)
    assert _change_sets(local_env) == []
    resources = Clients.for_environment(local_env).cloudformation.list_stack_resources(StackName=local_env.stack_name)
    assert "ProbeBucket" in {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]}

    out = console()
    results = make(out=out).run(Options(yes=True, allow_replace=frozenset({"ProbeBucket", "ProbeBuckett"})))
    assert results["primary"].outcome == "executed"
    assert "note: --allow-replace ProbeBuckett matched no replacement or removal" in text(out)
    assert "--allow-replace ProbeBucket matched" not in text(out)
    resources = Clients.for_environment(local_env).cloudformation.list_stack_resources(StackName=local_env.stack_name)
    assert "ProbeBucket" not in {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]}


def test_prod_templates_deploy_through_the_artifacts_bucket_with_protection_and_stack_policy(make, local_env, tmp_path):
    from backup_cfn.config import load_environment

    prod = load_environment("prod")
    # The security team's credentials: on the emulator, a role assumed in the vault's account.
    vault = dataclasses.replace(prod.vault, profile="", role_arn=f"arn:aws:iam::{prod.vault.account_id}:role/security")
    prod = dataclasses.replace(prod, endpoint_url=local_env.endpoint_url, account_id="123456789012", vault=vault)
    templates = render_environment(prod)
    assert len(render.wire_body(templates[0]).encode()) > render.INLINE_TEMPLATE_LIMIT
    vault_deployment = Deployment(prod, Clients.for_vault(prod), console(), poll=NO_WAIT, templates=templates,
                                  build_package=package_builder(tmp_path / "vault-src"),
                                  validate=False, commit="0123abc")
    assert vault_deployment.run(Options(yes=True), vault=True)["vault"].outcome == "executed"
    vault_stack = aws.vault_client(prod, "cloudformation").describe_stacks(StackName=vault.stack_name)["Stacks"][0]
    assert vault_stack["EnableTerminationProtection"] is True
    deployment = make(env=prod, templates=templates)
    # prod's backups are compliance-locked (with a vault, governance is refused): accepted knowingly.
    accepted = Options(yes=True, accept=frozenset({"compliance-lock:BackupBucket"}))
    results = deployment.run(accepted)

    assert {k: r.outcome for k, r in results.items()} == {"primary": "executed"}
    bucket = artifacts.artifacts_bucket(deployment.clients.cloudformation, poll=NO_WAIT, console=console())
    uploaded = deployment.clients.s3.list_objects_v2(Bucket=bucket, Prefix="templates/")["Contents"]
    assert [o["Key"] for o in uploaded] == [
        f"templates/{hashlib.sha256(render.wire_body(templates[0]).encode()).hexdigest()}.json"]
    cfn = deployment.clients.cloudformation
    assert _stack(prod)["EnableTerminationProtection"] is True
    policy = json.loads(cfn.get_stack_policy(StackName=prod.stack_name)["StackPolicyBody"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"][0]
    assert deny["Action"] == ["Update:Replace", "Update:Delete"]
    assert {"LogicalResourceId/BackupBucket", "LogicalResourceId/BackupKey", "LogicalResourceId/RunsTable",
            "LogicalResourceId/WorkerLogGroup"} <= set(deny["Resource"])
    assert not any("Queue" in r for r in deny["Resource"])
    assert make(env=prod, templates=templates).run(accepted)["primary"].outcome == "no changes"


def test_template_over_the_inline_limit_goes_through_the_artifacts_bucket(make, local_env, rendered):
    padded = json.loads(rendered[0])
    padded["Metadata"] = {"Padding": "x" * (render.INLINE_TEMPLATE_LIMIT + 1)}
    templates = (json.dumps(padded, indent=2, sort_keys=True) + "\n", rendered[1])
    deployment = make(templates=templates)
    recorder = CallRecorder(deployment.clients.s3)
    results = deployment.run(Options(yes=True))

    assert results["primary"].outcome == "executed"
    bucket = artifacts.artifacts_bucket(deployment.clients.cloudformation, poll=NO_WAIT, console=console())
    keys = [o["Key"] for o in deployment.clients.s3.list_objects_v2(Bucket=bucket, Prefix="templates/")["Contents"]]
    body = json.dumps(padded, sort_keys=True, separators=(",", ":"))
    assert keys == [f"templates/{hashlib.sha256(body.encode()).hexdigest()}.json"]
    assert recorder.operations().count("PutObject") == 2  # the package and the template


def test_template_over_one_megabyte_is_refused_before_any_call(make, local_env, rendered):
    padded = json.loads(rendered[0])
    padded["Metadata"] = {"Padding": "x" * render.TEMPLATE_URL_LIMIT}
    deployment = make(templates=(json.dumps(padded), rendered[1]))
    c = deployment.clients
    recorder = CallRecorder(c.cloudformation, c.replica_cloudformation, c.s3, c.replica_s3, c.sts)
    with pytest.raises(UserError, match=r"primary template \(backup-cfn-local\) is 1,\d{3},\d{3} bytes, over "
                                        r"CloudFormation's limit of 1,000,000 bytes"):
        deployment.run(Options(yes=True))
    assert recorder.calls == []


def test_credentials_of_another_account_are_refused_before_any_change(make, local_env):
    elsewhere = dataclasses.replace(local_env, account_id="210987654321")
    deployment = make(env=elsewhere)
    recorder = CallRecorder(deployment.clients.cloudformation, deployment.clients.replica_cloudformation)
    with pytest.raises(UserError, match="credentials are for account 123456789012, but environment 'local' "
                                        "deploys to 210987654321"):
        deployment.run(Options(yes=True))
    assert recorder.calls == []


def test_bootstrap_bucket_is_created_once_encrypted_versioned_and_private(local_env):
    clients = Clients.for_environment(local_env)
    first = artifacts.artifacts_bucket(clients.cloudformation, poll=NO_WAIT, console=console())
    recorder = CallRecorder(clients.cloudformation)
    assert artifacts.artifacts_bucket(clients.cloudformation, poll=NO_WAIT, console=console()) == first
    assert recorder.operations() == ["DescribeStacks"]
    resources = build_bootstrap_template().to_dict()["Resources"]["ArtifactsBucket"]["Properties"]
    assert resources["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert resources["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] \
        == {"SSEAlgorithm": "AES256"}
    assert resources["VersioningConfiguration"] == {"Status": "Enabled"}
    assert {r["Id"] for r in resources["LifecycleConfiguration"]["Rules"]} == {
        "ExpireOldPackages", "ExpireOldTemplates", "CleanUpOldVersionsAndUploads"}


BROKEN_QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs.fifo-not", "FifoQueue": True}}


def _deletion_policy(rendered_primary: str, policy: str) -> str:
    """The template with `policy` wherever it retains a resource (Retain or RetainExceptOnCreate)."""
    document = json.loads(rendered_primary)
    for resource in document["Resources"].values():
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
            resource["DeletionPolicy"] = policy
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def test_failed_create_names_the_root_cause_then_is_refused_then_recreated(make, local_env, rendered):
    fixed = (_deletion_policy(rendered[0], "RetainExceptOnCreate"), rendered[1])
    broken = (with_resource(fixed[0], "BrokenQueue", BROKEN_QUEUE), rendered[1])
    out = console()
    with pytest.raises(UserError, match=r"backup-cfn-local \(us-east-1\) ended ROLLBACK_COMPLETE: BrokenQueue "
                                        r"CREATE_FAILED: Can only include alphanumeric characters"):
        make(templates=broken, out=out).run(Options(yes=True))
    assert "Root cause:" in text(out)
    assert _stack(local_env)["StackStatus"] == "ROLLBACK_COMPLETE"

    out = console()
    with pytest.raises(UserError, match=r"is ROLLBACK_COMPLETE \(BrokenQueue CREATE_FAILED: .*\): fix the cause, then "
                                        r"rerun deploy with --recreate-failed"):
        make(out=out).run(Options(yes=True))
    assert "its creation failed and CloudFormation rolled it back" in text(out)

    results = make(templates=fixed).run(Options(yes=True, recreate_failed=True))
    assert results["primary"].outcome == "executed"
    assert _stack(local_env)["StackStatus"] == "CREATE_COMPLETE"


def test_with_retain_a_failed_first_creation_leaves_named_log_groups_that_block_the_next(make, local_env, rendered):
    """DeletionPolicy Retain on the named log groups, as AWS treats it: a failed first creation keeps
    them, and the next creation fails on them. Hence RetainExceptOnCreate (see the test above)."""
    retained = _deletion_policy(rendered[0], "Retain")
    broken = (with_resource(retained, "BrokenQueue", BROKEN_QUEUE), rendered[1])
    with pytest.raises(UserError, match="ROLLBACK_COMPLETE"):
        make(templates=broken).run(Options(yes=True))
    # The forecast sees the retained log groups before anything is created again...
    with pytest.raises(Refused, match=r"the forecast blocks it with name-taken:\w+LogGroup") as refused:
        make(templates=(retained, rendered[1])).run(Options(yes=True, recreate_failed=True))
    taken = frozenset(f.id for f in refused.value.review.blocking)
    assert taken and all(i.startswith("name-taken:") for i in taken)
    # ...and, overruled, the creation fails on them as the forecast said.
    with pytest.raises(UserError, match="LogGroup CREATE_FAILED: The specified log group already exists"):
        make(templates=(retained, rendered[1])).run(Options(yes=True, accept=taken))


def _prod(local_env):
    from backup_cfn.config import load_environment

    # The primary's own deployment: the security team has handed over the vault key's ARN (the vault's
    # own deploy first is test_prod_templates_deploy_through_the_artifacts_bucket_with_protection_and_stack_policy).
    prod = load_environment("prod")
    vault = dataclasses.replace(prod.vault, key_arn=f"arn:aws:kms:{prod.vault.region}:{prod.vault.account_id}:key/"
                                                    "0e0e0e0e-0e0e-4e0e-8e0e-0e0e0e0e0e0e")
    return dataclasses.replace(prod, endpoint_url=local_env.endpoint_url, account_id="123456789012", vault=vault)


def test_a_failed_first_prod_creation_rolls_back_whole_and_is_recreated_with_its_tables_protected(make, local_env):
    """Issue 22: with the tables' deletion protection on from the start, the rollback of a failed first
    creation cannot delete them and the stack ends ROLLBACK_FAILED (the emulator refuses as DynamoDB
    does). The first creation runs with TableDeletionProtection=false; once the stack exists, deploy
    turns it on."""
    prod = _prod(local_env)
    templates = render_environment(prod)
    broken = (with_resource(templates[0], "BrokenQueue", {**BROKEN_QUEUE, "DependsOn": ["RunsTable", "ContentIndexTable"]}),
              templates[1])
    lock = frozenset({"compliance-lock:BackupBucket"})     # prod's backups are compliance-locked, knowingly
    with pytest.raises(UserError, match=r"ended ROLLBACK_COMPLETE: BrokenQueue CREATE_FAILED"):
        make(env=prod, templates=broken).run(Options(yes=True, accept=lock))
    assert _stack(prod)["StackStatus"] == "ROLLBACK_COMPLETE"

    out = console()
    results = make(env=prod, templates=templates, out=out).run(Options(yes=True, recreate_failed=True, accept=lock))
    assert results["primary"].outcome == "executed"
    primary = _stack(prod)
    assert primary["StackStatus"] == "UPDATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in primary["Parameters"]}
    assert parameters[contract.PARAM_TABLE_DELETION_PROTECTION] == "true"
    assert f"{prod.stack_name} exists: applying TableDeletionProtection=true" in text(out)
    dynamodb = aws.client(prod, "dynamodb")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in primary["Outputs"]}
    for table in (outputs[contract.OUTPUT_RUNS_TABLE], outputs[contract.OUTPUT_CONTENT_TABLE]):
        assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
    assert make(env=prod, templates=templates).run(Options(yes=True, accept=lock))["primary"].outcome == "no changes"
    # The subnets are in the zones deploy chose by ID (the emulator offers every service everywhere:
    # the first two zone IDs of us-east-1), and deploy said which.
    assert (parameters["IsolatedSubnet1ZoneId"], parameters["IsolatedSubnet2ZoneId"]) == ("use1-az1", "use1-az2")
    assert "subnet zones: use1-az1 (us-east-1b), use1-az2 (us-east-1c)" in text(out)
    ec2 = aws.client(prod, "ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:BackupCfnEnvironment", "Values": ["prod"]}])["Subnets"]
    assert sorted(s["AvailabilityZoneId"] for s in subnets) == ["use1-az1", "use1-az2"]


def test_failed_update_is_rolled_back_and_explained(make, local_env, rendered):
    make().run(Options(yes=True))
    broken = (with_resource(rendered[0], "BrokenQueue", BROKEN_QUEUE), rendered[1])
    with pytest.raises(UserError, match=r"ended UPDATE_ROLLBACK_COMPLETE: BrokenQueue CREATE_FAILED"):
        make(templates=broken).run(Options(yes=True))
    assert _stack(local_env)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    # The stack can take the next change set: the same template as before is a no-op.
    assert make().run(Options(yes=True))["primary"].outcome == "no changes"


def test_validation_findings_stop_the_deploy_before_any_call(make, local_env, monkeypatch):
    from backup_cfn.deploy import validate

    report = validate.Report(findings=[validate.Finding("backup-local", "error", "E3012", "Resources/JobQueue",
                                                        "Property VisibilityTimeout should be of type Integer")],
                             sizes={"backup-local": 1000})
    monkeypatch.setattr(validate, "validate_environments", lambda envs: report)
    deployment = dataclasses.replace(make(), validate=True)
    c = deployment.clients
    recorder = CallRecorder(c.cloudformation, c.replica_cloudformation, c.s3, c.replica_s3, c.sts)
    out = console()
    deployment.console = out
    with pytest.raises(UserError, match=r"validation failed with 1 error\(s\)/warning\(s\): nothing deployed"):
        deployment.run(Options(yes=True))
    assert "E3012 at Resources/JobQueue: Property VisibilityTimeout" in text(out)
    assert recorder.calls == []


def test_diff_leaves_a_change_set_kept_for_review_and_its_stack_alone(make, local_env):
    kept = make().run(Options(no_execute=True))["replica"].change_set
    make().run(Options(), diff_only=True)
    assert _stack(local_env, "replica")["StackStatus"] == "REVIEW_IN_PROGRESS"
    assert [c["ChangeSetId"] for c in _change_sets(local_env)] == [kept.id]


def test_interrupted_at_the_prompt_cleans_up_like_a_decline(make, local_env):
    def interrupt(prompt):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make().run(Options(interactive=True, confirm=interrupt))
    with pytest.raises(Exception, match="does not exist"):
        _stack(local_env, "replica")
    assert _change_sets(local_env) == []


def test_new_handler_code_updates_every_function(make, local_env, tmp_path):
    make().run(Options(yes=True))
    (tmp_path / "src" / "handlers" / "pruner.py").write_text("def handler(event, context):\n    return 0\n")
    out = console()
    results = make(out=out).run(Options(yes=True))

    assert results["replica"].outcome == "no changes"
    changes = {(c.action, c.logical_id) for c in results["primary"].change_set.changes}
    assert {("Modify", "InitiatorFunction"), ("Modify", "WorkerFunction"), ("Modify", "PrunerFunction"),
            ("Modify", "DrillFunction"), ("Modify", "DeadLetterFunction"), ("Modify", "RestorerFunction"),
            ("Modify", "CaptureFunction")} <= changes
    assert re.search(r"parameter HandlerCodeKey: handlers/[0-9a-f]{64}\.zip → handlers/[0-9a-f]{64}\.zip", text(out))
    # The emulator gives no values: computed, with the parameter that caused them.
    assert len(re.findall(r"  Code\.S3Key: handlers/[0-9a-f]{64}\.zip → handlers/[0-9a-f]{64}\.zip "
                          r"\(from HandlerCodeKey\) \[computed\]\n", text(out))) == 7
    built = handler_package.build_package(tmp_path / "src")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in _stack(local_env)["Parameters"]}
    assert parameters[contract.PARAM_CODE_KEY] == built.key
    function = aws.client(local_env, "lambda").get_function(FunctionName="backup-cfn-local-worker")
    assert function["Configuration"]["CodeSha256"] == base64.b64encode(bytes.fromhex(built.sha256)).decode()
