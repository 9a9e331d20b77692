"""The emulator's S3 replication (backup_cfn/local/patches/replication.py, docs/emulator.md), driven
through the S3 API and checked against AWS's documented behaviour (Amazon S3 User Guide):
"Replicating objects within and across Regions" (replication.html), "Replication configuration"
(replication-add-config.html), "What does Amazon S3 replicate?" (replication-what-is-isnot-
replicated.html), "Replicating delete markers between buckets" (delete-marker-replication.html),
"Replicating encrypted objects" (replication-config-for-kms-objects.html), "Changing the replica
owner" (replication-change-owner.html), "Getting replication status information"
(replication-status.html), "Replicating metadata changes with replica modification sync"
(replication-for-metadata-changes.html). No test sleeps: each waits for the emulator to catch up
(server.wait_for_replication), or pauses it to see what is still PENDING."""
from __future__ import annotations

import datetime
import hashlib
import base64

import boto3
import pytest
from botocore.exceptions import ClientError

from backup_cfn import aws
from backup_cfn.errors import UserError
from backup_cfn.local import server

ROLE = "arn:aws:iam::123456789012:role/replication"
PRIMARY, OTHER_REGION = "us-east-1", "us-west-2"
VAULT_ACCOUNT = "222233334444"


def _s3(env, region: str = PRIMARY):
    return aws.client(env, "s3", region)


def _vault(env, service: str, region: str = OTHER_REGION):
    """A client in another account, as moto 5.2.5 tells accounts apart in server mode: by the
    access key, here one that AssumeRole issued for a role of that account."""
    credentials = aws.client(env, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{VAULT_ACCOUNT}:role/vault-admin", RoleSessionName="test")["Credentials"]
    return boto3.client(service, region_name=region, endpoint_url=env.endpoint_url,
                        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def _bucket(s3, name: str, *, versioned: bool = True, lock: dict | None = None) -> str:
    region = s3.meta.region_name
    args = {"Bucket": name, "ObjectLockEnabledForBucket": lock is not None}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if lock:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": lock}})
    return name


def _rule(to: str, rule_id: str = "all", priority: int = 1, prefix: str = "", destination: dict | None = None,
          **extra) -> dict:
    return {"ID": rule_id, "Priority": priority, "Status": "Enabled", "Filter": {"Prefix": prefix},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{to}", **(destination or {})}, **extra}


def _replicate(s3, bucket: str, *rules: dict) -> None:
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": ROLE, "Rules": list(rules)})


def _source_and_replica(s3, replica_s3=None, **rule) -> None:
    """A versioned "source" bucket replicating everything to a versioned "replica" bucket."""
    _bucket(s3, "source")
    _bucket(replica_s3 or s3, "replica")
    _replicate(s3, "source", _rule("replica", **rule))


def _caught_up(env) -> dict:
    return server.wait_for_replication(env.endpoint_url, timeout=30)


def _status(s3, bucket: str, key: str, **version) -> str | None:
    return s3.head_object(Bucket=bucket, Key=key, **version).get("ReplicationStatus")


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _missing(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


# --- asynchronous, with its status ----------------------------------------------------------------

def test_a_new_version_is_pending_then_completed_and_its_replica_keeps_version_metadata_and_tags(local_env):
    s3, west = _s3(local_env), _s3(local_env, OTHER_REGION)
    _source_and_replica(s3, west)
    server.pause_replication(local_env.endpoint_url)
    put = s3.put_object(Bucket="source", Key="reports/q1.pdf", Body=b"q1", ContentType="application/pdf",
                        Metadata={"client": "0001"}, Tagging="kind=report")
    # The PUT has answered; the copy has not been made: it is asynchronous.
    assert _status(s3, "source", "reports/q1.pdf") == "PENDING"
    assert _missing(west, "replica", "reports/q1.pdf")
    server.pause_replication(local_env.endpoint_url, paused=False)
    figures = _caught_up(local_env)
    assert figures["completed"] == 1 and figures["failed"] == 0
    assert _status(s3, "source", "reports/q1.pdf") == "COMPLETED"
    source, replica = (s3.get_object(Bucket="source", Key="reports/q1.pdf"),
                       west.get_object(Bucket="replica", Key="reports/q1.pdf"))
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["Body"].read() == b"q1"
    assert replica["VersionId"] == put["VersionId"]  # "retain all metadata, such as ... version IDs"
    assert replica["LastModified"] == source["LastModified"]
    assert (replica["ContentType"], replica["Metadata"]) == ("application/pdf", {"client": "0001"})
    assert west.get_object_tagging(Bucket="replica", Key="reports/q1.pdf")["TagSet"] == [
        {"Key": "kind", "Value": "report"}]


def test_copies_and_multipart_uploads_are_replicated_like_puts(local_env):
    s3, west = _s3(local_env), _s3(local_env, OTHER_REGION)
    _source_and_replica(s3, west)
    s3.put_object(Bucket="source", Key="a", Body=b"a")
    s3.copy_object(Bucket="source", Key="b", CopySource={"Bucket": "source", "Key": "a"})
    upload = s3.create_multipart_upload(Bucket="source", Key="big")
    part = s3.upload_part(Bucket="source", Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    s3.complete_multipart_upload(Bucket="source", Key="big", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    _caught_up(local_env)
    assert _keys(west, "replica") == ["a", "b", "big"]
    assert west.get_object(Bucket="replica", Key="big")["Body"].read() == b"x" * 1024
    assert {_status(s3, "source", key) for key in ("a", "b", "big")} == {"COMPLETED"}


# --- which rule, which destination ---------------------------------------------------------------

def test_put_bucket_replication_needs_versioning_on_both_buckets(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "unversioned", versioned=False)
    _bucket(s3, "versioned")
    with pytest.raises(ClientError, match="Versioning must be 'Enabled' on the bucket"):
        _replicate(s3, "unversioned", _rule("versioned"))
    with pytest.raises(ClientError, match="Destination bucket must have versioning enabled") as refused:
        _replicate(s3, "versioned", _rule("unversioned"))
    assert refused.value.response["Error"]["Code"] == "InvalidRequest"


def test_get_bucket_replication_answers_the_rules_as_they_were_put(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "source")
    _bucket(s3, "replica")
    rules = [
        _rule("replica", "tagged", 2, DeleteMarkerReplication={"Status": "Disabled"},
              Filter={"And": {"Prefix": "tax/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}}),
        _rule("replica", "deletes", 1, prefix="docs/", DeleteMarkerReplication={"Status": "Enabled"},
              SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
              destination={"Account": "123456789012", "AccessControlTranslation": {"Owner": "Destination"},
                           "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-east-1:123456789012:key/k"},
                           "StorageClass": "STANDARD_IA"}),
    ]
    _replicate(s3, "source", *rules)
    assert s3.get_bucket_replication(Bucket="source")["ReplicationConfiguration"] == {"Role": ROLE, "Rules": rules}


def test_filters_choose_by_prefix_tags_or_both_and_disabled_rules_copy_nothing(local_env):
    s3 = _s3(local_env)
    for name in ("source", "by-prefix", "by-tag", "by-both", "disabled"):
        _bucket(s3, name)
    _replicate(s3, "source",
               _rule("by-prefix", "prefix", 1, prefix="tax/"),
               _rule("by-tag", "tag", 2, Filter={"Tag": {"Key": "copy", "Value": "yes"}}),
               _rule("by-both", "both", 3, Filter={"And": {"Prefix": "tax/", "Tags": [{"Key": "copy", "Value": "yes"}]}}),
               {**_rule("disabled", "off", 4), "Status": "Disabled"})
    s3.put_object(Bucket="source", Key="tax/1", Body=b"1")
    s3.put_object(Bucket="source", Key="tax/2", Body=b"2", Tagging="copy=yes")
    s3.put_object(Bucket="source", Key="misc/3", Body=b"3", Tagging="copy=yes")
    s3.put_object(Bucket="source", Key="misc/4", Body=b"4", Tagging="copy=no")
    _caught_up(local_env)
    assert _keys(s3, "by-prefix") == ["tax/1", "tax/2"]
    assert _keys(s3, "by-tag") == ["misc/3", "tax/2"]
    assert _keys(s3, "by-both") == ["tax/2"]
    assert _keys(s3, "disabled") == []
    # "Amazon S3 returns the x-amz-replication-status header if the object ... is eligible for replication."
    assert _status(s3, "source", "misc/4") is None


def test_overlapping_rules_to_one_destination_the_highest_priority_applies_and_each_destination_gets_a_copy(local_env):
    s3 = _s3(local_env)
    for name in ("source", "replica", "second"):
        _bucket(s3, name)
    # replication-add-config.html, "two rules with overlapping prefixes, star and starship".
    _replicate(s3, "source",
               _rule("replica", "star", 1, prefix="star", destination={"StorageClass": "STANDARD_IA"}),
               _rule("replica", "starship", 2, prefix="starship", destination={"StorageClass": "ONEZONE_IA"}),
               _rule("second", "everything", 3))
    server.pause_replication(local_env.endpoint_url)
    s3.put_object(Bucket="source", Key="starship-x", Body=b"x")
    s3.put_object(Bucket="source", Key="start", Body=b"s")
    assert _status(s3, "source", "starship-x") == "PENDING"
    server.pause_replication(local_env.endpoint_url, paused=False)
    _caught_up(local_env)
    assert s3.head_object(Bucket="replica", Key="starship-x")["StorageClass"] == "ONEZONE_IA"
    assert s3.head_object(Bucket="replica", Key="start")["StorageClass"] == "STANDARD_IA"
    assert _keys(s3, "second") == ["starship-x", "start"]
    assert _status(s3, "source", "starship-x") == "COMPLETED"  # only when every destination has it


def test_a_version_is_failed_when_any_destination_cannot_take_it(local_env):
    s3 = _s3(local_env)
    for name in ("source", "good", "elsewhere"):
        _bucket(s3, name)
    _replicate(s3, "source", _rule("good", "good", 1),
               _rule("elsewhere", "wrong-account", 2, destination={"Account": VAULT_ACCOUNT}),
               _rule("gone", "no-bucket", 3))
    s3.put_object(Bucket="source", Key="a", Body=b"a")
    figures = _caught_up(local_env)
    assert _status(s3, "source", "a") == "FAILED"
    assert _keys(s3, "good") == ["a"] and _keys(s3, "elsewhere") == []
    assert figures["failed"] == 1
    assert any("belongs to account 123456789012, not to the rule's Account 222233334444" in f for f in figures["failures"])
    assert any("the destination bucket does not exist" in f for f in figures["failures"])


# --- deletes ---------------------------------------------------------------------------------------

def test_delete_markers_reach_the_destination_only_where_delete_marker_replication_is_enabled(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "source")
    _bucket(s3, "replica")
    _replicate(s3, "source", _rule("replica", "kept", 1, prefix="kept/"),
               _rule("replica", "mirrored", 2, prefix="mirrored/", DeleteMarkerReplication={"Status": "Enabled"}))
    for key in ("kept/a", "mirrored/b"):
        s3.put_object(Bucket="source", Key=key, Body=b"v1")
    _caught_up(local_env)
    s3.delete_objects(Bucket="source", Delete={"Objects": [{"Key": "kept/a"}]})
    marker = s3.delete_object(Bucket="source", Key="mirrored/b")
    _caught_up(local_env)
    assert s3.get_object(Bucket="replica", Key="kept/a")["Body"].read() == b"v1"
    assert _missing(s3, "replica", "mirrored/b")
    replica_markers = s3.list_object_versions(Bucket="replica")["DeleteMarkers"]
    assert [(m["Key"], m["VersionId"]) for m in replica_markers] == [("mirrored/b", marker["VersionId"])]


def test_deleting_a_version_is_never_replicated(local_env):
    s3 = _s3(local_env)
    _source_and_replica(s3, DeleteMarkerReplication={"Status": "Enabled"})
    put = s3.put_object(Bucket="source", Key="a", Body=b"v1")
    _caught_up(local_env)
    s3.delete_object(Bucket="source", Key="a", VersionId=put["VersionId"])
    _caught_up(local_env)
    assert _missing(s3, "source", "a")
    assert s3.get_object(Bucket="replica", Key="a", VersionId=put["VersionId"])["Body"].read() == b"v1"


# --- another account, its key, its retention ------------------------------------------------------

def test_cross_account_replication_into_a_vault_owned_and_encrypted_by_the_vault_account(local_env):
    s3, vault_s3, vault_kms = _s3(local_env), _vault(local_env, "s3"), _vault(local_env, "kms")
    assert _vault(local_env, "sts").get_caller_identity()["Account"] == VAULT_ACCOUNT
    source_key = aws.client(local_env, "kms").create_key()["KeyMetadata"]["Arn"]
    vault_key = vault_kms.create_key()["KeyMetadata"]["Arn"]
    _bucket(s3, "prod-backups")
    s3.put_bucket_encryption(Bucket="prod-backups", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": source_key},
        "BucketKeyEnabled": True}]})
    _bucket(vault_s3, "vault", lock={"Mode": "COMPLIANCE", "Days": 30})
    assert "vault" in [b["Name"] for b in vault_s3.list_buckets()["Buckets"]]
    assert "vault" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    _replicate(s3, "prod-backups", _rule(
        "vault", SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        destination={"Account": VAULT_ACCOUNT, "AccessControlTranslation": {"Owner": "Destination"},
                     "EncryptionConfiguration": {"ReplicaKmsKeyID": vault_key}}))
    s3.put_object(Bucket="prod-backups", Key="manifests/client-0001", Body=b"m", GrantRead='id="someone-else"')
    s3.delete_object(Bucket="prod-backups", Key="manifests/client-0001")
    _caught_up(local_env)

    replica = vault_s3.head_object(Bucket="vault", Key="manifests/client-0001")  # the delete stayed home
    assert replica["ReplicationStatus"] == "REPLICA"
    assert (replica["ServerSideEncryption"], replica["SSEKMSKeyId"]) == ("aws:kms", vault_key)
    assert replica["BucketKeyEnabled"] is True
    # No retention on the source object: the vault's default retention applies to the replica.
    assert replica["ObjectLockMode"] == "COMPLIANCE"
    expected = replica["LastModified"] + datetime.timedelta(days=30)
    assert abs(replica["ObjectLockRetainUntilDate"] - expected) < datetime.timedelta(seconds=1)
    # Owner override: the source's ACL is not replicated; the vault's owner has full control.
    grants = vault_s3.get_object_acl(Bucket="vault", Key="manifests/client-0001")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]


def test_the_replica_key_must_be_usable_and_sse_kms_objects_need_the_opt_in(local_env):
    s3, west, west_kms = _s3(local_env), _s3(local_env, OTHER_REGION), aws.client(local_env, "kms", OTHER_REGION)
    source_key = aws.client(local_env, "kms").create_key()["KeyMetadata"]["Arn"]
    disabled_key = west_kms.create_key()["KeyMetadata"]
    west_kms.disable_key(KeyId=disabled_key["KeyId"])  # moto 5.2.5's DisableKey takes no ARN
    disabled = disabled_key["Arn"]
    for name in ("source", "opted-out"):
        _bucket(s3, name)
    _bucket(west, "replica")
    _replicate(s3, "source",
               _rule("replica", "kms", 1, prefix="kms/", SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                     destination={"EncryptionConfiguration": {"ReplicaKmsKeyID": disabled}}),
               _rule("opted-out", "plain", 2, prefix="plain/"))
    s3.put_object(Bucket="source", Key="kms/a", Body=b"a", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    s3.put_object(Bucket="source", Key="plain/b", Body=b"b", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    figures = _caught_up(local_env)
    # "If you use a KMS key that isn't valid, you will receive the HTTP 200 OK ... but replication fails."
    assert _status(s3, "source", "kms/a") == "FAILED" and _keys(west, "replica") == []
    assert any(f"the replica KMS key {disabled} is Disabled" in f for f in figures["failures"])
    # "By default, Amazon S3 doesn't replicate objects that are stored at rest by using SSE-KMS."
    assert _status(s3, "source", "plain/b") is None and _keys(s3, "opted-out") == []


def test_sse_s3_stays_sse_s3_and_unencrypted_objects_take_the_destination_default(local_env):
    s3, west, west_kms = _s3(local_env), _s3(local_env, OTHER_REGION), aws.client(local_env, "kms", OTHER_REGION)
    replica_key = west_kms.create_key()["KeyMetadata"]["Arn"]
    _source_and_replica(s3, west)
    west.put_bucket_encryption(Bucket="replica", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": replica_key},
        "BucketKeyEnabled": True}]})
    s3.put_object(Bucket="source", Key="sse-s3", Body=b"a", ServerSideEncryption="AES256")
    s3.put_object(Bucket="source", Key="plain", Body=b"b")
    _caught_up(local_env)
    assert west.head_object(Bucket="replica", Key="sse-s3")["ServerSideEncryption"] == "AES256"
    plain = west.head_object(Bucket="replica", Key="plain")
    assert (plain["ServerSideEncryption"], plain["SSEKMSKeyId"], plain["BucketKeyEnabled"]) == ("aws:kms", replica_key, True)


def test_object_lock_settings_of_the_source_override_the_destination_default(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "source", lock={"Mode": "GOVERNANCE", "Days": 5})
    _bucket(s3, "replica", lock={"Mode": "COMPLIANCE", "Days": 1})
    _bucket(s3, "unlocked")
    _replicate(s3, "source", _rule("replica", "locked", 1, prefix="a"), _rule("unlocked", "unlocked", 2, prefix="b"))
    until = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(Bucket="source", Key="a-default", Body=b"1", ContentMD5=_md5(b"1"))
    s3.put_object(Bucket="source", Key="a-held", Body=b"2", ContentMD5=_md5(b"2"), ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket="source", Key="b", Body=b"3", ContentMD5=_md5(b"3"))
    _caught_up(local_env)
    source, replica = (s3.head_object(Bucket="source", Key="a-default"), s3.head_object(Bucket="replica", Key="a-default"))
    assert (replica["ObjectLockMode"], replica["ObjectLockRetainUntilDate"]) == (
        "GOVERNANCE", source["ObjectLockRetainUntilDate"])
    held = s3.head_object(Bucket="replica", Key="a-held")
    assert (held["ObjectLockMode"], held["ObjectLockRetainUntilDate"], held["ObjectLockLegalHoldStatus"]) == (
        "COMPLIANCE", until, "ON")
    # "If the source bucket has S3 Object Lock enabled, the destination buckets must also have" it.
    assert _status(s3, "source", "b") == "FAILED" and _keys(s3, "unlocked") == []


# --- metadata changes, chains, replica modification sync ------------------------------------------

def test_metadata_changes_follow_and_replicas_are_not_replicated_again(local_env):
    s3 = _s3(local_env)
    for name in ("bucket-a", "bucket-b", "bucket-c"):
        _bucket(s3, name)
    _replicate(s3, "bucket-a", _rule("bucket-b"))
    _replicate(s3, "bucket-b", _rule("bucket-c"))
    s3.put_object(Bucket="bucket-a", Key="from-a", Body=b"1", Tagging="v=1")
    s3.put_object(Bucket="bucket-b", Key="written-to-b", Body=b"2")
    _caught_up(local_env)
    # "objects in bucket B that are replicas of objects in bucket A are not replicated to bucket C".
    assert _keys(s3, "bucket-b") == ["from-a", "written-to-b"] and _keys(s3, "bucket-c") == ["written-to-b"]
    server.pause_replication(local_env.endpoint_url)
    s3.put_object_tagging(Bucket="bucket-a", Key="from-a", Tagging={"TagSet": [{"Key": "v", "Value": "2"}]})
    assert _status(s3, "bucket-a", "from-a") == "PENDING"
    server.pause_replication(local_env.endpoint_url, paused=False)
    _caught_up(local_env)
    assert _status(s3, "bucket-a", "from-a") == "COMPLETED"
    assert s3.get_object_tagging(Bucket="bucket-b", Key="from-a")["TagSet"] == [{"Key": "v", "Value": "2"}]
    # A change made to the replica does not go back without replica modification sync.
    s3.put_object_tagging(Bucket="bucket-b", Key="from-a", Tagging={"TagSet": [{"Key": "v", "Value": "3"}]})
    _caught_up(local_env)
    assert s3.get_object_tagging(Bucket="bucket-a", Key="from-a")["TagSet"] == [{"Key": "v", "Value": "2"}]


def test_replica_modification_sync_sends_a_replicas_metadata_back_but_never_the_object(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "left")
    _bucket(s3, "right")
    sync = {"SourceSelectionCriteria": {"ReplicaModifications": {"Status": "Enabled"}}}
    _replicate(s3, "left", _rule("right", **sync))
    _replicate(s3, "right", _rule("left", **sync))
    put = s3.put_object(Bucket="left", Key="k", Body=b"1")
    _caught_up(local_env)
    assert len(s3.list_object_versions(Bucket="left")["Versions"]) == 1  # the replica in right came not back
    server.pause_replication(local_env.endpoint_url)
    s3.put_object_tagging(Bucket="right", Key="k", Tagging={"TagSet": [{"Key": "by", "Value": "right"}]})
    assert _status(s3, "right", "k") == "PENDING"
    server.pause_replication(local_env.endpoint_url, paused=False)
    _caught_up(local_env)
    assert _status(s3, "right", "k") == "REPLICA"
    assert s3.get_object_tagging(Bucket="left", Key="k", VersionId=put["VersionId"])["TagSet"] == [
        {"Key": "by", "Value": "right"}]


# --- the emulator's own controls ------------------------------------------------------------------

def test_a_reset_forgets_what_was_queued(local_env):
    s3 = _s3(local_env)
    _source_and_replica(s3)
    server.pause_replication(local_env.endpoint_url)
    s3.put_object(Bucket="source", Key="a", Body=b"a")
    server.reset(local_env.endpoint_url)
    figures = _caught_up(local_env)
    assert (figures["pending"], figures["paused"], figures["completed"]) == (0, False, 0)


def test_waiting_on_paused_replication_says_so(local_env):
    s3 = _s3(local_env)
    _source_and_replica(s3)
    server.pause_replication(local_env.endpoint_url)
    s3.put_object(Bucket="source", Key="a", Body=b"a")
    with pytest.raises(UserError, match="the emulator's replication is paused: 1 pending"):
        server.wait_for_replication(local_env.endpoint_url, timeout=5)
    server.pause_replication(local_env.endpoint_url, paused=False)
    assert _caught_up(local_env)["completed"] == 1


# --- buckets deployed by CloudFormation (s3.patch_bucket_properties) ------------------------------

def _stack_template(prefix: str) -> str:
    import json

    return json.dumps({"Resources": {
        "Vault": {"Type": "AWS::S3::Bucket", "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"}, "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 7}}},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "Tags": [{"Key": "Project", "Value": "backup-cfn"}]}},
        "Primary": {"Type": "AWS::S3::Bucket", "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"}, "ObjectLockEnabled": True,
            "Tags": [{"Key": "Project", "Value": "backup-cfn"}],
            "ReplicationConfiguration": {"Role": ROLE, "Rules": [{
                "Id": "Everything", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": prefix},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": {"Fn::GetAtt": ["Vault", "Arn"]}}}]}}},
    }, "Outputs": {"Primary": {"Value": {"Ref": "Primary"}}, "Vault": {"Value": {"Ref": "Vault"}}}})


def test_a_deployed_bucket_gets_its_templates_versioning_object_lock_ownership_and_replication(local_env):
    cfn, s3 = aws.client(local_env, "cloudformation"), _s3(local_env)
    cfn.create_stack(StackName="buckets", TemplateBody=_stack_template(""))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="buckets")["Stacks"][0]["Outputs"]}
    primary, vault = outputs["Primary"], outputs["Vault"]
    assert s3.get_bucket_versioning(Bucket=vault)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=vault)["ObjectLockConfiguration"]
    assert (lock["ObjectLockEnabled"], lock["Rule"]["DefaultRetention"]["Mode"], lock["Rule"]["DefaultRetention"]["Days"]) == (
        "Enabled", "COMPLIANCE", 7)
    assert s3.get_bucket_ownership_controls(Bucket=vault)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_object(Bucket=primary, Key="a", Body=b"a", ContentMD5=_md5(b"a"))
    _caught_up(local_env)
    assert s3.head_object(Bucket=vault, Key="a")["ReplicationStatus"] == "REPLICA"

    # An update (a bucket without a BucketName property) changes the rule in place.
    cfn.update_stack(StackName="buckets", TemplateBody=_stack_template("manifests/"))
    assert cfn.describe_stacks(StackName="buckets")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    rule = s3.get_bucket_replication(Bucket=primary)["ReplicationConfiguration"]["Rules"][0]
    assert (rule["ID"], rule["Filter"], rule["DeleteMarkerReplication"]) == (
        "Everything", {"Prefix": "manifests/"}, {"Status": "Enabled"})


def test_retention_changes_follow_but_never_shorten_a_replicas_lock(local_env):
    s3 = _s3(local_env)
    _bucket(s3, "source", lock={"Mode": "GOVERNANCE", "Days": 1})
    _bucket(s3, "replica", lock={"Mode": "GOVERNANCE", "Days": 1})
    _replicate(s3, "source", _rule("replica"))
    later, latest = (datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc),
                     datetime.datetime(2032, 1, 1, tzinfo=datetime.timezone.utc))
    s3.put_object(Bucket="source", Key="a", Body=b"a", ContentMD5=_md5(b"a"))
    _caught_up(local_env)
    s3.put_object_retention(Bucket="source", Key="a", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": latest})
    _caught_up(local_env)
    replica = s3.head_object(Bucket="replica", Key="a")
    assert (replica["ObjectLockMode"], replica["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", latest)
    # Shortening the source's compliance lock is refused, as Object Lock refuses it to everyone ("its
    # retention period can't be shortened"; patches/s3_objectlock.py), and the replica's stands.
    with pytest.raises(ClientError) as refused:
        s3.put_object_retention(Bucket="source", Key="a", BypassGovernanceRetention=True,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later})
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    _caught_up(local_env)
    assert s3.head_object(Bucket="source", Key="a")["ObjectLockRetainUntilDate"] == latest
    replica = s3.head_object(Bucket="replica", Key="a")
    assert (replica["ObjectLockMode"], replica["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", latest)
