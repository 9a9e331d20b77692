"""S3 in the emulator: ListObjectVersions costs per key listed, as on AWS, not per version in the
bucket (a speed patch, listed in docs/emulator.md).

moto 5.2.5 answers every ListObjectVersions by deep-copying every version of every key in the
bucket, bodies included, then sorting them all, whatever the prefix. The vault lists the versions
of one content key at a time (engine/integrity.py): in the 1,000-user demo, with 12,000 versions
in the bucket, each call copied a few hundred megabytes, and the emulator grew past 20 GB before
the kernel killed it (300 calls on 300 objects of 50 KB: 29 s and 4.5 GB; with the patch, 0.7 s
and no growth).
"""
from __future__ import annotations

import bisect
from types import SimpleNamespace

# The last code point: every name that starts with a prefix sorts before prefix + this.
_AFTER_EVERYTHING = "\U0010ffff"


def patch_list_object_versions() -> None:
    """The same answer, from the versions of the keys under the prefix only (the list index's
    sorted names, patches/s3.py, give them by binary search), each copied shallowly: moto copies a
    version to mark it `is_latest` in the answer, and a shallow copy marks it as well without
    copying its body. moto's own function does the rest, so order, pages, markers, delimiters and
    delete markers are its own. Idempotent."""
    from moto.s3 import models

    from backup_cfn.local.patches.s3 import _index_lock

    backend_class = models.S3Backend
    if getattr(backend_class, "_backup_cfn_list_versions", False):
        return
    original = backend_class.list_object_versions
    copies: dict[type, type] = {}

    def listed_copy(version):
        kind = copies.get(type(version))
        if kind is None:
            # A subclass whose deep copy is itself (moto deep-copies what it lists), and that frees
            # nothing when it goes: it shares the original's body, which FakeKey's __del__ closes.
            kind = copies[type(version)] = type(f"Listed{type(version).__name__}", (type(version),), {
                "__deepcopy__": lambda self, memo: self, "__del__": lambda self: None,
                "dispose": lambda self, *args, **kwargs: None})
        duplicate = object.__new__(kind)
        duplicate.__dict__.update(version.__dict__)
        return duplicate

    def list_object_versions(self, bucket_name, delimiter=None, key_marker=None, max_keys=1000, prefix="",
                             version_id_marker=None):
        bucket = self.get_bucket(bucket_name)
        keys = bucket.keys
        if not hasattr(keys, "sorted_names"):
            return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        prefix = prefix or ""
        with _index_lock:
            names = keys.sorted_names()
            start = bisect.bisect_left(names, prefix)
            end = bisect.bisect_left(names, prefix + _AFTER_EVERYTHING) if prefix else len(names)
            listed = [(name, [listed_copy(v) for v in keys.getlist(name) or []]) for name in names[start:end]]
        view = SimpleNamespace(keys=SimpleNamespace(iterlists=lambda: iter(listed)))
        return original(SimpleNamespace(get_bucket=lambda name: view), bucket_name, delimiter, key_marker, max_keys,
                        prefix, version_id_marker)

    backend_class.list_object_versions = list_object_versions
    backend_class._backup_cfn_list_versions = True
