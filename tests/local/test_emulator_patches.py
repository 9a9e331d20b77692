"""The emulator's fixes to moto (docs/emulator.md), each checked through the AWS API as a deploy
uses it: change sets created, waited for and executed against the session's emulator."""
import json

from backup_cfn import aws

KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                   "Action": "kms:*", "Resource": "*"}],
}


def _template(description: str = "first", with_output: bool = True, echo_suffix: bool = False) -> str:
    body = {
        "Parameters": {"Suffix": {"Type": "String"}},
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {
                "Description": description, "KeyPolicy": KEY_POLICY,
                "Tags": [{"Key": "Project", "Value": "backup-cfn"}]}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "t-${Suffix}"}}},
        },
    }
    if with_output:
        body["Outputs"] = {
            "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "probe-key-arn"}},
            "TopicArn": {"Value": {"Ref": "Topic"}},
        }
        if echo_suffix:
            body["Outputs"]["Suffix"] = {"Value": {"Ref": "Suffix"}}
    return json.dumps(body)


def _run_change_set(cfn, template: str, change_set_type: str, suffix: str = "a") -> dict:
    cfn.create_change_set(StackName="probe", ChangeSetName=f"cs-{change_set_type.lower()}", TemplateBody=template,
                          ChangeSetType=change_set_type,
                          Parameters=[{"ParameterKey": "Suffix", "ParameterValue": suffix}],
                          Tags=[{"Key": "Commit", "Value": suffix}])
    change_set = cfn.describe_change_set(StackName="probe", ChangeSetName=f"cs-{change_set_type.lower()}")
    if change_set["Status"] == "CREATE_COMPLETE":
        cfn.execute_change_set(StackName="probe", ChangeSetName=f"cs-{change_set_type.lower()}")
    return change_set


def test_change_set_created_stack_has_outputs_exports_parameters_and_tags(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    stack = cfn.describe_stacks(StackName="probe")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs["KeyArn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert outputs["TopicArn"].endswith(":t-a")
    assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["probe-key-arn"]
    assert stack["Tags"] == [{"Key": "Commit", "Value": "a"}]


def test_kms_key_with_tags_and_json_object_policy_is_created_and_described(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    key_arn = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="probe")["Stacks"][0]["Outputs"]}["KeyArn"]
    kms = aws.client(local_env, "kms")
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["Description"] == "first"
    assert json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]) == KEY_POLICY
    assert kms.list_resource_tags(KeyId=key_arn)["Tags"] == [{"TagKey": "Project", "TagValue": "backup-cfn"}]


def test_update_through_change_set_refreshes_outputs_and_keeps_updated_resources(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    first_arn = cfn.describe_stacks(StackName="probe")["Stacks"][0]["Outputs"]
    change_set = _run_change_set(cfn, _template(description="second", echo_suffix=True), "UPDATE", suffix="b")
    assert change_set["Status"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="probe")["Stacks"][0]["Outputs"]}
    assert outputs["KeyArn"] == {o["OutputKey"]: o["OutputValue"] for o in first_arn}["KeyArn"]
    assert outputs["Suffix"] == "b"
    assert aws.client(local_env, "kms").describe_key(KeyId=outputs["KeyArn"])["KeyMetadata"]["KeyId"]


def test_same_template_and_parameters_after_an_update_give_an_empty_change_set(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    _run_change_set(cfn, _template(), "UPDATE", suffix="b")
    change_set = _run_change_set(cfn, _template(), "UPDATE", suffix="b")
    assert change_set["Status"] == "FAILED"
    assert "didn't contain changes" in change_set["StatusReason"]


def test_update_stack_without_changes_is_still_rejected_as_aws_does(local_env):
    import botocore.exceptions
    import pytest

    cfn = aws.client(local_env, "cloudformation")
    parameters = [{"ParameterKey": "Suffix", "ParameterValue": "a"}]
    cfn.create_stack(StackName="probe", TemplateBody=_template(), Parameters=parameters)
    with pytest.raises(botocore.exceptions.ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName="probe", TemplateBody=_template(), Parameters=parameters)


def test_termination_protection_is_set_shown_and_blocks_deletion(local_env):
    import botocore.exceptions
    import pytest

    cfn = aws.client(local_env, "cloudformation")
    cfn.create_stack(StackName="probe", TemplateBody=_template(),
                     Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}])
    cfn.update_termination_protection(StackName="probe", EnableTerminationProtection=True)
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["EnableTerminationProtection"] is True
    with pytest.raises(botocore.exceptions.ClientError, match=r"cannot be deleted while TerminationProtection"):
        cfn.delete_stack(StackName="probe")
    cfn.update_termination_protection(StackName="probe", EnableTerminationProtection=False)
    cfn.delete_stack(StackName="probe")
    with pytest.raises(botocore.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName="probe")


def test_drift_detection_answers_in_aws_shapes_and_says_it_cannot_detect(local_env):
    cfn = aws.client(local_env, "cloudformation")
    cfn.create_stack(StackName="probe", TemplateBody=_template(),
                     Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}])
    detection_id = cfn.detect_stack_drift(StackName="probe")["StackDriftDetectionId"]
    status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
    assert (status["DetectionStatus"], status["StackDriftStatus"]) == ("DETECTION_FAILED", "UNKNOWN")
    assert "cannot detect drift" in status["DetectionStatusReason"]
    assert cfn.describe_stack_resource_drifts(StackName="probe")["StackResourceDrifts"] == []


def test_execution_keeps_the_executed_change_set_deletes_the_others_and_listing_is_per_stack(local_env):
    """ExecuteChangeSet (AWS CloudFormation API Reference): "When you execute a change set,
    CloudFormation deletes all other change sets associated with the stack"; the executed one is
    still described, ExecutionStatus EXECUTE_COMPLETE."""
    cfn = aws.client(local_env, "cloudformation")
    cfn.create_stack(StackName="other", TemplateBody=_template(with_output=False),
                     Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "o"}])
    cfn.create_change_set(StackName="other", ChangeSetName="pending",
                          TemplateBody=_template(description="x", with_output=False),
                          ChangeSetType="UPDATE", Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "o"}])
    _run_change_set(cfn, _template(), "CREATE")
    for name in ("left-1", "left-2"):
        cfn.create_change_set(StackName="probe", ChangeSetName=name, TemplateBody=_template(description=name),
                              ChangeSetType="UPDATE", Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}])
    cfn.execute_change_set(StackName="probe", ChangeSetName="left-2")
    summaries = cfn.list_change_sets(StackName="probe")["Summaries"]
    assert [(c["ChangeSetName"], c["ExecutionStatus"]) for c in summaries] == [("left-2", "EXECUTE_COMPLETE")]
    executed = cfn.describe_change_set(StackName="probe", ChangeSetName="left-2")
    assert (executed["Status"], executed["ExecutionStatus"]) == ("CREATE_COMPLETE", "EXECUTE_COMPLETE")
    assert [c["ChangeSetName"] for c in cfn.list_change_sets(StackName="other")["Summaries"]] == ["pending"]


def test_create_change_set_for_a_stack_in_review_reuses_that_stack(local_env):
    cfn = aws.client(local_env, "cloudformation")
    parameters = [{"ParameterKey": "Suffix", "ParameterValue": "a"}]
    first = cfn.create_change_set(StackName="probe", ChangeSetName="first", TemplateBody=_template(),
                                  ChangeSetType="CREATE", Parameters=parameters)
    second = cfn.create_change_set(StackName="probe", ChangeSetName="second", TemplateBody=_template(),
                                   ChangeSetType="CREATE", Parameters=parameters)
    assert second["StackId"] == first["StackId"]
    cfn.execute_change_set(ChangeSetName=second["Id"])
    assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"]] == ["CREATE_COMPLETE"]


# A FIFO queue's name must end in .fifo: moto refuses it, as SQS does.
BROKEN_QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs.fifo-not", "FifoQueue": True}}


def test_a_resource_moto_cannot_create_fails_the_stack_as_aws_does(local_env):
    cfn = aws.client(local_env, "cloudformation")
    body = json.loads(_template())
    body["Resources"]["BrokenQueue"] = BROKEN_QUEUE
    _run_change_set(cfn, json.dumps(body), "CREATE")
    stack = cfn.describe_stacks(StackName="probe")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"][::-1]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [(e["LogicalResourceId"], e["ResourceType"]) for e in failed] == [("BrokenQueue", "AWS::SQS::Queue")]
    assert "alphanumeric characters" in failed[0]["ResourceStatusReason"]
    stack_events = [e for e in events if e["LogicalResourceId"] == "probe"]
    assert [e["ResourceStatus"] for e in stack_events[-2:]] == ["ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    assert stack_events[-2]["ResourceStatusReason"] == ("The following resource(s) failed to create: [BrokenQueue]. "
                                                        "Rollback requested by user.")
    # What was created before the failure is deleted by the rollback.
    assert ("Topic", "DELETE_COMPLETE") in [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events]
    summaries = cfn.list_change_sets(StackName="probe")["Summaries"]
    assert [(c["ChangeSetName"], c["ExecutionStatus"]) for c in summaries] == [("cs-create", "EXECUTE_FAILED")]


def _error(call) -> tuple[int, str, str]:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        return (exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"],
                exc.response["Error"]["Message"])
    raise AssertionError("the call succeeded")


def test_create_stack_with_a_missing_export_or_a_bad_getatt_answers_400_validation_error(local_env):
    """CreateStack checks Fn::ImportValue and Fn::GetAtt before it answers, and refuses with a
    ValidationError (400), as stock moto does; the patches' ResourceFailed is for change sets only."""
    cfn = aws.client(local_env, "cloudformation")
    missing_export = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": {"Fn::ImportValue": "no-such-export"}}}}}
    status, code, message = _error(lambda: cfn.create_stack(StackName="probe", TemplateBody=json.dumps(missing_export)))
    assert (status, code) == (400, "ValidationError") and "no-such-export" in message
    bad_attribute = {"Resources": {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Other": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::GetAtt": ["Topic", "NoSuchAttribute"]}}}}}
    status, code, _ = _error(lambda: cfn.create_stack(StackName="probe-2", TemplateBody=json.dumps(bad_attribute)))
    assert (status, code) == (400, "ValidationError")


def test_update_stack_with_a_missing_export_answers_400_validation_error(local_env):
    cfn = aws.client(local_env, "cloudformation")
    cfn.create_stack(StackName="probe", TemplateBody=_template(with_output=False),
                     Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}])
    body = json.loads(_template(with_output=False))
    body["Resources"]["Other"] = {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": {"Fn::ImportValue": "no-such-export"}}}
    status, code, message = _error(lambda: cfn.update_stack(
        StackName="probe", TemplateBody=json.dumps(body), Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}]))
    assert (status, code) == (400, "ValidationError") and "no-such-export" in message


def test_a_resource_moto_cannot_update_rolls_the_update_back(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    body = json.loads(_template())
    body["Resources"]["BrokenQueue"] = BROKEN_QUEUE
    _run_change_set(cfn, json.dumps(body), "UPDATE")
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"][::-1]
    assert [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "CREATE_FAILED"] == ["BrokenQueue"]
    assert events[-2]["ResourceStatusReason"] == "The following resource(s) failed to update: [BrokenQueue]. "


def test_retain_except_on_create_is_kept_when_the_stack_is_deleted(local_env):
    cfn = aws.client(local_env, "cloudformation")
    body = {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "RetainExceptOnCreate",
                                   "Properties": {"LogGroupName": "/probe/kept"}}}}
    cfn.create_stack(StackName="probe", TemplateBody=json.dumps(body))
    cfn.delete_stack(StackName="probe")
    groups = aws.client(local_env, "logs").describe_log_groups(logGroupNamePrefix="/probe/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/probe/kept"]


def test_retain_except_on_create_goes_when_the_creation_rolls_back(local_env):
    cfn = aws.client(local_env, "cloudformation")
    body = {"Resources": {
        "Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "RetainExceptOnCreate",
                 "Properties": {"LogGroupName": "/probe/gone"}},
        "Kept": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": "/probe/kept"}},
        "BrokenQueue": {**BROKEN_QUEUE, "DependsOn": ["Logs", "Kept"]}}}
    cfn.create_change_set(StackName="probe", ChangeSetName="c", ChangeSetType="CREATE", TemplateBody=json.dumps(body))
    cfn.execute_change_set(StackName="probe", ChangeSetName="c")
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    groups = aws.client(local_env, "logs").describe_log_groups(logGroupNamePrefix="/probe/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/probe/kept"]


def test_resources_get_their_own_events(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"][::-1]
    topic = [(e["ResourceStatus"], e["ResourceType"]) for e in events if e["LogicalResourceId"] == "Topic"]
    assert topic == [("CREATE_IN_PROGRESS", "AWS::SNS::Topic"), ("CREATE_COMPLETE", "AWS::SNS::Topic")]
    complete = [e for e in events if e["LogicalResourceId"] == "Topic" and e["ResourceStatus"] == "CREATE_COMPLETE"]
    assert complete[0]["PhysicalResourceId"].endswith(":t-a")
    assert [e["ResourceStatus"] for e in events][-1] == "CREATE_COMPLETE"
    assert events[-1]["LogicalResourceId"] == "probe"

    body = json.loads(_template())
    del body["Resources"]["Topic"], body["Outputs"]["TopicArn"]
    _run_change_set(cfn, json.dumps(body), "UPDATE")
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"][::-1]
    assert [e["ResourceStatus"] for e in events if e["LogicalResourceId"] == "Topic"][-2:] == \
        ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]


def test_a_parameter_change_modifies_the_resources_using_it_through_ref_or_sub(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    change_set = _run_change_set(cfn, _template(), "UPDATE", suffix="b")
    assert [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
            for c in change_set["Changes"]] == [("Modify", "Topic")]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="probe")["Stacks"][0]["Outputs"]}
    assert outputs["TopicArn"].endswith(":t-b")


def test_a_resource_moto_skips_has_no_events_however_often_it_is_referenced(local_env):
    cfn = aws.client(local_env, "cloudformation")
    body = {"Resources": {
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}},
        "Topic": {"Type": "AWS::SNS::Topic", "DependsOn": ["Alarm"]}},
        "Outputs": {"A": {"Value": {"Ref": "Alarm"}}, "B": {"Value": {"Ref": "Alarm"}}}}
    cfn.create_change_set(StackName="probe", ChangeSetName="c", ChangeSetType="CREATE", TemplateBody=json.dumps(body))
    cfn.execute_change_set(StackName="probe", ChangeSetName="c")
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"]
    per_resource = {}
    for event in events:
        per_resource.setdefault(event["LogicalResourceId"], []).append(event["ResourceStatus"])
    assert sorted(per_resource["Topic"]) == ["CREATE_COMPLETE", "CREATE_IN_PROGRESS"]
    assert "Alarm" not in per_resource  # moto skips alarms: no events, however many references


def test_change_set_events_answer_with_no_early_validation_finding(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _run_change_set(cfn, _template(), "CREATE")
    cfn.create_change_set(StackName="probe", ChangeSetName="cs-review", TemplateBody=_template("second"),
                          ChangeSetType="UPDATE", Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}])
    assert cfn.describe_events(ChangeSetName="cs-review", StackName="probe")["OperationEvents"] == []


def test_lambda_account_settings_count_what_functions_reserve(local_env):
    iam, lambda_ = aws.client(local_env, "iam"), aws.client(local_env, "lambda")
    role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument=json.dumps({"Statement": []}))["Role"]["Arn"]
    limits = lambda_.get_account_settings()["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (1000, 1000)
    lambda_.create_function(FunctionName="probe", Runtime="python3.12", Role=role, Handler="h.handler",
                            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    lambda_.put_function_concurrency(FunctionName="probe", ReservedConcurrentExecutions=3)
    assert lambda_.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 997


PROTECTED_TABLE = {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "RetainExceptOnCreate", "Properties": {
    "TableName": "probe-runs", "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "DeletionProtectionEnabled": {"Fn::If": ["Protected", True, False]}}}


def _protected_table_template(with_broken_queue: bool = False) -> str:
    body = {"Parameters": {"Protect": {"Type": "String", "AllowedValues": ["true", "false"]}},
            "Conditions": {"Protected": {"Fn::Equals": [{"Ref": "Protect"}, "true"]}},
            "Resources": {"Runs": PROTECTED_TABLE}}
    if with_broken_queue:
        body["Resources"]["BrokenQueue"] = {**BROKEN_QUEUE, "DependsOn": "Runs"}
    return json.dumps(body)


def _create(cfn, template: str, protect: str, change_set_type: str = "CREATE", name: str = "cs-create") -> dict:
    cfn.create_change_set(StackName="probe", ChangeSetName=name, TemplateBody=template, ChangeSetType=change_set_type,
                          Parameters=[{"ParameterKey": "Protect", "ParameterValue": protect}])
    change_set = cfn.describe_change_set(StackName="probe", ChangeSetName=name)
    cfn.execute_change_set(StackName="probe", ChangeSetName=name)
    return change_set


def test_a_rollback_that_cannot_delete_a_protected_table_ends_rollback_failed(local_env):
    """AWS: DeleteTable of a table with DeletionProtectionEnabled is refused, so the rollback of a
    failed first creation cannot delete it: DELETE_FAILED, then the stack ROLLBACK_FAILED."""
    cfn = aws.client(local_env, "cloudformation")
    _create(cfn, _protected_table_template(with_broken_queue=True), "true")
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["StackStatus"] == "ROLLBACK_FAILED"
    events = cfn.describe_stack_events(StackName="probe")["StackEvents"][::-1]
    [failed] = [e for e in events if e["ResourceStatus"] == "DELETE_FAILED"]
    assert failed["LogicalResourceId"] == "Runs" and "DeletionProtectionEnabled" in failed["ResourceStatusReason"]
    assert events[-1]["ResourceStatus"] == "ROLLBACK_FAILED"
    assert events[-1]["ResourceStatusReason"] == "The following resource(s) failed to delete: [Runs]. "


def test_the_same_failure_with_protection_off_rolls_back_completely(local_env):
    cfn = aws.client(local_env, "cloudformation")
    _create(cfn, _protected_table_template(with_broken_queue=True), "false")
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "probe-runs" not in aws.client(local_env, "dynamodb").list_tables()["TableNames"]


def test_a_parameter_read_through_a_condition_modifies_the_table_in_place(local_env):
    """A parameter change reaching a resource through a condition (Fn::If) modifies it, and the
    table's deletion protection changes in place, as AWS updates it (no interruption)."""
    cfn, dynamodb = aws.client(local_env, "cloudformation"), aws.client(local_env, "dynamodb")
    _create(cfn, _protected_table_template(), "false")
    assert dynamodb.describe_table(TableName="probe-runs")["Table"]["DeletionProtectionEnabled"] is False
    change_set = _create(cfn, _protected_table_template(), "true", "UPDATE", "cs-update")
    assert [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
            for c in change_set["Changes"]] == [("Modify", "Runs")]
    assert cfn.describe_stacks(StackName="probe")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert dynamodb.describe_table(TableName="probe-runs")["Table"]["DeletionProtectionEnabled"] is True


def test_a_subnet_with_a_zone_id_is_created_in_that_zone(local_env):
    """AWS::EC2::Subnet AvailabilityZoneId places the subnet in that zone, whatever its name here."""
    cfn = aws.client(local_env, "cloudformation")
    body = {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.0.0/20", "AvailabilityZoneId": "use1-az4"}}}}
    cfn.create_stack(StackName="probe", TemplateBody=json.dumps(body))
    subnet_id = cfn.describe_stack_resource(StackName="probe", LogicalResourceId="Subnet")[
        "StackResourceDetail"]["PhysicalResourceId"]
    [subnet] = aws.client(local_env, "ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert (subnet["AvailabilityZoneId"], subnet["AvailabilityZone"]) == ("use1-az4", "us-east-1d")
