"""The emulator's Object Lock, lifecycle and S3 clock (backup_cfn/local/patches/s3_objectlock.py),
each driven through the AWS API and held to what the S3 documentation says."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from backup_cfn import aws
from backup_cfn.local.s3_control import run_lifecycle, set_s3_clock

UTC = timezone.utc
ACCOUNT = "123456789012"


@pytest.fixture
def s3(local_env):
    return aws.client(local_env, "s3")


def _locked_bucket(s3, name: str, mode: str = "COMPLIANCE", days: int = 10) -> str:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    return name


def test_a_cloudformation_bucket_gets_its_versioning_lock_and_lifecycle(local_env):
    template = {"Resources": {"Locked": {"Type": "AWS::S3::Bucket", "Properties": {
        "BucketName": "locked-by-cloudformation", "VersioningConfiguration": {"Status": "Enabled"},
        "ObjectLockEnabled": True, "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled", "Rule": {
            "DefaultRetention": {"Mode": "COMPLIANCE", "Days": 5}}},
        "LifecycleConfiguration": {"Rules": [{"Id": "Expire", "Status": "Enabled", "Prefix": "",
                                              "ExpirationInDays": 5}]}}}}}
    aws.client(local_env, "cloudformation").create_stack(StackName="locked", TemplateBody=json.dumps(template))
    s3 = aws.client(local_env, "s3")
    assert s3.get_bucket_versioning(Bucket="locked-by-cloudformation")["Status"] == "Enabled"
    retention = s3.get_object_lock_configuration(Bucket="locked-by-cloudformation")["ObjectLockConfiguration"]["Rule"][
        "DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 5)
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket="locked-by-cloudformation")["Rules"]
    assert rule["Expiration"] == {"Days": 5}


def test_retention_is_read_and_a_compliance_lock_only_ever_grows(s3):
    bucket = _locked_bucket(s3, "compliance")
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    retention = s3.get_object_retention(Bucket=bucket, Key="k", VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    until = retention["RetainUntilDate"]
    for refused in ({"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(days=1)},
                    {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)}):
        with pytest.raises(ClientError) as error:
            s3.put_object_retention(Bucket=bucket, Key="k", VersionId=version, Retention=refused)
        assert error.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as error:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert error.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_object_retention(Bucket=bucket, Key="k", VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + timedelta(days=3)})
    assert s3.get_object_retention(Bucket=bucket, Key="k", VersionId=version)["Retention"]["RetainUntilDate"] \
        == until + timedelta(days=3)


def test_a_governance_lock_is_shortened_only_with_the_bypass(s3):
    bucket = _locked_bucket(s3, "governance", mode="GOVERNANCE")
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    until = s3.get_object_retention(Bucket=bucket, Key="k", VersionId=version)["Retention"]["RetainUntilDate"]
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": until - timedelta(days=5)}
    with pytest.raises(ClientError):
        s3.put_object_retention(Bucket=bucket, Key="k", VersionId=version, Retention=shorter)
    s3.put_object_retention(Bucket=bucket, Key="k", VersionId=version, Retention=shorter, BypassGovernanceRetention=True)
    assert s3.get_object_retention(Bucket=bucket, Key="k", VersionId=version)["Retention"]["RetainUntilDate"] < until


def test_an_unlocked_version_has_no_retention(s3):
    s3.create_bucket(Bucket="plain", ObjectLockEnabledForBucket=True)
    version = s3.put_object(Bucket="plain", Key="k", Body=b"x")["VersionId"]
    with pytest.raises(ClientError) as error:
        s3.get_object_retention(Bucket="plain", Key="k", VersionId=version)
    assert error.value.response["Error"]["Code"] == "NoSuchObjectLockConfiguration"


def test_s3s_clock_dates_new_objects_and_their_default_lock(local_env, s3):
    bucket = _locked_bucket(s3, "clocked", days=10)
    then = datetime(2026, 1, 1, 12, tzinfo=UTC)
    set_s3_clock(local_env.endpoint_url, then)
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=version)
    assert abs(head["LastModified"] - then) < timedelta(seconds=5)
    assert abs(head["ObjectLockRetainUntilDate"] - (then + timedelta(days=10))) < timedelta(seconds=5)


def test_lifecycle_marks_locked_objects_and_removes_only_unlocked_versions(local_env, s3):
    """S3 User Guide: an Expiration action adds a delete marker (also on a locked object);
    NoncurrentVersionExpiration removes a version the days after it became noncurrent, counted to
    the next midnight UTC, but "a locked version of an object can't be deleted by an S3 Lifecycle
    expiration policy"; a delete marker with no version left is removed (ExpiredObjectDeleteMarker)."""
    bucket = _locked_bucket(s3, "aging", days=3)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "Expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
        {"ID": "Clean", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"ExpiredObjectDeleteMarker": True},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    set_s3_clock(local_env.endpoint_url, start)
    short = s3.put_object(Bucket=bucket, Key="short", Body=b"s")["VersionId"]
    held = s3.put_object(Bucket=bucket, Key="held", Body=b"h")["VersionId"]
    s3.put_object_retention(Bucket=bucket, Key="held", VersionId=held,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": start + timedelta(days=30)})
    set_s3_clock(local_env.endpoint_url, start + timedelta(days=2))
    assert run_lifecycle(local_env.endpoint_url, ACCOUNT, bucket)["delete_markers_added"] == 2
    set_s3_clock(local_env.endpoint_url, start + timedelta(days=5))
    done = run_lifecycle(local_env.endpoint_url, ACCOUNT, bucket)
    # short's version went, then its marker, left alone; held stays under its delete marker.
    assert (done["versions_removed"], done["markers_removed"]) == (1, 1) and done["locked_kept"] >= 1
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listed.get("Versions", [])] == [held]
    assert [m["Key"] for m in listed.get("DeleteMarkers", [])] == ["held"]
    assert short not in [v["VersionId"] for v in listed.get("Versions", [])]
