"""One targeted assert per promise the template makes: encryption, public access, TLS, key policy
principals and conditions, least privilege, replication wiring, endpoints, alarms, retention."""
from __future__ import annotations

import json

import pytest

from backup_cfn import contract
from backup_cfn.contract import JOB_MAX_RECEIVES, WORKER_TIMEOUT_SECONDS

from template_helpers import (
    ENV_NAMES,
    ONE_ACCOUNT_ENV_NAMES,
    as_list,
    build_with,
    disaster_recovery,
    policy_documents,
    primary,
    props,
    replica,
    resources,
    role_actions,
    statements,
)

ALL = [(name, kind) for name in ENV_NAMES for kind in ("primary", "disaster-recovery")]


def template_of(env_name: str, kind: str) -> dict:
    return primary(env_name) if kind == "primary" else disaster_recovery(env_name)


@pytest.mark.parametrize("env_name,kind", ALL)
def test_every_bucket_is_encrypted_private_owner_enforced_and_versioned(env_name, kind):
    template = template_of(env_name, kind)
    for name, bucket in resources(template, "AWS::S3::Bucket").items():
        p = bucket["Properties"]
        rule = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        if name.endswith("AccessLogBucket"):
            assert algorithm == "AES256", "server access log targets use SSE-S3"
        else:
            assert algorithm == "aws:kms" and rule["BucketKeyEnabled"] is True, name
            assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][1] == "Arn"
        assert p["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert p["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("env_name,kind", ALL)
def test_every_bucket_has_a_tls_only_policy(env_name, kind):
    template = template_of(env_name, kind)
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
                for p in resources(template, "AWS::S3::BucketPolicy").values()}
    assert set(policies) == set(resources(template, "AWS::S3::Bucket"))
    for bucket, document in policies.items():
        deny = [s for s in statements(document) if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")]
        assert deny and deny[0]["Effect"] == "Deny" and deny[0]["Principal"] == "*", bucket
        assert deny[0]["Condition"]["Bool"]["aws:SecureTransport"] == "false"


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_backup_and_replica_buckets_refuse_uploads_with_another_key(env_name):
    for template, bucket, key in ((primary(env_name), "BackupBucket", "BackupKey"),
                                  (replica(env_name), "ReplicaBucket", "ReplicaKey")):
        document = next(p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::S3::BucketPolicy").values()
                        if p["Properties"]["Bucket"]["Ref"] == bucket)
        by_sid = {s["Sid"]: s for s in statements(document)}
        # Each deny applies only when its header is sent (Null false); the evaluation tests
        # (test_permissions_conformance.py) prove an upload without headers is let through.
        other_key = by_sid["DenyUploadsWithOtherKey"]["Condition"]
        assert other_key["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"] == \
            {"Fn::GetAtt": [key, "Arn"]}
        assert other_key["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}
        other_algo = by_sid["DenyUploadsWithOtherEncryption"]["Condition"]
        assert other_algo["StringNotEquals"]["s3:x-amz-server-side-encryption"] == "aws:kms"
        assert other_algo["Null"] == {"s3:x-amz-server-side-encryption": "false"}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_key_rotates_and_its_policy_grants_exactly_the_services_that_use_it(env_name):
    template = primary(env_name)
    key = props(template, "BackupKey")
    assert key["EnableKeyRotation"] is True
    assert props(template, "BackupKeyAlias")["TargetKeyId"] == {"Ref": "BackupKey"}
    services = {}
    for statement in statements(key["KeyPolicy"]):
        principal = statement["Principal"]
        if "Service" in principal:
            name = principal["Service"] if isinstance(principal["Service"], str) else principal["Service"]["Fn::Sub"]
            services.setdefault(name, []).append(statement)
    assert set(services) == {"cloudwatch.amazonaws.com", "events.amazonaws.com", "cloudtrail.amazonaws.com",
                             "logs.${AWS::Region}.amazonaws.com"}
    for name, granted in services.items():
        for statement in granted:
            conditions = json.dumps(statement["Condition"])
            assert ("aws:SourceAccount" in conditions or "aws:SourceArn" in conditions
                    or "kms:EncryptionContext" in conditions), f"{name} is not held to this account"
    trail = [s for s in services["cloudtrail.amazonaws.com"] if s["Action"] == ["kms:GenerateDataKey"]][0]
    assert "trail/" + f"backup-cfn-{env_name}-audit" in json.dumps(trail["Condition"]["StringEquals"])


def test_trusted_accounts_decrypt_only_through_s3_and_read_only():
    template, replica_template = build_with("dev", trusted_account_ids=("111122223333",))
    key = next(s for s in statements(props(template, "BackupKey")["KeyPolicy"])
               if s["Sid"] == "TrustedAccountsDecryptThroughS3")
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    assert key["Condition"]["StringEquals"]["kms:ViaService"] == [{"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}]
    assert "111122223333" in json.dumps(key["Principal"])
    for t, bucket in ((template, "BackupBucketPolicy"), (replica_template, "ReplicaBucketPolicy")):
        read = next(s for s in statements(props(t, bucket)["PolicyDocument"])
                    if s["Sid"] == "TrustedAccountsRestoreReadOnly")
        assert sorted(read["Action"]) == ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"]
        assert read["Condition"]["StringEquals"]["aws:PrincipalAccount"] == ["111122223333"]


@pytest.mark.parametrize("env_name,kind", ALL)
def test_no_wildcard_action_is_ever_allowed(env_name, kind):
    for owner, document in policy_documents(template_of(env_name, kind)):
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{owner} allows {action}"


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_resource_star_only_in_key_policies_and_lambda_network_interfaces(env_name):
    template = primary(env_name)
    for owner, document in policy_documents(template):
        if owner in ("BackupKey",):
            continue  # a key policy's "*" means "this key"
        for statement in statements(document):
            if statement["Effect"] == "Allow" and "*" in as_list(statement.get("Resource", [])):
                assert statement["Sid"] == "ManageVpcNetworkInterfaces", owner


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_one_role_per_function_and_only_the_pruner_deletes(env_name):
    template = primary(env_name)
    functions = resources(template, "AWS::Lambda::Function")
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(roles) == len(set(roles)) == 7
    deleters = {role for role in roles if any("Delete" in a and a.startswith("s3:") for a in role_actions(template, role))}
    assert deleters == {"PrunerFunctionRole"}
    pruner_delete = [s for p in props(template, "PrunerFunctionRole")["Policies"]
                     for s in statements(p["PolicyDocument"]) if "s3:DeleteObject" in as_list(s["Action"])][0]
    prefixes = sorted(r["Fn::Sub"][0].split("}/")[1] for r in pruner_delete["Resource"])
    assert prefixes == sorted([contract.CONTENT_PREFIX + "*", contract.MANIFEST_PREFIX + "*",
                               contract.JOURNAL_PREFIX + "*"])
    # Whoever closes a run announces it: the last worker, or the initiator when it finishes last.
    assert {"sns:Publish"} <= role_actions(template, "InitiatorFunctionRole") & role_actions(template, "WorkerFunctionRole")
    worker = role_actions(template, "WorkerFunctionRole")
    assert {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"} <= worker
    assert not any("Delete" in a for a in worker if a.startswith("s3:"))
    # The dead-letter consumer records failures and closes runs: the runs table and the topic, no data.
    consumer = role_actions(template, "DeadLetterFunctionRole")
    assert {a for a in consumer if a.split(":")[0] in ("s3", "dynamodb", "sns")} == {
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "sns:Publish"}
    # The restore function writes restored files into the source bucket only, and records only
    # under restore keys (the conformance test proves what it is denied).
    restorer = props(template, "RestorerFunctionRole")["Policies"][0]["PolicyDocument"]
    puts = [s for s in statements(restorer) if any(a.startswith("s3:Put") for a in as_list(s["Action"]))]
    assert [s["Sid"] for s in puts] == ["RestoreIntoSourceBucket"]
    ddb_statements = [s for s in statements(restorer) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert all(s["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["R*"]}} for s in ddb_statements)
    # The capture function stores content and journal segments: never a snapshot, never the source.
    capture = [s for p in props(template, "CaptureFunctionRole")["Policies"] for s in statements(p["PolicyDocument"])]
    writes = [s for s in capture if "s3:PutObject" in as_list(s["Action"])]
    assert sorted(r["Fn::Sub"][0].split("}/")[1] for s in writes for r in s["Resource"]) == sorted(
        [contract.CONTENT_PREFIX + "*", contract.JOURNAL_PREFIX + "*"])
    runs_writes = [s for s in capture if "dynamodb:UpdateItem" in as_list(s["Action"])
                   and s["Resource"] == [{"Fn::GetAtt": ["RunsTable", "Arn"]}]]
    assert [s["Condition"] for s in runs_writes] == [{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BURST#*"]}}]


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_drill_reads_backups_and_records_drills_and_nothing_else(env_name):
    template = primary(env_name)
    by_sid = {s["Sid"]: s for p in props(template, "DrillFunctionRole")["Policies"]
              for s in statements(p["PolicyDocument"])}
    actions = role_actions(template, "DrillFunctionRole")
    s3_actions = {a for a in actions if a.startswith("s3:")}
    assert s3_actions == {"s3:ListBucket", "s3:GetObject"}
    prefixes = sorted(r["Fn::Sub"][0].split("}/")[1] for r in by_sid["ReadSnapshotsAndContent"]["Resource"])
    assert prefixes == sorted([contract.CONTENT_PREFIX + "*", contract.MANIFEST_PREFIX + "*"])
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:PutItem"}
    assert by_sid["RecordDrills"]["Resource"] == [{"Fn::GetAtt": ["RunsTable", "Arn"]}]
    function = props(template, "DrillFunction")
    assert function["Handler"] == contract.HANDLER_DRILL and function["ReservedConcurrentExecutions"] == 1
    assert function["Timeout"] == contract.DRILL_TIMEOUT_SECONDS
    variables = function["Environment"]["Variables"]
    assert variables[contract.ENV_DRILL_USERS] == "10" and variables[contract.ENV_KEEP_MONTHLY] == "0"
    alarm = props(template, "RestoreDrillFailedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == (contract.METRIC_NAMESPACE, contract.METRIC_DRILLS_FAILED)
    assert alarm["Dimensions"] == [{"Name": contract.METRIC_DIMENSION, "Value": f"backup-cfn-{env_name}"}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1
    assert "DrillErrorsAlarm" in resources(template, "AWS::CloudWatch::Alarm")
    assert template["Outputs"][contract.OUTPUT_DRILL]["Value"] == {"Ref": "DrillFunction"}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_functions_use_kms_only_through_services(env_name):
    template = primary(env_name)
    for role in resources(template, "AWS::IAM::Role"):
        for policy in props(template, role).get("Policies", []):
            for statement in statements(policy["PolicyDocument"]):
                if any(a.startswith("kms:") for a in as_list(statement["Action"])):
                    assert "kms:ViaService" in statement["Condition"]["StringEquals"], role


@pytest.mark.parametrize("env_name", ONE_ACCOUNT_ENV_NAMES)
def test_replication_goes_to_the_replica_stack_in_the_other_region(env_name):
    template, replica_template = primary(env_name), replica(env_name)
    config = props(template, "BackupBucket")["ReplicationConfiguration"]
    assert config["Role"] == {"Fn::GetAtt": ["ReplicationRole", "Arn"]}
    [rule] = config["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["Destination"]["Bucket"] == {"Ref": contract.PARAM_REPLICA_BUCKET_ARN}
    assert rule["Destination"]["EncryptionConfiguration"] == {"ReplicaKmsKeyID": {"Ref": contract.PARAM_REPLICA_KEY_ARN}}
    # The replica stack's outputs are exactly what the primary's parameters take.
    assert {contract.OUTPUT_REPLICA_BUCKET_ARN, contract.OUTPUT_REPLICA_KEY_ARN} <= set(replica_template["Outputs"])
    # The replica key lets in the role the primary creates, by name.
    role_name = props(template, "ReplicationRole")["RoleName"]
    replica_policy = json.dumps(props(replica_template, "ReplicaKey")["KeyPolicy"])
    assert f"role/{role_name}" in replica_policy
    policy = props(template, "ReplicationRolePolicy")
    assert policy["Roles"] == [{"Ref": "ReplicationRole"}]
    assert {"s3:ReplicateObject", "s3:ReplicateDelete", "kms:Encrypt", "kms:Decrypt"} <= {
        a for s in statements(policy["PolicyDocument"]) for a in as_list(s["Action"])}


def test_replication_time_control_only_when_asked():
    assert "ReplicationTime" in props(primary("prod"), "BackupBucket")["ReplicationConfiguration"]["Rules"][0]["Destination"]
    assert "ReplicationTime" not in props(primary("dev"), "BackupBucket")["ReplicationConfiguration"]["Rules"][0]["Destination"]


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_stateful_resources_are_retained(env_name):
    for template in (primary(env_name), replica(env_name)):
        for name, resource in template["Resources"].items():
            if resource["Type"] in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
                assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", name
                assert resource.get("UpdateReplacePolicy") == "Retain", name


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_environment_tags_on_every_taggable_resource(env_name):
    import troposphere
    from troposphere import BaseAWSObject  # noqa: F401 - troposphere knows which types take Tags

    taggable = {cls.resource_type for module in troposphere.__dict__.values() if hasattr(module, "__dict__")
                for cls in getattr(module, "__dict__", {}).values()
                if isinstance(cls, type) and hasattr(cls, "resource_type") and "Tags" in getattr(cls, "props", {})}
    from backup_cfn.config import load_environment

    expected = load_environment(env_name).tag_dict
    for template in (primary(env_name), replica(env_name)):
        for name, resource in template["Resources"].items():
            if resource["Type"] in taggable:
                tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
                assert expected.items() <= tags.items(), f"{name} lacks the environment's tags"


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_tables_on_demand_cmk_pitr_ttl_and_deletion_protection_in_prod(env_name):
    template = primary(env_name)
    for name in ("RunsTable", "ContentIndexTable"):
        p = props(template, name)
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert p["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS",
                                         "KMSMasterKeyId": {"Fn::GetAtt": ["BackupKey", "Arn"]}}
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if env_name == "prod":
            # On once the stack exists; off only for the first creation (deploy passes "false" then).
            assert p["DeletionProtectionEnabled"] == {"Fn::If": ["TablesAreProtectedFromDeletion", True, False]}
        else:
            assert p["DeletionProtectionEnabled"] is False
    if env_name == "prod":
        parameter = template["Parameters"][contract.PARAM_TABLE_DELETION_PROTECTION]
        assert (parameter["Default"], parameter["AllowedValues"]) == ("true", ["true", "false"])
        assert template["Conditions"]["TablesAreProtectedFromDeletion"] == {
            "Fn::Equals": [{"Ref": contract.PARAM_TABLE_DELETION_PROTECTION}, "true"]}
    assert props(template, "RunsTable")["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {i["IndexName"] for i in props(template, "RunsTable")["GlobalSecondaryIndexes"]}
    assert indexes == {contract.RUNS_BY_USER_INDEX, contract.RUNS_BY_STATUS_INDEX}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_queues_are_encrypted_and_redrive_safely(env_name):
    template = primary(env_name)
    for queue in resources(template, "AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}
    jobs = props(template, "JobQueue")
    assert jobs["RedrivePolicy"]["maxReceiveCount"] >= 5 and JOB_MAX_RECEIVES >= 5
    assert jobs["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]}
    assert jobs["VisibilityTimeout"] >= 6 * props(template, "WorkerFunction")["Timeout"]
    assert props(template, "WorkerFunction")["Timeout"] == WORKER_TIMEOUT_SECONDS


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_topic_encrypted_and_email_subscription_only_when_configured(env_name):
    from backup_cfn.config import load_environment

    template = primary(env_name)
    assert props(template, "NotificationTopic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}
    subscriptions = resources(template, "AWS::SNS::Subscription")
    email = load_environment(env_name).notification_email
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == ([email] if email else [])
    publishers = {s["Principal"]["Service"] for s in statements(props(template, "NotificationTopicPolicy")["PolicyDocument"])
                  if s["Effect"] == "Allow"}
    assert publishers == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_worker_consumes_the_queue_with_partial_batch_failures_and_bounded_concurrency(env_name):
    from backup_cfn.config import load_environment

    template = primary(env_name)
    mappings = resources(template, "AWS::Lambda::EventSourceMapping")
    assert set(mappings) == {"WorkerJobSubscription", "DeadLetterSubscription", "RestoreJobSubscription",
                             "RestoreDeadLetterSubscription", "CaptureSubscription"}
    p = mappings["RestoreJobSubscription"]["Properties"]
    assert (p["EventSourceArn"], p["FunctionName"], p["BatchSize"]) == (
        {"Fn::GetAtt": ["RestoreQueue", "Arn"]}, {"Ref": "RestorerFunction"}, 1)
    assert p["ScalingConfig"] == {"MaximumConcurrency": load_environment(env_name).max_concurrent_restores}
    assert mappings["RestoreDeadLetterSubscription"]["Properties"]["FunctionName"] == {"Ref": "RestorerFunction"}
    for queue in ("RestoreQueue", "RestoreDeadLetterQueue"):
        assert props(template, queue)["VisibilityTimeout"] >= 6 * props(template, "RestorerFunction")["Timeout"]
    p = mappings["WorkerJobSubscription"]["Properties"]
    assert p["EventSourceArn"] == {"Fn::GetAtt": ["JobQueue", "Arn"]}
    assert p["FunctionName"] == {"Ref": "WorkerFunction"}
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["ScalingConfig"] == {"MaximumConcurrency": load_environment(env_name).max_concurrent_backups}
    assert p["BatchSize"] == 1          # one job an invocation: each has the whole timeout
    p = mappings["DeadLetterSubscription"]["Properties"]
    assert p["EventSourceArn"] == {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]}
    assert p["FunctionName"] == {"Ref": "DeadLetterFunction"}
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props(template, "JobDeadLetterQueue")["VisibilityTimeout"] >= 6 * props(template, "DeadLetterFunction")["Timeout"]
    # Continuous capture: batches gathered for a few seconds, partial failures, bounded concurrency.
    p = mappings["CaptureSubscription"]["Properties"]
    assert p["EventSourceArn"] == {"Fn::GetAtt": ["CaptureQueue", "Arn"]}
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (p["BatchSize"], p["MaximumBatchingWindowInSeconds"]) == (contract.CAPTURE_BATCH_SIZE,
                                                                     contract.CAPTURE_BATCHING_WINDOW_SECONDS)
    assert p["BatchSize"] <= 10 or p["MaximumBatchingWindowInSeconds"] >= 1   # Lambda's rule for batches over 10
    assert p["ScalingConfig"] == {"MaximumConcurrency": load_environment(env_name).capture_concurrency}
    assert props(template, "CaptureQueue")["VisibilityTimeout"] >= 6 * props(template, "CaptureFunction")["Timeout"]
    for function in resources(template, "AWS::Lambda::Function").values():
        assert function["Properties"]["Architectures"] == ["arm64"]
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].endswith("LogGroup")
    configs = {c["Properties"]["FunctionName"]["Ref"] for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()}
    assert configs == {"InitiatorFunction", "PrunerFunction", "DrillFunction"}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_log_groups_encrypted_with_retention(env_name):
    for group in resources(primary(env_name), "AWS::Logs::LogGroup").values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}
        assert group["Properties"]["RetentionInDays"] > 0


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_schedules_have_retries_and_a_dead_letter_queue(env_name):
    from backup_cfn.config import load_environment

    env = load_environment(env_name)
    rules = resources(primary(env_name), "AWS::Events::Rule")
    schedules = {name: r for name, r in rules.items() if "ScheduleExpression" in r["Properties"]}
    assert set(rules) - set(schedules) == {"SourceChangeRule"}
    assert {r["Properties"]["ScheduleExpression"] for r in schedules.values()} == {env.schedule, env.prune_schedule,
                                                                                  env.drill_schedule}
    assert rules["RestoreDrillSchedule"]["Properties"]["ScheduleExpression"] == "cron(0 8 ? * SUN *)"  # weekly
    for rule in rules.values():
        [target] = rule["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["FailedInvocationQueue", "Arn"]}}


# --- network ---------------------------------------------------------------------------------

SERVICES_WITHOUT_VPC_TRAFFIC = {
    "kms",   # used only through S3/DynamoDB/SQS/SNS (kms:ViaService), never called directly
    "logs",  # Lambda's service delivers function logs, not the function's network
    "ec2",   # network interfaces are managed by the Lambda service
}


@pytest.mark.parametrize("env_name", [n for n in ENV_NAMES if primary(n)["Resources"].get("Vpc")])
def test_every_service_the_functions_may_call_has_an_endpoint(env_name):
    template = primary(env_name)
    called = {action.split(":")[0] for role in ("InitiatorFunctionRole", "WorkerFunctionRole", "PrunerFunctionRole")
              for action in role_actions(template, role)} - SERVICES_WITHOUT_VPC_TRAFFIC
    endpoints = {e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
                 for e in resources(template, "AWS::EC2::VPCEndpoint").values()}
    assert called <= endpoints
    gateway = {e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
               for e in resources(template, "AWS::EC2::VPCEndpoint").values()
               if e["Properties"]["VpcEndpointType"] == "Gateway"}
    assert gateway == {"s3", "dynamodb"}
    for function in resources(template, "AWS::Lambda::Function").values():
        assert len(function["Properties"]["VpcConfig"]["SubnetIds"]) == 2
    # Two zones, each by ID from its own parameter (deploy chooses them: backup_cfn/deploy/zones.py).
    zones = [s["Properties"]["AvailabilityZoneId"]["Ref"] for s in resources(template, "AWS::EC2::Subnet").values()]
    assert sorted(zones) == ["IsolatedSubnet1ZoneId", "IsolatedSubnet2ZoneId"]
    assert not resources(template, "AWS::EC2::InternetGateway") and not resources(template, "AWS::EC2::NatGateway")


def test_no_vpc_when_endpoints_are_off():
    template = primary("dev")
    assert not resources(template, "AWS::EC2::VPC")
    assert all("VpcConfig" not in f["Properties"] for f in resources(template, "AWS::Lambda::Function").values())


# --- monitoring ----------------------------------------------------------------------------

KNOWN_METRICS = {
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",
                "ApproximateNumberOfMessagesNotVisible", "NumberOfMessagesSent"},
    "AWS/Lambda": {"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"},
    "AWS/S3": {"BucketSizeBytes", "NumberOfObjects", "OperationsFailedReplication", "ReplicationLatency"},
    contract.METRIC_NAMESPACE: {contract.METRIC_RUNS_SUCCEEDED, contract.METRIC_USERS_BACKED_UP, contract.METRIC_USERS_FAILED,
                              contract.METRIC_BYTES_NEW, contract.METRIC_BYTES_DEDUPLICATED,
                              contract.METRIC_DRILLS_FAILED, contract.METRIC_DRILLS_PASSED,
                              contract.METRIC_JOBS_DEAD_LETTERED, contract.METRIC_CHANGES_CAPTURED,
                              contract.METRIC_CHANGES_MISSED, contract.METRIC_CAPTURE_EVENTS_IGNORED,
                              contract.METRIC_CAPTURE_LATENCY, contract.METRIC_USERS_BURSTING},
}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_alarms_watch_metrics_that_exist_and_publish_to_the_topic(env_name):
    template = primary(env_name)
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert {"JobsDeadLetteredAlarm", "JobDeadLetterQueueNotDrainedAlarm", "NoSuccessfulBackupAlarm",
            "WorkerErrorsAlarm", "DeadLetterErrorsAlarm", "ReplicationFailedAlarm",
            "ReplicationBehindAlarm", "BackupBucketConfigurationChangedAlarm",
            "BackupKeyDisabledOrScheduledForDeletionAlarm", "BackupDeleteDeniedAlarm"} <= set(alarms)
    # Metrics the trail's metric filters produce exist too.
    known = {namespace: set(names) for namespace, names in KNOWN_METRICS.items()}
    for metric_filter in resources(template, "AWS::Logs::MetricFilter").values():
        for transformation in metric_filter["Properties"]["MetricTransformations"]:
            known.setdefault(transformation["MetricNamespace"], set()).add(transformation["MetricName"])
    for name, alarm in alarms.items():
        p = alarm["Properties"]
        assert p["MetricName"] in known[p["Namespace"]], name
        assert p["AlarmActions"] == [{"Ref": "NotificationTopic"}], name


def test_missing_backups_for_26_hours_breach():
    p = props(primary("prod"), "NoSuccessfulBackupAlarm")
    assert p["Period"] * p["EvaluationPeriods"] == 26 * 3600 and p["DatapointsToAlarm"] == p["EvaluationPeriods"]
    assert p["TreatMissingData"] == "breaching" and p["ComparisonOperator"] == "LessThanThreshold"
    assert p["Period"] * p["EvaluationPeriods"] <= 7 * 24 * 3600  # CloudWatch's limit for periods >= 1 hour


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_dashboard_shows_storage_queues_functions_and_engine_metrics(env_name):
    body = props(primary(env_name), "Dashboard")["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body[0])["widgets"]
    metrics = {(m[0], m[1]) for w in widgets for m in w["properties"]["metrics"]}
    for namespace, names in KNOWN_METRICS.items():
        assert {name for ns, name in metrics if ns == namespace} <= names
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    assert ("AWS/S3", "BucketSizeBytes") in metrics and (contract.METRIC_NAMESPACE, contract.METRIC_BYTES_NEW) in metrics
    storage_types = {m[5] for w in widgets for m in w["properties"]["metrics"] if m[1] == "BucketSizeBytes"}
    assert storage_types == {"StandardStorage", "StandardIAStorage"}
    # Every ${Placeholder} is supplied.
    import re
    placeholders = set(re.findall(r"\$\{([A-Za-z]+)\}", body[0]))
    assert placeholders <= set(body[1])


# --- audit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_trail_validated_encrypted_with_data_events_on_the_backup_bucket(env_name):
    from backup_cfn.config import load_environment

    template = primary(env_name)
    trail = props(template, "Trail")
    assert trail["EnableLogFileValidation"] is True and trail["KMSKeyId"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}
    assert trail["IsMultiRegionTrail"] is load_environment(env_name).multi_region_trail
    data = [s for s in trail["AdvancedEventSelectors"] if {"Field": "eventCategory", "Equals": ["Data"]} in s["FieldSelectors"]]
    assert json.dumps(data).count("BackupBucket") == 1
    lifecycle = props(template, "TrailBucket")["LifecycleConfiguration"]["Rules"][0]
    assert lifecycle["ExpirationInDays"] >= 7 * 365
    trail_policy = json.dumps(props(template, "TrailBucketPolicy")["PolicyDocument"])
    assert "aws:SourceArn" in trail_policy and "cloudtrail.amazonaws.com" in trail_policy


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_access_logs_delivered_by_the_logging_service_held_to_this_account(env_name):
    template = primary(env_name)
    delivery = next(s for s in statements(props(template, "AccessLogBucketPolicy")["PolicyDocument"])
                    if s["Effect"] == "Allow")
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert "aws:SourceAccount" in delivery["Condition"]["StringEquals"]
    sources = delivery["Condition"]["ArnLike"]["aws:SourceArn"]
    logged = {name for name, b in resources(template, "AWS::S3::Bucket").items() if "LoggingConfiguration" in b["Properties"]}
    assert {s["Fn::GetAtt"][0] for s in sources} == logged


# --- object lock ---------------------------------------------------------------------------

def test_object_lock_default_retention_matches_retention_in_both_regions():
    governance = build_with("dev", object_lock_mode="governance")
    for template, bucket, mode, *days in ((primary("prod"), "BackupBucket", "COMPLIANCE"),
                                   (disaster_recovery("prod"), "VaultBucket", "COMPLIANCE", 61),
                                   (governance[0], "BackupBucket", "GOVERNANCE"),
                                   (governance[1], "ReplicaBucket", "GOVERNANCE")):
        p = props(template, bucket)
        assert p["ObjectLockEnabled"] is True
        assert p["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": mode, "Days": (days or [60])[0]}
    # Without a mode, Object Lock is on (Control Tower's CT.S3.PR.9) with no default retention.
    assert props(primary("dev"), "BackupBucket")["ObjectLockEnabled"] is True
    assert "ObjectLockConfiguration" not in props(primary("dev"), "BackupBucket")


def test_client_reports_and_audit_logs_are_never_locked_by_default():
    """Object Lock is enabled on them (CT.S3.PR.9) but no default retention: a client may still
    delete a report's versions, and the lock of backups is no reason to lock anything else."""
    for bucket in ("SourceBucket", "TrailBucket"):
        p = props(primary("prod"), bucket)
        assert p["ObjectLockEnabled"] is True and "ObjectLockConfiguration" not in p, bucket


def test_source_bucket_created_only_when_none_is_named():
    assert "SourceBucket" in primary("dev")["Resources"]
    template, _ = build_with("dev", source_bucket="existing-client-reports")
    assert "SourceBucket" not in template["Resources"]
    assert template["Outputs"]["SourceBucketName"]["Value"] == "existing-client-reports"
    worker = json.dumps(props(template, "WorkerFunctionRole"))
    assert "arn:${AWS::Partition}:s3:::existing-client-reports" in worker


# --- deletes, restore access, confused deputies ------------------------------------------

@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_only_the_pruner_and_root_may_delete_backups_and_only_root_deletes_versions(env_name):
    for template, policy, deleters in ((primary(env_name), "BackupBucketPolicy", {"PrunerFunctionRole"}),
                                       (replica(env_name), "ReplicaBucketPolicy", set())):
        by_sid = {s["Sid"]: s for s in statements(props(template, policy)["PolicyDocument"])}
        deletes = by_sid["OnlyTheCollectorDeletesBackups"]
        assert deletes["Effect"] == "Deny" and deletes["Action"] == ["s3:DeleteObject"] and deletes["Principal"] == "*"
        allowed = as_list(deletes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
        assert {a["Fn::GetAtt"][0] for a in allowed if "Fn::GetAtt" in a} == deleters
        assert {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"} in allowed
        versions = by_sid["NobodyDeletesBackupVersions"]
        assert versions["Action"] == ["s3:DeleteObjectVersion"]
        assert versions["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == {
            "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_restore_role_reads_backups_writes_only_into_the_source_bucket_and_cannot_delete(env_name):
    template = primary(env_name)
    actions = role_actions(template, "RestoreRole")
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt", "dynamodb:BatchGetItem"} <= actions
    assert not any(a.split(":")[1].startswith(("Delete", "Create")) for a in actions)
    document = props(template, "RestoreRole")["Policies"][0]["PolicyDocument"]
    # Its table writes start restores the stack runs: under restore keys only, never a backup's run.
    table_writes = [s for s in statements(document)
                    if any(a in ("dynamodb:PutItem", "dynamodb:UpdateItem") for a in as_list(s["Action"]))]
    assert [s["Sid"] for s in table_writes] == ["StartRestores"]
    assert table_writes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["R*"]}}
    writes = [s for s in statements(document) if any(a.startswith("s3:Put") for a in as_list(s["Action"]))]
    assert [s["Sid"] for s in writes] == ["RestoreIntoSourceBucket"]
    assert json.dumps(writes[0]["Resource"]) == json.dumps(
        [{"Fn::Sub": ["${BucketArn}/*", {"BucketArn": {"Fn::GetAtt": ["SourceBucket", "Arn"]}}]}])
    assert "RestoreRole" not in {f["Properties"]["Role"]["Fn::GetAtt"][0]
                                 for f in resources(template, "AWS::Lambda::Function").values()}
    assert "RestoreRoleArn" in template["Outputs"]


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_service_principals_are_held_to_this_account_everywhere(env_name):
    template = primary(env_name)
    for owner, document in policy_documents(template):
        if owner.endswith(".trust"):
            continue  # lambda.amazonaws.com / s3.amazonaws.com trust: the role is this account's
        for statement in statements(document):
            principal = statement.get("Principal")
            if isinstance(principal, dict) and "Service" in principal and statement["Effect"] == "Allow":
                conditions = json.dumps(statement.get("Condition", {}))
                assert any(k in conditions for k in ("aws:SourceAccount", "aws:SourceArn", "kms:EncryptionContext")), \
                    f"{owner}/{statement.get('Sid')}"
    for permission in resources(template, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert "SourceArn" in permission["Properties"]
