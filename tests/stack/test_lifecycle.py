"""Lifecycle rules against retention: no early-deletion charge, nothing small transitioned, no
expiry of content a kept snapshot still needs, and what deletes leave behind is cleaned up."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings, strategies as st

from backup_cfn import contract
from backup_cfn.config import load_environment
from backup_cfn.stack import storage

from template_helpers import primary, props, replica

# Minimum storage durations (days) that S3 bills for, by storage class.
MINIMUM_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30, "INTELLIGENT_TIERING": 0, "GLACIER_IR": 90,
                "GLACIER": 90, "DEEP_ARCHIVE": 180}


def rules_for(retention_days: int) -> list[dict]:
    env = dataclasses.replace(load_environment("dev"), retention_days=retention_days)
    return [r.to_dict() for r in storage.backup_lifecycle_rules(env, noncurrent_days=env.deleted_version_days)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=3650))
def test_no_transition_pays_an_early_deletion_charge(retention_days):
    # Content is deleted no earlier than `retention_days` after it was stored (the last snapshot
    # naming it must expire first); its days in a class after a transition must cover the minimum.
    for rule in rules_for(retention_days):
        for transition in rule.get("Transitions", []):
            days_in_class = retention_days - transition["TransitionInDays"]
            assert days_in_class >= MINIMUM_DAYS[transition["StorageClass"]], (retention_days, transition)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=3650))
def test_nothing_under_128_kib_is_transitioned_and_only_content_moves(retention_days):
    for rule in rules_for(retention_days):
        if rule.get("Transitions"):
            assert int(rule["ObjectSizeGreaterThan"]) >= 128 * 1024
            assert rule["Prefix"] == contract.CONTENT_PREFIX


def test_sixty_day_retention_moves_content_to_ia_at_day_30_and_never_to_glacier():
    transitions = [t for r in rules_for(60) for t in r.get("Transitions", [])]
    assert transitions == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert storage.content_transition_day(dataclasses.replace(load_environment("dev"), retention_days=59)) is None


def test_no_rule_expires_current_backups():
    # Only the garbage collector knows which content a kept snapshot references.
    for rule in props(primary("prod"), "BackupBucket")["LifecycleConfiguration"]["Rules"]:
        assert "ExpirationInDays" not in rule and "ExpirationDate" not in rule


def test_deleted_versions_delete_markers_and_uploads_are_cleaned_up():
    env = load_environment("prod")
    [cleanup] = [r for r in props(primary("prod"), "BackupBucket")["LifecycleConfiguration"]["Rules"]
                 if r["Id"] == "CleanUpDeletedVersionsAndUploads"]
    assert cleanup["NoncurrentVersionExpiration"] == {"NoncurrentDays": env.deleted_version_days}
    assert cleanup["ExpiredObjectDeleteMarker"] is True
    assert cleanup["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert cleanup["Prefix"] == ""
    # Effective retention of deleted data: retention + GC grace + the recovery window, not 2 x retention.
    assert env.deleted_version_days + contract.GC_GRACE_HOURS / 24 < env.retention_days


def test_replica_keeps_deleted_versions_for_the_retention_period():
    env = load_environment("prod")
    [cleanup] = [r for r in props(replica("prod"), "ReplicaBucket")["LifecycleConfiguration"]["Rules"]
                 if r["Id"] == "CleanUpDeletedVersionsAndUploads"]
    assert cleanup["NoncurrentVersionExpiration"] == {"NoncurrentDays": env.retention_days}
    assert cleanup["ExpiredObjectDeleteMarker"] is True


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 520), st.integers(0, 120), st.integers(0, 100), st.integers(1, 3650),
       st.sampled_from(["none", "governance", "compliance"]))
def test_longer_term_retention_changes_no_lifecycle_rule_or_lock(weekly, monthly, yearly, retention_days, lock):
    """The rules only lengthen lives: transitions stay free of early-deletion charges, nothing
    current expires, and Object Lock's default retention stays retention_days (docs/lifecycle.md)."""
    base = dataclasses.replace(load_environment("dev"), retention_days=retention_days, object_lock_mode=lock)
    longer = dataclasses.replace(base, keep_weekly=weekly, keep_monthly=monthly, keep_yearly=yearly)
    for noncurrent in (base.deleted_version_days, base.retention_days):
        assert ([r.to_dict() for r in storage.backup_lifecycle_rules(longer, noncurrent)]
                == [r.to_dict() for r in storage.backup_lifecycle_rules(base, noncurrent)])
    locked = storage.object_lock(longer, default_retention=True)
    assert {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in locked.items()} == \
        {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in storage.object_lock(base, default_retention=True).items()}
    if lock != "none":
        assert locked["ObjectLockConfiguration"].to_dict()["Rule"]["DefaultRetention"]["Days"] == retention_days
