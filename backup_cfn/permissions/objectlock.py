"""S3 Object Lock's rules, applied on top of the policy evaluation (IAM, bucket and key policies)
for the attacker's table (permissions/attacks.py). A request the policies allow can still be
refused by S3 because of a lock; each rule cites the document that states it.

- [OL] S3 User Guide, "Locking objects with Object Lock" (object-lock-overview.html): in compliance
  mode "a protected object version can't be overwritten or deleted by any user, including the root
  user in your AWS account", and "its retention mode can't be changed, and its retention period
  can't be shortened"; in governance mode a version is deleted, or its lock shortened or removed,
  only by a principal with `s3:BypassGovernanceRetention` that sends
  `x-amz-bypass-governance-retention: true`. Locks protect versions: they stop neither a new version
  nor a delete marker.
- [OLM] S3 User Guide, "Object Lock considerations" (object-lock-managing.html): "After you enable
  Object Lock on a bucket, you can't disable Object Lock or suspend versioning for that bucket";
  lifecycle "continue[s] functioning normally on protected objects, including placing delete
  markers. However, a locked version of an object can't be deleted by an S3 Lifecycle expiration
  policy."
- [REPL] S3 User Guide, "What does Amazon S3 replicate?": a replica keeps its source version's
  retention; without one, the destination bucket's default retention applies.
"""
from __future__ import annotations

from dataclasses import dataclass

OL = "S3 User Guide, Locking objects with Object Lock"
OLM = "S3 User Guide, Object Lock considerations"
REPL = "S3 User Guide, What does Amazon S3 replicate?"


@dataclass(frozen=True)
class BucketLock:
    """What protects a bucket's versions: Object Lock on or off, the mode a version written there
    is locked in (None: no default retention), and whether every version a kept snapshot needs
    stays locked for as long as it is needed (the vault's lock extender: docs/vault.md)."""
    enabled: bool
    mode: str | None
    locks_cover_kept: bool = False


def bucket_lock(properties: dict, *, source_mode: str | None = None, locks_cover_kept: bool = False) -> BucketLock:
    """From a bucket's template properties; a replica's versions carry their source's mode when the
    source locks by default [REPL], else the bucket's own default."""
    enabled = str(properties.get("ObjectLockEnabled", "")).lower() == "true"
    default = (properties.get("ObjectLockConfiguration", {}).get("Rule", {}).get("DefaultRetention", {}) or {})
    own = str(default.get("Mode", "")).upper() or None
    return BucketLock(enabled, source_mode or own, locks_cover_kept)


@dataclass(frozen=True)
class LockVerdict:
    refused: bool
    why: str = ""


def applies(kind: str, lock: BucketLock, may_bypass: bool) -> LockVerdict:
    """Whether Object Lock refuses a request the policies allowed. `kind`: what the request does to
    a locked version (see attacks.Row.lock_kind); `may_bypass`: the policies also allow
    s3:BypassGovernanceRetention on it (and the request sends the header)."""
    if kind == "suspend-versioning":
        return LockVerdict(lock.enabled, f"Object Lock is on: versioning cannot be suspended [{OLM}]")
    if kind in ("delete-version", "shorten-retention"):
        if lock.mode == "COMPLIANCE":
            return LockVerdict(True, f"a COMPLIANCE lock: no one, the root user included, deletes the version or "
                                     f"shortens its lock [{OL}]")
        if lock.mode == "GOVERNANCE" and not may_bypass:
            return LockVerdict(True, f"a GOVERNANCE lock, and s3:BypassGovernanceRetention is not allowed [{OL}]")
        return LockVerdict(False)
    if kind == "lifecycle":
        if lock.locks_cover_kept:
            return LockVerdict(True, f"lifecycle cannot delete a locked version, and every version a kept snapshot "
                                     f"needs stays locked (the vault's lock extender) [{OLM}]")
        return LockVerdict(False)
    return LockVerdict(False)
