"""The paths moto cannot produce (failed resources, rollbacks, replacement, AWS's own wording of an
empty change set, drift), driven through botocore's Stubber with AWS's response shapes and messages."""
from __future__ import annotations

import json

import pytest
from botocore.stub import ANY

from backup_cfn.deploy import changeset, review, stack_deployer
from backup_cfn.deploy.changeset import Change
from backup_cfn.deploy.stack_deployer import StackDeployer
from backup_cfn.deploy.stack_spec import Options, StackSpec
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.deploy.status import stack_status
from backup_cfn.errors import UserError

from cloudformation_stubs import (CS_ID, DESCRIBE, EMPTY_REASONS, NAME, NOW, REGION, STACK_ID, change_set_response,
                                  deployed_template, deployer, event, hand_made_template, missing, newest_first, plan,
                                  resource_change, spec, stack, stack_event)
from deploy_helpers import console, text


@pytest.mark.parametrize("reason", EMPTY_REASONS)
def test_empty_change_set_in_either_wording_is_no_changes_and_is_deleted(cfn, reason):
    plan(cfn, "UPDATE_COMPLETE", change_set_response("FAILED", reason))
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    out = console()
    result = deployer(cfn, out).deploy(spec(), Options(yes=True))
    assert result.outcome == "no changes"
    assert "no changes to primary stack backup-cfn-dev" in text(out)


def test_rejected_change_set_reports_aws_reason_and_removes_the_empty_stack(cfn):
    missing(cfn)
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    reason = ("Template format error: Unresolved resource dependencies [ReplicaKey] in the Resources block "
              "of the template")
    cfn.stubber.add_response("describe_change_set", change_set_response("FAILED", reason))
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": NAME})
    cfn.stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    with pytest.raises(UserError, match=r"could not create a change set for backup-cfn-dev: Template format "
                                        r"error: Unresolved resource dependencies \[ReplicaKey\]"):
        deployer(cfn).deploy(spec(), Options(yes=True))


def test_change_set_is_polled_politely_and_every_page_is_read(cfn):
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    cfn.stubber.add_response("describe_change_set", change_set_response("CREATE_IN_PROGRESS"))
    cfn.stubber.add_response("describe_change_set", change_set_response(
        changes=[resource_change("Add", "AlertTopic", "AWS::SNS::Topic")], token="page-2"))
    cfn.stubber.add_response("describe_change_set", change_set_response(
        changes=[resource_change("Modify", "DataBucket", replacement="False", properties=["Tags"])]),
        {**DESCRIBE, "NextToken": "page-2"})
    deployed_template(cfn)
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    sleeps = []
    result = deployer(cfn, sleeps=sleeps).deploy(spec(), Options(), diff_only=True)
    assert [c.logical_id for c in result.change_set.changes] == ["AlertTopic", "DataBucket"]
    assert sleeps == [7]


def test_change_set_table_shows_action_replacement_policy_and_properties_and_folds_tag_only_changes(cfn):
    changes = [resource_change("Add", "AlertTopic", "AWS::SNS::Topic"),
               resource_change("Modify", "WorkerFunction", "AWS::Lambda::Function", replacement="False",
                               properties=["Code", "MemorySize"]),
               resource_change("Remove", "OldQueue", "AWS::SQS::Queue", policy_action="Delete"),
               resource_change("Modify", "JobQueue", "AWS::SQS::Queue", replacement="False", scope=("Tags",)),
               resource_change("Modify", "RunsTable", "AWS::DynamoDB::Table", replacement="False", scope=("Tags",))]
    plan(cfn, "UPDATE_COMPLETE", change_set_response(changes=changes), diff=True)
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    out = console()
    deployer(cfn, out).deploy(spec(), Options(), diff_only=True)
    lines = text(out).splitlines()
    row = next(line for line in lines if "WorkerFunction" in line)
    assert "Modify" in row and "AWS::Lambda::Function" in row and "False" in row and "Code, MemorySize" in row
    assert "Delete" in next(line for line in lines if "OldQueue" in line)
    assert "2 resources" in text(out) and "Tags (stack tags only)" in text(out)
    assert "JobQueue" not in text(out)
    assert "1 add, 3 modify, 1 remove" in text(out)


def test_change_set_rows_are_coloured_by_action():
    from rich.console import Console

    from backup_cfn.deploy.review import change_set_table

    change_set = changeset.ChangeSet(CS_ID, "n", STACK_ID, NAME, "UPDATE", REGION, "CREATE_COMPLETE", "", tuple(
        Change.from_api(c) for c in [resource_change("Add", "A"), resource_change("Modify", "M", replacement="False"),
                                     resource_change("Remove", "R", "AWS::SNS::Topic")]))
    out = Console(record=True, width=200, force_terminal=True, color_system="standard")
    out.print(change_set_table(change_set))
    ansi = out.export_text(styles=True)
    assert "\x1b[32mAdd" in ansi and "\x1b[33mModify" in ansi and "\x1b[31mRemove" in ansi


def test_replacing_a_bucket_is_refused_and_the_change_set_deleted(cfn):
    changes = [resource_change("Modify", "DataBucket", replacement="True", policy_action="ReplaceAndRetain",
                               properties=["BucketName"])]
    plan(cfn, "UPDATE_COMPLETE", change_set_response(changes=changes))
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    out = console()
    with pytest.raises(UserError, match=r"DataBucket \(AWS::S3::Bucket, replacement True\).*"
                                        r"rerun with --allow-replace DataBucket"):
        deployer(cfn, out).deploy(spec(), Options(yes=True))
    assert "ReplaceAndRetain" in text(out) and "BucketName" in text(out)


@pytest.mark.parametrize("change, guarded", [
    (resource_change("Modify", "T", "AWS::DynamoDB::Table", replacement="Conditional"), True),
    (resource_change("Remove", "L", "AWS::Logs::LogGroup", policy_action="Delete"), True),
    (resource_change("Remove", "K", "AWS::KMS::Key", policy_action="Retain"), True),
    (resource_change("Modify", "B", "AWS::S3::Bucket", policy_action="ReplaceAndDelete"), True),
    (resource_change("Modify", "B", "AWS::S3::Bucket", replacement="False", properties=["Tags"]), False),
    (resource_change("Remove", "Q", "AWS::SQS::Queue", policy_action="Delete"), False),
    (resource_change("Modify", "F", "AWS::Lambda::Function", replacement="True"), False),
])
def test_stateful_guard(change, guarded):
    parsed = Change.from_api(change)
    assert bool(review.guard_violations((parsed,), frozenset())) is guarded
    assert review.guard_violations((parsed,), frozenset({parsed.logical_id})) == []


def test_allowed_replacement_in_production_relaxes_the_stack_policy_only_while_executing(cfn):
    changes = [resource_change("Modify", "DataBucket", replacement="True", policy_action="ReplaceAndRetain")]
    plan(cfn, "UPDATE_COMPLETE", change_set_response(changes=changes))
    relaxed = stack_deployer.stack_policy(["DataBucket"], frozenset({"DataBucket"}))
    full = stack_deployer.stack_policy(["DataBucket"])
    cfn.stubber.add_response("set_stack_policy", {}, {"StackName": NAME, "StackPolicyBody": relaxed})
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("UPDATE_COMPLETE", n=0)))
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(
        stack_event("UPDATE_COMPLETE", n=0), stack_event("UPDATE_IN_PROGRESS", "User Initiated", n=1),
        event("DataBucket", "UPDATE_COMPLETE", n=2), stack_event("UPDATE_COMPLETE", n=3)))
    cfn.stubber.add_response("set_stack_policy", {}, {"StackName": NAME, "StackPolicyBody": full})
    cfn.stubber.add_response("update_termination_protection", {"StackId": STACK_ID},
                             {"StackName": NAME, "EnableTerminationProtection": True})
    result = deployer(cfn).deploy(spec(production=True), Options(yes=True, allow_replace=frozenset({"DataBucket"})))
    assert result.outcome == "executed"
    assert json.loads(relaxed)["Statement"] == [json.loads(full)["Statement"][0]]
    assert json.loads(full)["Statement"][1]["Resource"] == ["LogicalResourceId/DataBucket"]


def test_failed_update_streams_events_and_names_the_root_cause_not_the_cancellations(cfn):
    plan(cfn, "UPDATE_COMPLETE", change_set_response(changes=[
        resource_change("Modify", "DataBucket", replacement="False", properties=["LifecycleConfiguration"]),
        resource_change("Add", "AlertTopic", "AWS::SNS::Topic")]))
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("UPDATE_COMPLETE", n=0)))
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    root = ("Resource handler returned message: \"'Days' in the Expiration action for filter '(prefix=content/)' "
            "must be greater than 'Days' in the Transition action\" (Service: S3, Status Code: 400)")
    first = [stack_event("UPDATE_COMPLETE", n=0), stack_event("UPDATE_IN_PROGRESS", "User Initiated", n=1),
             event("DataBucket", "UPDATE_IN_PROGRESS", n=2)]
    rest = [event("DataBucket", "UPDATE_FAILED", root, n=3),
            event("AlertTopic", "CREATE_FAILED", "Resource creation cancelled", "AWS::SNS::Topic", n=4),
            stack_event("UPDATE_ROLLBACK_IN_PROGRESS",
                        "The following resource(s) failed to update: [DataBucket]. ", n=5),
            event("AlertTopic", "DELETE_COMPLETE", resource_type="AWS::SNS::Topic", n=6),
            stack_event("UPDATE_ROLLBACK_COMPLETE", n=7)]
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(*first))
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(*first, *rest))
    out = console()
    sleeps = []
    with pytest.raises(UserError) as failure:
        deployer(cfn, out, sleeps).deploy(spec(), Options(yes=True))
    message = str(failure.value.message)
    assert message.startswith("backup-cfn-dev (us-east-1) ended UPDATE_ROLLBACK_COMPLETE: DataBucket UPDATE_FAILED")
    assert "must be greater than 'Days' in the Transition action" in message and "cancelled" not in message
    printed = text(out)
    assert printed.index("DataBucket") < printed.index("UPDATE_FAILED") < printed.index("UPDATE_ROLLBACK_COMPLETE")
    assert "Root cause:" in printed
    root_section = printed[printed.index("Root cause:"):]
    assert "DataBucket" in root_section and "AlertTopic" not in root_section
    assert sleeps == [7]


def test_rollback_complete_is_explained_and_refused_without_recreate_failed(cfn):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("describe_stack_events", newest_first(
        stack_event("CREATE_IN_PROGRESS", "User Initiated", n=0),
        event("DataBucket", "CREATE_FAILED", "backup-cfn-dev-data already exists", n=1),
        event("AlertTopic", "CREATE_FAILED", "Resource creation cancelled", "AWS::SNS::Topic", n=2),
        stack_event("ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [DataBucket]. "
                                            "Rollback requested by user.", n=3),
        stack_event("ROLLBACK_COMPLETE", n=4)))
    out = console()
    with pytest.raises(UserError, match=r"is ROLLBACK_COMPLETE \(DataBucket CREATE_FAILED: backup-cfn-dev-data "
                                        r"already exists\).*--recreate-failed"):
        deployer(cfn, out).deploy(spec(), Options(yes=True))
    assert "cannot be updated, only deleted and created again" in text(out)


def test_rollback_complete_with_recreate_failed_is_deleted_and_created_again(cfn):
    failed = [stack_event("CREATE_IN_PROGRESS", "User Initiated", n=0),
              event("DataBucket", "CREATE_FAILED", "Access Denied", n=1), stack_event("ROLLBACK_COMPLETE", n=2)]
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("describe_stack_events", newest_first(*failed))
    cfn.stubber.add_response("describe_stack_events", newest_first(*failed))
    cfn.stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(*failed, stack_event("DELETE_COMPLETE", n=3)))
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID},
                             {"StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": "CREATE", "Parameters": [],
                              "Tags": ANY, "Capabilities": ANY, "Description": ANY, "TemplateBody": ANY})
    cfn.stubber.add_response("describe_change_set", change_set_response(
        changes=[resource_change("Add", "DataBucket"), resource_change("Add", "AlertTopic", "AWS::SNS::Topic")]))
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": NAME})
    cfn.stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
    out = console()
    # Deleted, then planned as a CREATE (the stubbed call insists); declining removes the new empty stack too.
    with pytest.raises(UserError, match="declined"):
        deployer(cfn, out).deploy(spec(), Options(recreate_failed=True, interactive=True, confirm=lambda prompt: False))
    assert "deleting backup-cfn-dev to create it again (--recreate-failed)" in text(out)
    assert "DELETE_COMPLETE" in text(out)


@pytest.mark.parametrize("status, expected", [
    ("UPDATE_IN_PROGRESS", "another operation is running"),
    ("UPDATE_ROLLBACK_FAILED", "aws cloudformation continue-update-rollback --stack-name backup-cfn-dev"),
    ("DELETE_FAILED", "delete it"),
    ("ROLLBACK_FAILED", "a DynamoDB table with deletion protection must have it turned off first"),
])
def test_stacks_that_cannot_take_a_change_set_are_refused_with_the_way_out(cfn, status, expected):
    cfn.stubber.add_response("describe_stacks", stack(status), {"StackName": NAME})
    with pytest.raises(UserError, match=expected):
        deployer(cfn).deploy(spec(), Options(yes=True))


def test_status_with_drift_lists_drifted_resources(cfn):
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE", tags=[
        {"Key": stack_deployer.TAG_TEMPLATE, "Value": "0" * 64}, {"Key": stack_deployer.TAG_COMMIT, "Value": "abc123"}],
        outputs=[{"OutputKey": "DataBucketName", "OutputValue": "backup-cfn-dev-databucket-1x2y"}]),
        {"StackName": NAME})
    cfn.stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-1"}, {"StackName": STACK_ID})
    in_progress = {"StackId": STACK_ID, "StackDriftDetectionId": "d-1", "DetectionStatus": "DETECTION_IN_PROGRESS",
                   "Timestamp": NOW}
    cfn.stubber.add_response("describe_stack_drift_detection_status", in_progress)
    cfn.stubber.add_response("describe_stack_drift_detection_status", {
        **in_progress, "DetectionStatus": "DETECTION_COMPLETE", "StackDriftStatus": "DRIFTED",
        "DriftedStackResourceCount": 1})
    cfn.stubber.add_response("describe_stack_resource_drifts", {"StackResourceDrifts": [{
        "StackId": STACK_ID, "LogicalResourceId": "DataBucket", "PhysicalResourceId": "backup-cfn-dev-databucket-1x2y",
        "ResourceType": "AWS::S3::Bucket", "StackResourceDriftStatus": "MODIFIED", "Timestamp": NOW,
        "PropertyDifferences": [{"PropertyPath": "/VersioningConfiguration/Status", "ExpectedValue": "Enabled",
                                 "ActualValue": "Suspended", "DifferenceType": "NOT_EQUAL"}]}]},
        {"StackName": STACK_ID, "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]})
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("UPDATE_COMPLETE", n=1)))
    out = console()
    sleeps = []
    result = stack_status(cfn, label="primary", name=NAME, rendered=hand_made_template(), console=out,
                          poll=Poll(7, sleeps.append), package_sha256="f" * 64, drift=True)
    assert (result.status, result.drift, result.template_matches, result.package_matches) == \
        ("UPDATE_COMPLETE", "DRIFTED", False, False)
    printed = text(out)
    assert "MODIFIED DataBucket (AWS::S3::Bucket) /VersioningConfiguration/Status" in printed
    assert "deployed from commit abc123" in printed and "differs from this checkout" in printed
    assert "backup-cfn-dev-databucket-1x2y" in printed
    assert sleeps == [7]


def test_earlier_unexecuted_change_sets_of_this_tool_are_deleted_before_a_new_one(cfn):
    def summary(name, execution):
        return {"StackId": STACK_ID, "StackName": NAME, "ChangeSetId": f"{CS_ID[:-8]}{name}", "ChangeSetName": name,
                "ExecutionStatus": execution, "Status": "CREATE_COMPLETE", "CreationTime": NOW}
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("list_change_sets", {"Summaries": [
        summary("backup-cfn-20251231-000000", "AVAILABLE"), summary("someone-elses", "AVAILABLE")]},
        {"StackName": STACK_ID})
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": f"{CS_ID[:-8]}backup-cfn-20251231-000000"})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    cfn.stubber.add_response("describe_change_set", change_set_response("FAILED", EMPTY_REASONS[0]))
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    out = console()
    assert deployer(cfn, out).deploy(spec(), Options(yes=True)).outcome == "no changes"
    assert "deleted the earlier change set backup-cfn-20251231-000000, never executed" in text(out)


def test_interrupting_the_event_stream_says_the_update_goes_on(cfn):
    plan(cfn, "UPDATE_COMPLETE", change_set_response(changes=[resource_change("Add", "AlertTopic", "AWS::SNS::Topic")]))
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("UPDATE_COMPLETE", n=0)))
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("UPDATE_COMPLETE", n=0)))

    def interrupt(seconds):
        raise KeyboardInterrupt

    deployer_ = StackDeployer(cfn, None, console=console(), poll=Poll(3, interrupt), artifacts_bucket=lambda: "")
    with pytest.raises(UserError, match=r"stopped watching, but CloudFormation goes on with backup-cfn-dev"):
        deployer_.deploy(spec(), Options(yes=True))


def test_parameter_changes_and_what_they_cause_are_shown(cfn):
    deployed = stack("UPDATE_COMPLETE")
    deployed["Stacks"][0]["Parameters"] = [{"ParameterKey": "HandlerCodeKey", "ParameterValue": "handlers/aaa.zip"}]
    change = resource_change("Modify", "WorkerFunction", "AWS::Lambda::Function", replacement="False")
    change["ResourceChange"]["Details"] = [{
        "Target": {"Attribute": "Properties", "Name": "Code", "RequiresRecreation": "Never"},
        "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": "HandlerCodeKey"}]
    cfn.stubber.add_response("describe_stacks", deployed, {"StackName": NAME})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    cfn.stubber.add_response("describe_change_set", change_set_response(changes=[change]))
    template = json.dumps({"Parameters": {"HandlerCodeKey": {"Type": "String"}}, "Resources": {}})
    deployed_template(cfn, template)
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    with_parameter = StackSpec("primary", NAME, REGION, template, {"HandlerCodeKey": "handlers/bbb.zip"}, {})
    out = console()
    deployer(cfn, out).deploy(with_parameter, Options(), diff_only=True)
    assert "parameter HandlerCodeKey: handlers/aaa.zip → handlers/bbb.zip" in text(out)
    assert "Code (from HandlerCodeKey)" in text(out)


# --- issue 22: the tables' deletion protection, held back for the first creation ------------------

PROTECTION = "TableDeletionProtection"


def protected_spec() -> StackSpec:
    return StackSpec("primary", NAME, REGION, hand_made_template(), {PROTECTION: "true"}, {"Environment": "prod"},
                     True, first_create={PROTECTION: "false"})


def held_back_change_set(cfn, changes, status="CREATE_COMPLETE", reason=None):
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY, "Tags": ANY,
        "Parameters": [{"ParameterKey": PROTECTION, "ParameterValue": "true"}], "Description": ANY,
        "TemplateBody": ANY})
    cfn.stubber.add_response("describe_change_set", change_set_response(status, reason, changes), DESCRIBE)


def test_the_first_creation_holds_protection_back_then_turns_it_on_in_place(cfn):
    """AWS's shapes: the CREATE change set carries TableDeletionProtection=false; once the stack is
    CREATE_COMPLETE (and protected), an UPDATE change set with =true modifies the tables in place
    (Replacement False) and is executed without a question."""
    missing(cfn)
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": "CREATE", "Capabilities": ANY, "Tags": ANY,
        "Parameters": [{"ParameterKey": PROTECTION, "ParameterValue": "false"}], "Description": ANY,
        "TemplateBody": ANY})
    cfn.stubber.add_response("describe_change_set", change_set_response(
        changes=[resource_change("Add", "DataBucket"), resource_change("Add", "AlertTopic", "AWS::SNS::Topic")]),
        DESCRIBE)
    cfn.stubber.add_response("describe_stack_events", newest_first(stack_event("REVIEW_IN_PROGRESS", n=0)))
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("CREATE_COMPLETE"), {"StackName": STACK_ID})
    created = [stack_event("REVIEW_IN_PROGRESS", n=0), stack_event("CREATE_IN_PROGRESS", "User Initiated", n=1),
               event("DataBucket", "CREATE_COMPLETE", n=2), stack_event("CREATE_COMPLETE", n=3)]
    cfn.stubber.add_response("describe_stack_events", newest_first(*created))
    cfn.stubber.add_response("update_termination_protection", {"StackId": STACK_ID},
                             {"StackName": NAME, "EnableTerminationProtection": True})
    cfn.stubber.add_response("set_stack_policy", {}, {"StackName": NAME, "StackPolicyBody": ANY})
    held_back_change_set(cfn, [resource_change("Modify", "DataBucket", replacement="False",
                                               properties=["DeletionProtectionEnabled"])])
    cfn.stubber.add_response("describe_stack_events", newest_first(*created))
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stack_events", newest_first(
        *created, stack_event("UPDATE_IN_PROGRESS", "User Initiated", n=4), event("DataBucket", "UPDATE_COMPLETE", n=5),
        stack_event("UPDATE_COMPLETE", n=6)))
    out = console()
    result = deployer(cfn, out).deploy(protected_spec(), Options(yes=True))
    assert result.outcome == "executed"
    assert "backup-cfn-dev exists: applying TableDeletionProtection=true" in text(out)
    assert "TableDeletionProtection=true applied" in text(out)


def test_a_held_back_change_set_that_would_do_more_than_modify_in_place_is_not_applied(cfn):
    held_back_change_set(cfn, [resource_change("Modify", "DataBucket", replacement="True", policy_action="ReplaceAndRetain")])
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    with pytest.raises(UserError, match=r"TableDeletionProtection=true was not applied \(its change set would also "
                                        r"modify DataBucket\): deploy again to review it"):
        deployer(cfn)._apply_held_back(protected_spec())


def test_a_stack_already_holding_the_values_gets_no_held_back_update(cfn):
    held_back_change_set(cfn, [], status="FAILED", reason=EMPTY_REASONS[0])
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    deployer(cfn)._apply_held_back(protected_spec())


def test_an_update_passes_the_protected_value_and_holds_nothing_back(cfn):
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": NAME})
    cfn.stubber.add_response("list_change_sets", {"Summaries": []}, {"StackName": STACK_ID})
    cfn.stubber.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY, "Tags": ANY,
        "Parameters": [{"ParameterKey": PROTECTION, "ParameterValue": "true"}], "Description": ANY,
        "TemplateBody": ANY})
    cfn.stubber.add_response("describe_change_set", change_set_response(
        "FAILED", EMPTY_REASONS[0]), DESCRIBE)
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
    assert deployer(cfn).deploy(protected_spec(), Options(yes=True)).outcome == "no changes"
