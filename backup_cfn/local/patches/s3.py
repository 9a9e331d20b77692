"""S3 in the emulator (listed in docs/emulator.md): a bucket deployed by CloudFormation gets the
versioning, Object Lock, Object Ownership and replication its template gives it; ListObjectsV2
costs per page, as on AWS, not per key in the bucket.

moto 5.2.5 answers every ListObjectsV2 by copying the bucket's whole key dict, visiting every key,
sorting every match and then dropping all but one page. The engine lists one user's prefix per
job, so in the 1,000-user demo each listing walked the 12,000 keys of the source bucket: 11.6 ms of
CPU per call, 2,018 calls.
"""
from __future__ import annotations

import bisect
import threading

# One lock for every bucket's name index: a mutation of the key store and of its index, and a walk
# of the index, happen one at a time (moto's request threads share the stores).
_index_lock = threading.RLock()


def patch_bucket_properties() -> None:
    """moto 5.2.5 creates an AWS::S3::Bucket with its BucketEncryption and Tags only: its
    VersioningConfiguration, ObjectLockEnabled, ObjectLockConfiguration, OwnershipControls and
    ReplicationConfiguration are ignored, so a deployed stack's buckets were unversioned and
    replicated nothing; and an update of a bucket without a BucketName property fails
    (KeyError: 'BucketName'). Here each property takes effect on creation and on update, as through
    the S3 API (PutBucketVersioning, PutObjectLockConfiguration, PutBucketOwnershipControls,
    PutBucketReplication, which the replication patches check and act on); a ReplicationConfiguration
    removed by an update is deleted. Idempotent."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    if getattr(FakeBucket, "_backup_cfn_bucket_properties", False):
        return
    create, update = FakeBucket.create_from_cloudformation_json.__func__, FakeBucket.update_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _apply_bucket_properties(s3_backends[account_id][get_partition(region_name)], bucket,
                                 cloudformation_json.get("Properties", {}))
        return bucket

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        properties = {"BucketName": original_resource.name, **cloudformation_json.get("Properties", {})}
        bucket = update(cls, original_resource, new_resource_name, {**cloudformation_json, "Properties": properties},
                        account_id, region_name)
        _apply_bucket_properties(s3_backends[account_id][get_partition(region_name)], bucket, properties)
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    FakeBucket.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)
    FakeBucket._backup_cfn_bucket_properties = True


def _apply_bucket_properties(backend, bucket, properties: dict) -> None:
    from backup_cfn.local.patches.replication_rules import from_cloudformation

    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning:
        backend.put_bucket_versioning(bucket.name, versioning)
    lock = properties.get("ObjectLockConfiguration") or {}
    if properties.get("ObjectLockEnabled") in (True, "true", "True") or lock.get("ObjectLockEnabled") == "Enabled":
        # PutObjectLockConfiguration itself refuses a bucket with objects in moto 5.2.5, where AWS
        # allows it on any versioned bucket: set directly.
        bucket.object_lock_enabled, bucket.versioning_status = True, "Enabled"
        retention = lock.get("Rule", {}).get("DefaultRetention", {})
        bucket.default_lock_mode = retention.get("Mode") or ""
        bucket.default_lock_days = int(retention.get("Days", 0))
        bucket.default_lock_years = int(retention.get("Years", 0))
    ownership = (properties.get("OwnershipControls") or {}).get("Rules") or []
    if ownership:
        backend.put_bucket_ownership_controls(bucket.name, ownership[0]["ObjectOwnership"])
    if properties.get("ReplicationConfiguration"):
        backend.put_bucket_replication(bucket.name, from_cloudformation(properties["ReplicationConfiguration"]))
    elif getattr(bucket, "replication", None):
        backend.delete_bucket_replication(bucket.name)


def patch_list_index() -> None:
    """Each bucket's key store keeps a sorted list of its key names, in step with every mutation of
    the store; ListObjectsV2 walks it from a binary search for the Prefix (and StartAfter, or the
    continuation token's key) and stops after MaxKeys + 1 entries, skipping over each common
    prefix with another binary search: O(log n + page) instead of O(n log n).

    moto 5.2.5's answers are kept exactly, quirks included:
    - a key whose latest version is a delete marker is left out, but still makes its common prefix;
    - entries (keys and common prefixes together, in name order) are those whose name is greater
      than StartAfter or the token's key, so a common prefix at or before it is not repeated;
    - IsTruncated only when more than MaxKeys entries remain; NextContinuationToken is the MD5 of
      the page's last entry, registered in the backend's token table as moto does; MaxKeys=0 gives
      an empty page that is not truncated.
    A continuation token the server did not issue is refused as AWS refuses it (400 InvalidArgument,
    "The continuation token provided is incorrect"), where moto 5.2.5 fails with HTTP 500 (it
    compares key names with None). Anything else (a negative MaxKeys, a table bucket) goes to
    moto's own code, so its outcome is moto's. Idempotent."""
    from moto.s3 import models
    from moto.s3 import utils
    from moto.s3.exceptions import InvalidContinuationToken
    from moto.utilities.utils import md5_hash

    backend_class = models.S3Backend
    if getattr(backend_class, "_backup_cfn_list_index", False):
        return
    store_class = _indexed_key_store(utils._VersionedKeyStore)
    models._VersionedKeyStore = store_class  # FakeBucket.__init__ looks the name up in moto.s3.models
    utils._VersionedKeyStore = store_class
    original = backend_class.list_objects_v2
    fake_key, delete_marker, table_bucket = models.FakeKey, models.FakeDeleteMarker, models.FakeTableStorageBucket

    def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):
        keys = getattr(bucket, "keys", None)
        if (not isinstance(keys, store_class) or isinstance(bucket, table_bucket)
                or not isinstance(max_keys, int) or max_keys < 0):
            return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
        after = None
        if continuation_token:
            after = self._pagination_tokens.get(continuation_token)
            if not isinstance(after, str):
                raise InvalidContinuationToken()
        elif start_after:
            after = start_after
        if max_keys == 0:
            return [], False, None
        entries = _page(keys, prefix or "", delimiter, after, max_keys + 1, delete_marker)
        if len(entries) <= max_keys:
            return entries, False, None
        entries = entries[:max_keys]
        last = entries[-1]
        last_name = last.name if isinstance(last, fake_key) else last
        token = md5_hash(last_name.encode("utf-8")).hexdigest()
        self._pagination_tokens[token] = last_name
        return entries, True, token

    backend_class.list_objects_v2 = list_objects_v2
    backend_class._backup_cfn_list_index = True


def _page(keys, prefix: str, delimiter: str | None, after: str | None, limit: int, delete_marker: type) -> list:
    """Up to `limit` entries (latest key versions, and common prefixes as strings) in name order,
    under `prefix` and after `after`, as moto's listing would give them."""
    entries: list = []
    with _index_lock:
        names = keys.sorted_names()
        end = len(names)
        i = bisect.bisect_left(names, prefix)
        if after is not None:
            i = max(i, bisect.bisect_right(names, after))
        while i < end and len(entries) < limit:
            name = names[i]
            if not name.startswith(prefix):
                break
            rest = name[len(prefix):]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter)[0] + delimiter
                i = _end_of_prefix(names, folder, i + 1)
                if after is None or folder > after:
                    entries.append(folder)
                continue
            versions = dict.get(keys, name)
            i += 1
            if versions and not isinstance(versions[-1], delete_marker):
                entries.append(versions[-1])
    return entries


def _end_of_prefix(names: list[str], prefix: str, start: int) -> int:
    """The index after the last name starting with `prefix`, the names from `start - 1` on
    starting with it (they are contiguous in a sorted list)."""
    low, high = start, len(names)
    while low < high:
        middle = (low + high) // 2
        if names[middle].startswith(prefix):
            low = middle + 1
        else:
            high = middle
    return low


def _indexed_key_store(base: type) -> type:
    """moto's `_VersionedKeyStore` (a dict of key name -> versions) that also keeps its names
    sorted, through every way moto (or dict) changes it."""

    class IndexedKeyStore(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._names = sorted(dict.keys(self))

        def sorted_names(self) -> list[str]:
            names = self.__dict__.get("_names")
            if names is None:  # made without __init__ (a copy): index what it holds
                names = self._names = sorted(dict.keys(self))
            return names

        def _add(self, name: str) -> None:
            names = self.sorted_names()
            i = bisect.bisect_left(names, name)
            if i == len(names) or names[i] != name:
                names.insert(i, name)

        def _remove(self, name: str) -> None:
            names = self.sorted_names()
            i = bisect.bisect_left(names, name)
            if i < len(names) and names[i] == name:
                del names[i]

        def __setitem__(self, name, value):
            with _index_lock:
                super().__setitem__(name, value)
                self._add(name)

        def setlist(self, name, versions):
            with _index_lock:
                super().setlist(name, versions)
                self._add(name)

        def pop(self, name):  # _VersionedKeyStore.pop's signature
            with _index_lock:
                result = super().pop(name)
                self._remove(name)
                return result

        def __delitem__(self, name):
            with _index_lock:
                dict.__delitem__(self, name)
                self._remove(name)

        def popitem(self):
            with _index_lock:
                name, versions = dict.popitem(self)
                self._remove(name)
                return name, versions

        def setdefault(self, name, default=None):
            with _index_lock:
                result = dict.setdefault(self, name, default)
                self._add(name)
                return result

        def clear(self):
            with _index_lock:
                dict.clear(self)
                self._names = []

        def update(self, *args, **kwargs):
            with _index_lock:
                dict.update(self, *args, **kwargs)
                self._names = sorted(dict.keys(self))

        def __ior__(self, other):
            self.update(other)
            return self

    return IndexedKeyStore
