"""What the emulator's replication writes in a destination bucket (patches/replication.py runs it),
following the Amazon S3 User Guide:

- "What does Amazon S3 replicate?" (replication-what-is-isnot-replicated.html): the object with
  its metadata, tags and ACL, keeping its version ID and creation time ("Replicate objects while
  retaining metadata", replication.html); its Object Lock retention, which overrides the
  destination's default retention; without one, "the destination bucket's default retention
  period is applied to your object replicas". Replicas are never replicated again: they are not
  written through the requests replication watches. Lifecycle actions are not replicated (moto
  runs none). Deleting a version (DELETE with a versionId) is never replicated; delete markers
  only where the rule says so (replication_rules).
- "Replicating encrypted objects" (replication-config-for-kms-objects.html): an SSE-KMS object is
  encrypted again with the rule's ReplicaKmsKeyID, a key in the destination's Region (an alias or
  key ID is resolved in the source bucket owner's account, as KMS resolves the requester's); "If
  you use a KMS key that isn't valid ... replication fails". SSE-S3 stays SSE-S3; an unencrypted
  object takes the destination's default encryption ("How default bucket encryption affects
  replication"), and an S3 Bucket Key setting is kept ("Using an S3 Bucket Key with replication",
  bucket-key.html).
- "Changing the replica owner" (replication-change-owner.html): the source object's owner owns the
  replica and its ACL is replicated, unless AccessControlTranslation Owner=Destination or the
  destination's Object Ownership is BucketOwnerEnforced: then the destination bucket's owner owns
  it, with an ACL that grants that owner full control, and source ACL changes are not replicated.
- "Replication status information" (replication-status.html): a source version is PENDING until
  every destination has its replica, then COMPLETED, or FAILED if any could not be made (a missing
  or unversioned destination, a destination owned by another account than the rule's Account
  names, an unusable KMS key, a destination without Object Lock for a source bucket with it:
  "If the source bucket has S3 Object Lock enabled, the destination buckets must also have S3
  Object Lock enabled", replication.html); a replica is REPLICA, and PENDING while a replica
  modification syncs back ("Replicating metadata changes with replica modification sync",
  replication-for-metadata-changes.html).

moto keeps one owner ID for every account, so ownership here is the account whose backend a replica
belongs to (moto's FakeKey.account_id, where its tags are kept) and the ACL it carries.
IAM is not evaluated: the role in the configuration is not assumed (the permission conformance
test proves what it may do).
"""
from __future__ import annotations

import bisect
import copy
import datetime

from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeDeleteMarker, FakeKey, get_canned_acl, s3_backends

from backup_cfn.local.patches.replication_rules import KMS_ALGORITHMS, Rule, needs_tags

PENDING, COMPLETED, FAILED, REPLICA = "PENDING", "COMPLETED", "FAILED", "REPLICA"
_STATUS = "_backup_cfn_replication_status"


class InvalidRequest(S3ClientError):
    code = "InvalidRequest"

    def __init__(self, message: str):
        super().__init__("InvalidRequest", message)


class Failure(Exception):
    """Why one destination did not get its copy (the source version is then FAILED)."""


def status(obj) -> str | None:
    return getattr(obj, "__dict__", {}).get(_STATUS)


def set_status(obj, value: str) -> None:
    obj.__dict__[_STATUS] = value


def find_bucket(name: str):
    """The bucket called `name`, whichever account owns it (bucket names are global), or None."""
    found = s3_backends.bucket_accounts.get(name)
    if found is None:
        return None
    partition, account = found
    return s3_backends[account][partition].buckets.get(name)


def tags_of(key) -> dict[str, str]:
    tagger = s3_backends[key.account_id][key.partition].tagger
    return {tag["Key"]: tag["Value"] for tag in tagger.list_tags_for_resource(key.arn)["Tags"]}


def selection_facts(key, rules: tuple[Rule, ...]) -> tuple[dict[str, str], bool]:
    """(tags, SSE-KMS encrypted): what rule selection reads of a version (tags only when a rule
    filters on them: reading them costs a lookup per object)."""
    return (tags_of(key) if needs_tags(rules) else {}), key.encryption in KMS_ALGORITHMS


# --- the jobs the replicator runs: each returns its failures ---------------------------------------

def copy_version(source_bucket, version, chosen: list[Rule]) -> list[str]:
    failures = _each(chosen, lambda rule: _copy(source_bucket, version, rule))
    set_status(version, FAILED if failures else COMPLETED)
    return failures


def copy_delete_marker(source_bucket, marker, chosen: list[Rule]) -> list[str]:
    def copy_marker(rule: Rule) -> None:
        destination = _destination(rule)
        replica = FakeDeleteMarker(key=marker.key)
        replica._version_id, replica.last_modified = marker.version_id, marker.last_modified
        _insert(destination, replica)

    return _each(chosen, copy_marker)


def sync_metadata(source_bucket, version, chosen: list[Rule]) -> list[str]:
    """A replicated version's tags, ACL or Object Lock settings changed: its replicas follow."""
    failures = _each(chosen, lambda rule: _sync(version, rule))
    set_status(version, FAILED if failures else COMPLETED)
    return failures


def sync_replica_modification(bucket, replica, chosen: list[Rule]) -> list[str]:
    """A replica's metadata changed under a rule with ReplicaModifications: the version it was
    copied from (the same version ID in the rule's destination) follows."""
    failures = _each(chosen, lambda rule: _sync(replica, rule))
    set_status(replica, FAILED if failures else REPLICA)
    return failures


def _each(chosen: list[Rule], action) -> list[str]:
    failures = []
    for rule in chosen:
        try:
            action(rule)
        except (Failure, ValueError) as error:  # ValueError: the source version was deleted meanwhile
            failures.append(f"to {rule.destination.bucket} (rule {rule.id}): {error}")
    return failures


# --- one replica ---------------------------------------------------------------------------------

def _copy(source_bucket, version, rule: Rule) -> None:
    destination = _destination(rule)
    if source_bucket.object_lock_enabled and not destination.object_lock_enabled:
        raise Failure("the source bucket has Object Lock and the destination bucket has not")
    encryption, kms_key_id, bucket_key = _encryption(source_bucket, version, rule, destination)
    owned_by_destination = _owned_by_destination(rule, destination)
    lock_mode, lock_until = version.lock_mode, version.lock_until
    if not (lock_mode or lock_until) and destination.has_default_lock:
        lock_mode, lock_until = destination.default_lock_mode, _default_retain_until(destination, version.last_modified)
    replica = FakeKey(
        name=version.name, value=version.value, region_name=destination.region_name,
        account_id=destination.account_id if owned_by_destination else version.account_id,
        storage=rule.destination.storage_class or version.storage_class, etag=version._etag,
        is_versioned=True, version_id=version.version_id, bucket_name=destination.name,
        encryption=encryption, kms_key_id=kms_key_id, bucket_key_enabled=bucket_key,
        lock_mode=lock_mode, lock_legal_status=version.lock_legal_status, lock_until=lock_until,
        checksum_value=version.checksum_value, checksum_type=version.checksum_type,
        checksum_parts=version.checksum_parts,
    )
    replica.last_modified = version.last_modified
    replica.set_metadata(dict(version.metadata.items()))
    replica.checksum_algorithm = version.checksum_algorithm
    replica.website_redirect_location = version.website_redirect_location
    replica.set_acl(get_canned_acl("private") if owned_by_destination else copy.deepcopy(version.acl))
    set_status(replica, REPLICA)
    _put_tags(replica, destination, tags_of(version))
    _insert(destination, replica)


def _sync(changed, rule: Rule) -> None:
    destination = _destination(rule)
    target = next((v for v in destination.keys.getlist(changed.name, []) if v.version_id == changed.version_id), None)
    if not isinstance(target, FakeKey):
        raise Failure(f"version {changed.version_id} is not in the destination bucket")
    _put_tags(target, destination, tags_of(changed))
    if changed.lock_mode and changed.lock_until:  # a replica keeps the default retention it was given
        _lengthen_retention(target, changed.lock_mode, changed.lock_until)
    if changed.lock_legal_status is not None:
        target.lock_legal_status = changed.lock_legal_status
    if not _owned_by_destination(rule, destination):
        target.set_acl(copy.deepcopy(changed.acl))


def _lengthen_retention(target, mode: str, until: str) -> None:
    """Object Lock binds replication as it binds anyone ("Locking objects with Object Lock",
    object-lock-overview.html): a COMPLIANCE retention "can't be shortened" and its mode can't be
    changed; shortening a GOVERNANCE one takes s3:BypassGovernanceRetention and its header, which
    replication does not send. So a change only ever lengthens a replica's lock, or makes it
    COMPLIANCE."""
    current = _retain_until(target.lock_until) if target.lock_mode and target.lock_until else None
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    if current is None or current <= now:
        target.lock_mode, target.lock_until = mode, until
        return
    if _retain_until(until) > current:
        target.lock_until = until
    if mode == "COMPLIANCE":
        target.lock_mode = mode


def _retain_until(value: str) -> datetime.datetime:
    """moto keeps a retain-until date as a string, with or without fractions of a second."""
    return datetime.datetime.strptime(value.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")


def _destination(rule: Rule):
    destination = find_bucket(rule.destination.bucket)
    if destination is None:
        raise Failure("the destination bucket does not exist")
    if not destination.is_versioned:
        raise Failure("versioning is not enabled on the destination bucket")
    if rule.destination.account and rule.destination.account != destination.account_id:
        raise Failure(f"the destination bucket belongs to account {destination.account_id}, "
                      f"not to the rule's Account {rule.destination.account}")
    return destination


def _owned_by_destination(rule: Rule, destination) -> bool:
    return rule.destination.owner_override or destination.ownership_rule == "BucketOwnerEnforced"


def _encryption(source_bucket, version, rule: Rule, destination) -> tuple[str | None, str | None, object]:
    """(algorithm, KMS key ARN, S3 Bucket Key setting) of the replica."""
    if version.encryption in KMS_ALGORITHMS:
        if version.kms_key_id:
            source_key = _kms_key(version.kms_key_id, version.account_id, source_bucket.region_name, strict=False)
            if source_key is not None and source_key.key_state != "Enabled":
                raise Failure(f"the source object's KMS key {source_key.arn} is {source_key.key_state}")
        if not rule.destination.replica_kms_key_id:
            raise Failure("the rule has no ReplicaKmsKeyID for an SSE-KMS object")
        key = _kms_key(rule.destination.replica_kms_key_id, source_bucket.account_id, destination.region_name)
        if key.region != destination.region_name:
            raise Failure(f"the replica KMS key {key.arn} is not in the destination's Region {destination.region_name}")
        return version.encryption, key.arn, version.bucket_key_enabled
    if version.encryption:  # SSE-S3 or SSE-C: the same encryption
        return version.encryption, None, version.bucket_key_enabled
    if not destination.encryption:
        return None, None, None
    default = destination.encryption["Rule"]
    algorithm = default["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    key_id = default["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
    if key_id and algorithm in KMS_ALGORITHMS:
        key = _kms_key(key_id, destination.account_id, destination.region_name, strict=False)
        key_id = key.arn if key is not None else key_id
    return algorithm, key_id, default.get("BucketKeyEnabled")


def _kms_key(key_id: str, account: str, region: str, strict: bool = True):
    """moto's KMS key for a key ARN, alias ARN, alias name or key ID (the last two in `account` and
    `region`); strict: a missing or unusable key fails the replication."""
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:"):
        _, _, _, region, account = key_id.split(":")[:5]
    try:
        key = kms_backends[account][region].describe_key(key_id)
    except Exception:
        if strict:
            raise Failure(f"the KMS key {key_id} does not exist in account {account}, Region {region}")
        return None
    if strict and key.key_state != "Enabled":
        raise Failure(f"the replica KMS key {key.arn} is {key.key_state}")
    return key


def _default_retain_until(bucket, created: datetime.datetime) -> str:
    """Default retention counts from the object version's creation (Object Lock's "retain until
    date" is the version's creation time plus the period; a replica keeps its source's); moto
    counts a year as 365 days."""
    period = datetime.timedelta(days=(bucket.default_lock_days or 0) + 365 * (bucket.default_lock_years or 0))
    return (created + period).strftime("%Y-%m-%dT%H:%M:%SZ")


def _put_tags(key, destination, tags: dict[str, str]) -> None:
    """moto reads an object's tags from the backend of the account that asks; the replica's owner
    and the destination bucket's owner are the ones who do."""
    for account in {key.account_id, destination.account_id}:
        tagger = s3_backends[account][key.partition].tagger
        tagger.delete_all_tags_for_resource(key.arn)
        if tags:
            tagger.tag_resource(key.arn, [{"Key": k, "Value": v} for k, v in tags.items()])


def _insert(bucket, version) -> None:
    """Among the key's versions, in creation order (jobs run in order, but two requests for one key
    may have been queued in either order)."""
    versions = [v for v in bucket.keys.getlist(version.name, []) if v.version_id != version.version_id]
    times = [v.last_modified for v in versions]
    versions.insert(bisect.bisect_right(times, version.last_modified), version)
    bucket.keys.setlist(version.name, versions)
