"""The forecast, one test per case and one per blocking finding. Checks that only read the
templates run on resolved templates; checks that read the account run against botocore's Stubber
with AWS's response shapes and messages (the emulator cases are in test_review_emulator.py)."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from backup_cfn.config import load_environment
from backup_cfn.deploy.changeset import Change, ChangeSet
from backup_cfn.deploy.review import forecast
from backup_cfn.deploy.review.forecast_input import ForecastInput
from backup_cfn.deploy.review.model import BLOCKING, NOTE, WARNING
from backup_cfn.deploy.review.resolve import Resolver, pseudo_parameters
from backup_cfn.deploy.stack_spec import Options, StackSpec
from backup_cfn.errors import Refused
from backup_cfn.stack.render import render_environment

from deploy_helpers import console, text
from cloudformation_stubs import CS_ID, NAME, REGION, STACK_ID, change_set_response, deployer, plan

PSEUDO = pseudo_parameters(STACK_ID, NAME)
NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def primary() -> dict:
    return json.loads(render_environment(load_environment("local"))[0])


def resources(document: dict, parameters: dict | None = None) -> dict:
    return Resolver(document, parameters or {}, PSEUDO).resources()


def change(action: str, logical_id: str, resource_type: str, replacement: str = "", policy_action: str = "",
           physical_id: str = "") -> Change:
    return Change(action, logical_id, resource_type, replacement, policy_action, (), (), physical_id=physical_id)


def forecast_input(changes, old: dict | None, new: dict, **extra) -> ForecastInput:
    change_set = ChangeSet(CS_ID, "cs", STACK_ID, NAME, "UPDATE" if old else "CREATE", REGION, "CREATE_COMPLETE", "",
                           tuple(changes))
    return ForecastInput(stack_name=NAME, change_set=change_set, old=old, new=new,
                         account="123456789012", now=NOW, **extra)


def findings(inp: ForecastInput, accepted=frozenset()) -> dict[str, tuple[str, str]]:
    return {f.id: (f.severity, f.message) for f in forecast.run(inp, accepted)}


def bucket(**properties) -> dict:
    return {"Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete",
                                         "Properties": properties}}}


def lock(mode: str, days: int) -> dict:
    return {"ObjectLockEnabled": True, "ObjectLockConfiguration": {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}}


def stubbed(service: str, region: str = REGION):
    client = boto3.client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
    client.stubber = Stubber(client)
    client.stubber.activate()
    return client


# --- Object Lock -------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    (lock("GOVERNANCE", 30), lock("COMPLIANCE", 30)),   # governance to compliance
    ({}, lock("COMPLIANCE", 30)),                       # none to compliance
    (lock("COMPLIANCE", 30), lock("COMPLIANCE", 60)),   # a longer compliance period
])
def test_a_switch_to_compliance_or_a_longer_compliance_period_blocks(before, after):
    inp = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], resources(bucket(**before)),
                         resources(bucket(**after)))
    severity, message = findings(inp)["compliance-lock:DataBucket"]
    assert severity == BLOCKING
    assert "can be deleted by no one, the account root included" in message and "can never be turned off" in message


def test_a_shorter_compliance_period_or_governance_is_no_compliance_finding():
    for before, after in ((lock("COMPLIANCE", 60), lock("COMPLIANCE", 30)), (lock("GOVERNANCE", 30), lock("GOVERNANCE", 60))):
        inp = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], resources(bucket(**before)),
                             resources(bucket(**after)))
        assert not any(k.startswith("compliance-lock") for k in findings(inp))


# --- the vault ---------------------------------------------------------------------------------------

def vault_bucket(**properties) -> dict:
    return {"Resources": {"VaultBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                                          "Properties": properties}}}


def test_the_vaults_lock_may_start_and_grow_with_a_warning_and_never_shrink():
    created = forecast_input([change("Add", "VaultBucket", "AWS::S3::Bucket")], None,
                             resources(vault_bucket(**lock("COMPLIANCE", 68))))
    assert findings(created)["vault-lock:VaultBucket"][0] == WARNING   # by design: no compliance-lock refusal
    assert not any(k.startswith("compliance-lock") for k in findings(created))
    for after, kind in ((lock("COMPLIANCE", 75), "vault-lock"), (lock("COMPLIANCE", 30), "vault-lock-shortened"),
                        (lock("GOVERNANCE", 68), "vault-lock-shortened"), ({}, "vault-lock-shortened")):
        inp = forecast_input([change("Modify", "VaultBucket", "AWS::S3::Bucket")],
                             resources(vault_bucket(**lock("COMPLIANCE", 68))), resources(vault_bucket(**after)))
        severity, _ = findings(inp)[f"{kind}:VaultBucket"]
        assert severity == (WARNING if kind == "vault-lock" else BLOCKING), after


def lock_function(**variables) -> dict:
    return {"Resources": {"VaultLockFunction": {"Type": "AWS::Lambda::Function", "Properties": {
        "Environment": {"Variables": {k: str(v) for k, v in variables.items()}}}}}}


def test_the_vault_keeping_less_from_now_on_is_refused():
    old = resources(lock_function(RETENTION_DAYS=60, KEEP_MONTHLY=12))
    for new, refused in ((lock_function(RETENTION_DAYS=60, KEEP_MONTHLY=6), True),
                         (lock_function(RETENTION_DAYS=30, KEEP_MONTHLY=12), True),
                         (lock_function(RETENTION_DAYS=90, KEEP_MONTHLY=12, KEEP_YEARLY=2), False)):
        inp = forecast_input([change("Modify", "VaultLockFunction", "AWS::Lambda::Function")], old, resources(new))
        found = findings(inp).get("vault-rules-shortened:VaultLockFunction")
        assert (found is not None and found[0] == BLOCKING) == refused, new


def replicating(status: str = "Enabled", account: str = "444455556666", **extra) -> dict:
    rule = {"Id": "ReplicateNewBackupsToVault", "Status": status, "Priority": 1, "Filter": {"Prefix": ""},
            "Destination": {"Bucket": "arn:aws:s3:::vault", "Account": account}, **extra}
    return {"ReplicationConfiguration": {"Role": "arn:aws:iam::123456789012:role/r", "Rules": [rule]}}


def test_production_stopping_or_redirecting_its_replication_into_the_vault_is_refused():
    before = resources(bucket(**replicating()))
    for after, what in ((bucket(**replicating("Disabled")), "disabled"), (bucket(), "removed"),
                        (bucket(**replicating(account="999999999999")), "sent to account 999999999999")):
        inp = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], before, resources(after))
        severity, message = findings(inp)["vault-replication-stopped:DataBucket"]
        assert severity == BLOCKING and what in message
    same = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], before,
                          resources(bucket(**replicating(Priority=2))))
    assert "vault-replication-stopped:DataBucket" not in findings(same)


def test_turning_object_lock_on_warns_that_it_cannot_be_turned_off():
    inp = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], resources(bucket()),
                         resources(bucket(**lock("GOVERNANCE", 30))))
    severity, message = findings(inp)["object-lock-enabled:DataBucket"]
    assert severity == WARNING
    assert "can never be turned off for this bucket again" in message and "s3:BypassGovernanceRetention" in message


# --- lifecycle, key policy, replication, names -------------------------------------------------------------

def test_a_lifecycle_rule_that_deletes_sooner_warns():
    def rules(days):
        return {"LifecycleConfiguration": {"Rules": [{"Id": "Noncurrent", "Status": "Enabled",
                                                      "NoncurrentVersionExpiration": {"NoncurrentDays": days}}]}}
    inp = forecast_input([change("Modify", "DataBucket", "AWS::S3::Bucket")], resources(bucket(**rules(60))),
                         resources(bucket(**rules(30))))
    assert findings(inp)["lifecycle-shortened:DataBucket"] == (WARNING, (
        "lifecycle rule Noncurrent: S3 permanently deletes noncurrent (deleted or overwritten) versions after 30 days "
        "(was 60), from its next lifecycle run"))


def test_a_key_policy_that_locks_the_account_out_blocks_and_the_real_key_policies_do_not(primary):
    locked = copy.deepcopy(primary)
    statements = locked["Resources"]["BackupKey"]["Properties"]["KeyPolicy"]["Statement"]
    statements[0]["Action"] = [a for a in statements[0]["Action"] if a != "kms:PutKeyPolicy"]
    keys = [change("Modify", "BackupKey", "AWS::KMS::Key")]
    severity, message = findings(forecast_input(keys, resources(primary), resources(locked)))["key-lockout:BackupKey"]
    assert severity == BLOCKING and "arn:aws:iam::123456789012:root" in message
    assert "key-lockout:BackupKey" not in findings(forecast_input(keys, resources(locked), resources(primary)))
    assert findings(forecast_input([change("Add", "BackupKey", "AWS::KMS::Key")], None, resources(primary))) == {}


def test_a_new_replica_bucket_or_key_warns_that_existing_backups_need_batch_replication(primary):
    before = {"ReplicaBucketArn": "arn:aws:s3:::replica-old", "ReplicaKeyArn": "arn:aws:kms:us-west-2:1:key/old"}
    after = {**before, "ReplicaBucketArn": "arn:aws:s3:::replica-new"}
    inp = forecast_input([change("Modify", "BackupBucket", "AWS::S3::Bucket")], resources(primary, before),
                         resources(primary, after))
    severity, message = findings(inp)["replication-changed:BackupBucket"]
    assert severity == WARNING
    assert "destination arn:aws:s3:::replica-old → arn:aws:s3:::replica-new" in message
    assert "S3 Batch Replication" in message and "replica key" not in message


def test_an_invalid_bucket_name_blocks():
    inp = forecast_input([change("Add", "DataBucket", "AWS::S3::Bucket")], None,
                         resources(bucket(BucketName="Backups_2026")))
    severity, message = findings(inp)["bucket-name-invalid:DataBucket"]
    assert severity == BLOCKING and "'Backups_2026' is not valid" in message


def test_replacing_a_resource_that_keeps_its_custom_name_blocks(primary):
    inp = forecast_input([change("Modify", "WorkerLogGroup", "AWS::Logs::LogGroup", replacement="True")],
                         resources(primary), resources(primary))
    severity, message = findings(inp)["custom-name-replacement:WorkerLogGroup"]
    assert severity == BLOCKING
    assert "'/aws/lambda/backup-cfn-local-worker'" in message and "custom-named resource requires replacing" in message


def test_a_blocking_finding_named_in_accept_is_accepted_and_no_longer_blocks():
    inp = forecast_input([change("Add", "DataBucket", "AWS::S3::Bucket")], None, resources(bucket(BucketName="A_B")))
    (finding,) = forecast.run(inp, frozenset({"bucket-name-invalid:DataBucket"}))
    assert finding.accepted and not finding.blocks


# --- checks that read the account (Stubber, AWS's shapes) ---------------------------------------------------

def test_a_new_name_that_exists_blocks_bucket_names_being_global():
    s3, iam = stubbed("s3"), stubbed("iam", "us-east-1")
    s3.stubber.add_client_error("head_bucket", "403", "Forbidden", 403, expected_params={"Bucket": "reports-2026"})
    iam.stubber.add_response("get_role", {"Role": {
        "Path": "/", "RoleName": "backup-cfn-dev-replication-us-east-1", "RoleId": "AROAEXAMPLEID1234567",
        "Arn": "arn:aws:iam::123456789012:role/backup-cfn-dev-replication-us-east-1", "CreateDate": NOW,
        "AssumeRolePolicyDocument": "{}"}}, {"RoleName": "backup-cfn-dev-replication-us-east-1"})
    new = resources({"Resources": {
        "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "reports-2026"}},
        "ReplicationRole": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "backup-cfn-dev-replication-us-east-1"}}}})
    inp = forecast_input([change("Add", "DataBucket", "AWS::S3::Bucket"), change("Add", "ReplicationRole", "AWS::IAM::Role")],
                         None, new, readers={"s3": s3, "iam": iam, "cloudformation": None}.get,
                         cloudformation=events_client([]))
    found = findings(inp)
    assert found["name-taken:DataBucket"][0] == BLOCKING
    assert "exists already in another account (bucket names are global)" in found["name-taken:DataBucket"][1]
    assert "exists already in this account and region" in found["name-taken:ReplicationRole"][1]


def test_a_free_name_is_no_finding_and_a_denied_read_is_a_note():
    s3, iam = stubbed("s3"), stubbed("iam", "us-east-1")
    s3.stubber.add_client_error("head_bucket", "404", "Not Found", 404)
    iam.stubber.add_client_error("get_role", "AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not "
                                 "authorized to perform: iam:GetRole on resource: role x", 403)
    new = resources({"Resources": {
        "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "reports-2026"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}}})
    inp = forecast_input([change("Add", "DataBucket", "AWS::S3::Bucket"), change("Add", "Role", "AWS::IAM::Role")],
                         None, new, readers={"s3": s3, "iam": iam}.get, cloudformation=events_client([]))
    assert findings(inp) == {"unchecked:Role": (NOTE, "could not check whether 'x' exists: AWS GetRole failed: "
                                                      "AccessDenied: User: arn:aws:iam::123456789012:user/ci is not "
                                                      "authorized to perform: iam:GetRole on resource: role x (the "
                                                      "credentials lack a permission this command needs)")}


@pytest.mark.parametrize("policy_action, severity", [("Delete", BLOCKING), ("Retain", WARNING)])
def test_a_bucket_to_be_removed_that_holds_objects(policy_action, severity):
    s3 = stubbed("s3")
    s3.stubber.add_response("list_object_versions", {
        "Versions": [{"Key": "manifests/client-0001/20261101T020000Z.json.gz", "VersionId": "3HL4kqtJlcpXroDTDmJ",
                      "IsLatest": True, "Size": 2048, "LastModified": NOW, "ETag": '"abc"',
                      "StorageClass": "STANDARD"}], "IsTruncated": True, "MaxKeys": 1, "Name": "data-1x2y"},
        {"Bucket": "data-1x2y", "MaxKeys": 1})
    inp = forecast_input([change("Remove", "DataBucket", "AWS::S3::Bucket", policy_action=policy_action,
                                 physical_id="data-1x2y")], resources(bucket()), {}, readers={"s3": s3}.get,
                         cloudformation=events_client([]))
    found, message = findings(inp)["bucket-not-empty:DataBucket"]
    assert found == severity and "s3://data-1x2y" in message
    assert ("S3 deletes only empty buckets" in message) is (severity == BLOCKING)


def test_an_empty_bucket_to_be_removed_is_no_finding():
    s3 = stubbed("s3")
    s3.stubber.add_response("list_object_versions", {"IsTruncated": False, "MaxKeys": 1, "Name": "data-1x2y"})
    inp = forecast_input([change("Remove", "DataBucket", "AWS::S3::Bucket", policy_action="Delete",
                                 physical_id="data-1x2y")], resources(bucket()), {}, readers={"s3": s3}.get,
                         cloudformation=events_client([]))
    assert findings(inp) == {}


def test_a_shorter_retention_with_nothing_old_enough_to_delete_only_warns(primary):
    shorter = copy.deepcopy(primary)
    shorter["Resources"]["PrunerFunction"]["Properties"]["Environment"]["Variables"]["RETENTION_DAYS"] = "30"
    s3 = stubbed("s3")
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 1, "Contents": [
        {"Key": "manifests/client-0001/20261125T020000Z.json.gz", "Size": 2048, "LastModified": NOW, "ETag": '"e"'}]},
        {"Bucket": "backup-1x2y", "Prefix": "manifests/"})
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 0},
                            {"Bucket": "backup-1x2y", "Prefix": "journal/"})
    s3.stubber.add_response("get_object", {"Body": _manifest_body()})
    inp = forecast_input([change("Modify", "PrunerFunction", "AWS::Lambda::Function")], resources(primary),
                         resources(shorter), readers={"s3": s3}.get, outputs={"BackupBucketName": "backup-1x2y"},
                         cloudformation=events_client([]))
    assert findings(inp)["retention-shortened:PrunerFunction"] == (WARNING, (
        "retention 60 → 30 days: the next prune deletes no snapshot (none of the 1 in s3://backup-1x2y falls outside "
        "the new rules)"))


def test_keeping_fewer_monthly_snapshots_is_counted_and_blocks(primary):
    """keep_monthly 12 → 6 with ten monthly snapshots kept today: the four oldest go, and only because
    of this change; the retention in days is the same on both sides."""
    before, after = copy.deepcopy(primary), copy.deepcopy(primary)
    for document, months in ((before, "12"), (after, "6")):
        variables = document["Resources"]["PrunerFunction"]["Properties"]["Environment"]["Variables"]
        variables.update(RETENTION_DAYS="30", KEEP_MONTHLY=months)
    runs = [f"2026{month:02d}01T020000Z" for month in range(2, 12)]          # Feb 1 to Nov 1
    s3 = stubbed("s3")
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": len(runs), "Contents": [
        {"Key": f"manifests/client-0001/{run}.json.gz", "Size": 2048, "LastModified": NOW, "ETag": '"e"'}
        for run in runs]}, {"Bucket": "backup-1x2y", "Prefix": "manifests/"})
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 0},
                            {"Bucket": "backup-1x2y", "Prefix": "journal/"})
    for _ in runs:
        s3.stubber.add_response("get_object", {"Body": _manifest_body()})
    inp = forecast_input([change("Modify", "PrunerFunction", "AWS::Lambda::Function")], resources(before),
                         resources(after), readers={"s3": s3}.get, outputs={"BackupBucketName": "backup-1x2y"},
                         cloudformation=events_client([]))
    severity, message = findings(inp)["retention-shortened:PrunerFunction"]
    assert severity == BLOCKING
    assert message.startswith("keep_monthly 12 → 6: the next prune will delete 4 of 10 snapshot(s) (4 only because "
                              "of this change) of 1 user(s), runs 20260201T020000Z to 20260501T020000Z"), message


def _manifest_body():
    from io import BytesIO

    from botocore.response import StreamingBody

    from backup_cfn.engine.manifest import Entry, Manifest

    data = Manifest("client-0001", "20261125T020000Z", "2026-11-25T02:00:00Z", {
        "reports/a.pdf": Entry("a" * 64, 1000, '"e"', "2026-11-24T00:00:00Z")}).encode()
    return StreamingBody(BytesIO(data), len(data))


@pytest.mark.parametrize("unreserved, blocked", [(101, True), (1000, False)])
def test_reserving_concurrency_below_the_unreserved_minimum_blocks(primary, unreserved, blocked):
    lambda_ = stubbed("lambda")
    lambda_.stubber.add_response("get_account_settings", {
        "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                         "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": unreserved},
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}}, {})
    unreserving = copy.deepcopy(primary)
    for name in ("InitiatorFunction", "PrunerFunction"):
        del unreserving["Resources"][name]["Properties"]["ReservedConcurrentExecutions"]
    lambdas = [change("Modify", name, "AWS::Lambda::Function") for name in ("InitiatorFunction", "PrunerFunction")]
    inp = forecast_input(lambdas, resources(unreserving), resources(primary), readers={"lambda": lambda_}.get,
                         cloudformation=events_client([]))
    found = findings(inp)
    assert ("lambda-concurrency:InitiatorFunction" in found) is blocked
    if blocked:
        assert "reserving 2 more concurrent execution(s) (InitiatorFunction 1, PrunerFunction 1) leaves 99 " \
               "unreserved of the account's 1000, below Lambda's minimum of 100" in \
               found["lambda-concurrency:InitiatorFunction"][1]


def events_client(events: list[dict]):
    client = stubbed("cloudformation")
    client.stubber.add_response("describe_events", {"OperationEvents": events}, {"ChangeSetName": CS_ID})
    return client


def test_cloudformations_own_early_validation_warnings_join_the_forecast():
    # OperationEvent as the API model gives it; the WARN-mode validation's name is illustrative (no
    # recorded response of one was found), and is printed as CloudFormation gives it.
    event = {"EventId": "e-1", "StackId": STACK_ID, "OperationId": "op-1", "OperationType": "CREATE_CHANGESET",
             "OperationStatus": "SUCCEEDED", "EventType": "VALIDATION_ERROR", "LogicalResourceId": "DataBucket",
             "Timestamp": NOW, "ValidationFailureMode": "WARN", "ValidationName": "S3 bucket emptiness",
             "ValidationStatus": "FAILED", "ValidationStatusReason": "Bucket data-1x2y is not empty",
             "ValidationPath": "/Resources/DataBucket"}
    inp = forecast_input([], resources(bucket()), resources(bucket()), readers={}.get, cloudformation=events_client([event]))
    assert findings(inp) == {"aws-validation:DataBucket": (WARNING, (
        "CloudFormation's S3 bucket emptiness: Bucket data-1x2y is not empty at /Resources/DataBucket"))}


# --- through the deployer: refused like the stateful guard, accepted by ID ---------------------------------------

LOCKED_KEY = {"Resources": {"DataKey": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                            "Action": "kms:Decrypt", "Resource": "*"}]}}}}}


def key_change_set() -> dict:
    return change_set_response(changes=[{"Type": "Resource", "ResourceChange": {
        "Action": "Add", "LogicalResourceId": "DataKey", "ResourceType": "AWS::KMS::Key", "Scope": [], "Details": []}}])


def test_a_blocking_finding_refuses_the_change_set_with_exit_3_and_names_the_flag(cfn):
    plan(cfn, "UPDATE_COMPLETE", key_change_set())
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    spec = StackSpec("primary", NAME, REGION, json.dumps(LOCKED_KEY), {}, {"Environment": "dev"})
    out = console()
    with pytest.raises(Refused) as refused:
        deployer(cfn, out).deploy(spec, Options(yes=True))
    assert refused.value.exit_code == 3
    assert "the forecast blocks it with key-lockout:DataKey. If that is intended, rerun with --accept " \
           "key-lockout:DataKey" in refused.value.message
    assert "blocking key-lockout:DataKey: the key policy does not allow the account root" in text(out)


def test_an_accepted_finding_lets_the_change_set_through(cfn):
    plan(cfn, "UPDATE_COMPLETE", key_change_set(), diff=True)
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    spec = StackSpec("primary", NAME, REGION, json.dumps(LOCKED_KEY), {}, {})
    out = console()
    result = deployer(cfn, out).deploy(spec, Options(accept=frozenset({"key-lockout:DataKey"})), diff_only=True)
    assert result.outcome == "planned"
    assert "accepted key-lockout:DataKey" in text(out)


def test_a_change_set_failing_early_validation_says_why_resource_by_resource(cfn):
    from test_deploy_stubbed import stack

    reason = ("The following hook(s)/validation failed: [AWS::EarlyValidation::ResourceExistenceCheck]. To "
              "troubleshoot Early Validation errors, use the DescribeEvents API for detailed failure information.")
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    cfn.stubber.add_response("describe_change_set", change_set_response("FAILED", reason))
    cfn.stubber.add_response("describe_events", {"OperationEvents": [{
        "EventId": "e-1", "StackId": STACK_ID, "OperationId": "op-1", "OperationType": "CREATE_CHANGESET",
        "OperationStatus": "FAILED", "EventType": "VALIDATION_ERROR", "LogicalResourceId": "WorkerLogGroup",
        "Timestamp": NOW, "ValidationFailureMode": "FAIL",
        "ValidationName": "AWS::EarlyValidation::ResourceExistenceCheck", "ValidationStatus": "FAILED",
        "ValidationStatusReason": "Resource of type 'AWS::Logs::LogGroup' with identifier "
                                  "'/aws/lambda/backup-cfn-dev-worker' already exists.",
        "ValidationPath": "/Resources/WorkerLogGroup"}]}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    reading = deployer(cfn)
    reading.readers = {}.get
    with pytest.raises(Exception, match=r"could not create a change set for backup-cfn-dev: The following "
                                        r"hook\(s\)/validation failed: .*; WorkerLogGroup: CloudFormation's "
                                        r"AWS::EarlyValidation::ResourceExistenceCheck: Resource of type "
                                        r"'AWS::Logs::LogGroup' with identifier '/aws/lambda/backup-cfn-dev-worker' "
                                        r"already exists. at /Resources/WorkerLogGroup"):
        reading.deploy(StackSpec("primary", NAME, REGION, json.dumps(LOCKED_KEY), {}, {}), Options(), diff_only=True)


def test_a_shorter_retention_counts_the_journal_segments_and_the_content_only_they_reference(primary):
    """60 → 30 days, with snapshots 50, 40 and 1 days old and a journal segment captured 49 days ago
    holding a version no snapshot has: the 40-day-old snapshot becomes the checkpoint before the new
    window, so the 50-day-old one and the segment go, and with the segment its version."""
    from io import BytesIO

    from botocore.response import StreamingBody

    from backup_cfn.engine import journal, naming

    shorter = copy.deepcopy(primary)
    shorter["Resources"]["PrunerFunction"]["Properties"]["Environment"]["Variables"]["RETENTION_DAYS"] = "30"
    runs = [naming.run_id_for(NOW - timedelta(days=days)) for days in (50, 40, 1)]
    captured = NOW - timedelta(days=49)
    segment = journal.Segment("client-0001", naming.iso_precise(captured), (journal.Change(
        "reports/draft.pdf", journal.PUT, naming.iso(captured), "0a", sha256="b" * 64, size=7000),))
    body = segment.encode()
    s3 = stubbed("s3")
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 3, "Contents": [
        {"Key": f"manifests/client-0001/{run}.json.gz", "Size": 2048, "LastModified": NOW, "ETag": '"e"'}
        for run in runs]}, {"Bucket": "backup-1x2y", "Prefix": "manifests/"})
    s3.stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 1, "Contents": [
        {"Key": segment.key(), "Size": len(body), "LastModified": NOW, "ETag": '"s"'}]},
        {"Bucket": "backup-1x2y", "Prefix": "journal/"})
    for _ in range(3):     # the two kept snapshots, then the expired one
        s3.stubber.add_response("get_object", {"Body": _manifest_body()})
    s3.stubber.add_response("get_object", {"Body": StreamingBody(BytesIO(body), len(body))})
    inp = forecast_input([change("Modify", "PrunerFunction", "AWS::Lambda::Function")], resources(primary),
                         resources(shorter), readers={"s3": s3}.get, outputs={"BackupBucketName": "backup-1x2y"},
                         cloudformation=events_client([]))
    severity, message = findings(inp)["retention-shortened:PrunerFunction"]
    assert severity == BLOCKING
    assert "will delete 1 of 3 snapshot(s)" in message and "1 journal segment(s)" in message
    assert "1 content object(s), 7.0 kB, that no kept snapshot references" in message
