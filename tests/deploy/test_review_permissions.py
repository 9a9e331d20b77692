"""IAM changes as permissions: gained and lost lines for roles, policies, bucket, key, queue and
topic policies; statements normalised so that form (single value or list, action case, order,
how statements are split) is no change, and only what is allowed, to whom, on what, when, is."""
from __future__ import annotations

from backup_cfn.deploy.changeset import Change
from backup_cfn.deploy.review.permissions import permission_changes


def change(resource_type: str, logical_id: str, action: str = "Modify") -> Change:
    return Change(action, logical_id, resource_type, "False", "", (), ("Properties",))


def resource(resource_type: str, properties: dict) -> dict:
    return {"Type": resource_type, "Properties": properties, "Raw": properties}


def role(*statements) -> dict:
    return resource("AWS::IAM::Role", {"Policies": [{"PolicyName": "p", "PolicyDocument": {
        "Version": "2012-10-17", "Statement": list(statements)}}]})


def texts(lines) -> list[str]:
    return [line.text for line in lines]


def test_the_same_permissions_written_differently_are_no_change():
    before = role({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"})
    after = resource("AWS::IAM::Role", {"Policies": [
        {"PolicyName": "renamed", "PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "S3:PUTOBJECT",
                                                                    "Resource": ["arn:aws:s3:::b/*"]}}},
        {"PolicyName": "second", "PolicyDocument": {"Statement": [{"Sid": "Split", "Effect": "Allow",
                                                                   "Action": "s3:getobject",
                                                                   "Resource": "arn:aws:s3:::b/*"}]}}]})
    assert permission_changes(change("AWS::IAM::Role", "WorkerFunctionRole"), before, after) == ()


def test_a_role_gains_and_loses_actions_grouped_by_resource():
    before = role({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/content/*"})
    after = role({"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::b/content/*"},
                 {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
                  "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}})
    assert texts(permission_changes(change("AWS::IAM::Role", "WorkerFunctionRole"), before, after)) == [
        "WorkerFunctionRole gains s3:DeleteObject on arn:aws:s3:::b/content/*",
        "WorkerFunctionRole gains kms:Decrypt on * when StringEquals(kms:ViaService, s3.us-east-1.amazonaws.com)",
        "WorkerFunctionRole loses s3:PutObject on arn:aws:s3:::b/content/*"]


def test_a_new_role_gains_everything_and_a_removed_one_loses_it_trust_and_managed_policies_included():
    new = resource("AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]},
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]})
    assert texts(permission_changes(change("AWS::IAM::Role", "PrunerFunctionRole", "Add"), None, new)) == [
        "PrunerFunctionRole gains managed policy arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "PrunerFunctionRole trust policy gains Allow Service lambda.amazonaws.com sts:AssumeRole"]
    assert [p.verb for p in permission_changes(change("AWS::IAM::Role", "PrunerFunctionRole", "Remove"), new, None)] \
        == ["loses", "loses"]


def test_a_bucket_policy_names_its_bucket_principals_and_conditions():
    statement = {"Sid": "DenyDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                 "Resource": {"Fn::Sub": "${BackupBucket.Arn}/*"},
                 "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["PrunerFunctionRole", "Arn"]}}}}
    before = resource("AWS::S3::BucketPolicy", {"Bucket": {"Ref": "BackupBucket"},
                                                "PolicyDocument": {"Statement": [statement]}})
    after = resource("AWS::S3::BucketPolicy", {"Bucket": {"Ref": "BackupBucket"}, "PolicyDocument": {"Statement": [
        statement, {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]},
                    "Action": ["s3:GetObject"], "Resource": {"Fn::Sub": "${BackupBucket.Arn}/*"}}]}})
    assert texts(permission_changes(change("AWS::S3::BucketPolicy", "BackupBucketPolicy"), before, after)) == [
        "BackupBucket bucket policy gains Allow AWS arn:aws:iam::111122223333:root s3:GetObject on "
        "${BackupBucket.Arn}/*"]
    removed = texts(permission_changes(change("AWS::S3::BucketPolicy", "BackupBucketPolicy"), after, before))
    assert removed == ["BackupBucket bucket policy loses Allow AWS arn:aws:iam::111122223333:root "
                       "s3:GetObject on ${BackupBucket.Arn}/*"]


def test_a_key_policy_change_is_read_as_the_key_gaining_or_losing_a_grant():
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*", "Resource": "*"}
    logs = {"Sid": "Logs", "Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}
    before = resource("AWS::KMS::Key", {"KeyPolicy": {"Statement": [root, logs]}})
    after = resource("AWS::KMS::Key", {"KeyPolicy": {"Statement": [root]}})
    assert texts(permission_changes(change("AWS::KMS::Key", "BackupKey"), before, after)) == [
        "BackupKey key policy loses Allow Service logs.us-east-1.amazonaws.com kms:Decrypt, kms:Encrypt on *"]


def test_queue_and_topic_policies_and_attached_policies_name_what_they_govern():
    document = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                               "Action": "sqs:SendMessage", "Resource": "*"}]}
    queue = resource("AWS::SQS::QueuePolicy", {"Queues": [{"Ref": "JobQueue"}], "PolicyDocument": document})
    assert texts(permission_changes(change("AWS::SQS::QueuePolicy", "JobQueuePolicy", "Add"), None, queue)) == [
        "JobQueue queue policy gains Allow Service events.amazonaws.com sqs:SendMessage on *"]
    attached = resource("AWS::IAM::Policy", {"Roles": [{"Ref": "ReplicationRole"}], "PolicyDocument": {
        "Statement": [{"Effect": "Allow", "Action": "s3:ReplicateObject", "Resource": "arn:aws:s3:::replica/*"}]}})
    assert texts(permission_changes(change("AWS::IAM::Policy", "ReplicationRolePolicy", "Add"), None, attached)) == [
        "ReplicationRole (through ReplicationRolePolicy) gains s3:ReplicateObject on arn:aws:s3:::replica/*"]
