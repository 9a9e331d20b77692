"""S3 Object Lock, lifecycle and time in the emulator: what the vault relies on (docs/vault.md),
taught to moto 5.2.5 (listed in docs/emulator.md).

- `patch_bucket_lifecycle`: a bucket deployed by CloudFormation gets its LifecycleConfiguration,
  which moto ignores (its versioning, Object Lock and replication: s3.patch_bucket_properties);
- `patch_object_lock_retention`: PutObjectRetention refuses to shorten a COMPLIANCE lock or turn it
  into GOVERNANCE, and to shorten GOVERNANCE or lift it without `x-amz-bypass-governance-retention`
  (moto accepts anything);
- `patch_clock`: S3's clock (object creation times, default retention, lock checks, lifecycle) can
  be set, so a simulated year (make bench) ages objects and locks in its own time;
- `patch_control_endpoints`: S3 runs a bucket's lifecycle rules (moto never does): on request, at S3's
  clock; the clock is set through the same endpoints.

Control endpoints (POST, JSON body, on the emulator's own port): `/backup-cfn/s3/clock`
`{"now": ISO 8601 | null}` and `/backup-cfn/s3/lifecycle` `{"account": ID, "bucket": NAME}`
(backup_cfn/local/s3_control.py calls them).
"""
from __future__ import annotations

import datetime as dt
import json
import threading

CONTROL_PREFIX = "/backup-cfn/s3/"
_clock = {"offset": dt.timedelta(0)}
_clock_lock = threading.Lock()


def _as_naive_utc(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def patch_clock() -> None:
    """moto's S3 reads the time through `moto.s3.models.utcnow` (object LastModified, delete
    markers, default retention, lock checks): it now reads the real clock plus an offset the
    control endpoint sets (`{"now": null}` goes back to real time). Idempotent."""
    from moto.s3 import models

    if getattr(models, "_backup_cfn_clock", False):
        return
    real = models.utcnow

    def utcnow() -> dt.datetime:
        return real() + _clock["offset"]

    models.utcnow = utcnow
    models._backup_cfn_real_utcnow = real
    models._backup_cfn_clock = True


def set_clock(now) -> dt.datetime:
    from moto.s3 import models

    with _clock_lock:
        real = models._backup_cfn_real_utcnow()
        _clock["offset"] = dt.timedelta(0) if now is None else _as_naive_utc(now) - real
        return real + _clock["offset"]


def patch_object_lock_retention() -> None:
    """S3 User Guide, "Locking objects with Object Lock": in compliance mode a version's "retention
    mode can't be changed, and its retention period can't be shortened"; a governance lock is
    shortened, removed or changed only with `s3:BypassGovernanceRetention` and the
    `x-amz-bypass-governance-retention: true` header. Extending is always allowed. A refusal is
    AccessDenied, as AWS answers it. Idempotent."""
    from moto.s3 import responses
    from moto.s3.exceptions import AccessDeniedByLock
    from moto.s3.models import FakeKey

    if getattr(responses.S3Response, "_backup_cfn_retention", False):
        return
    original = responses.S3Response.put_object_retention

    def put_object_retention(self):
        mode, until = self._mode_until_from_body()
        key = self.backend.get_object(self.bucket_name, self.parse_key_name(), version_id=self._get_param("versionId"))
        bypass = self.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
        if isinstance(key, FakeKey) and key.lock_until and key.lock_mode in ("GOVERNANCE", "COMPLIANCE"):
            current = _as_naive_utc(key.lock_until)
            wanted = _as_naive_utc(until) if until else None
            locked = current > _s3_now()
            weaker = wanted is None or wanted < current or (key.lock_mode == "COMPLIANCE" and mode != "COMPLIANCE")
            if locked and weaker and (key.lock_mode == "COMPLIANCE" or not bypass):
                raise AccessDeniedByLock()
        return original(self)

    responses.S3Response.put_object_retention = put_object_retention
    responses.S3Response._backup_cfn_retention = True


def patch_get_object_retention() -> None:
    """moto 5.2.5 has no GetObjectRetention (`GET /key?retention`): it answered the object itself.
    As AWS: the version's Mode and RetainUntilDate, or 404 NoSuchObjectLockConfiguration when the
    version carries no retention (S3 API Reference, GetObjectRetention). Idempotent."""
    from moto.s3 import responses
    from moto.s3.exceptions import S3ClientError

    if getattr(responses.S3Response, "_backup_cfn_get_retention", False):
        return
    original = responses.S3Response._key_response_get

    class NoSuchObjectLockConfiguration(S3ClientError):
        code = 404

        def __init__(self) -> None:
            super().__init__("NoSuchObjectLockConfiguration",
                             "The specified object does not have a ObjectLock configuration")

    def _key_response_get(self, query, key_name):
        if "retention" not in query:
            return original(self, query, key_name)
        self._set_action("KEY", "GET", query)
        key, _ = self._get_key()
        if not key.lock_mode or not key.lock_until:
            raise NoSuchObjectLockConfiguration()
        headers = self._get_cors_headers_other()
        if key.version_id != "null":
            headers["x-amz-version-id"] = key.version_id
        self.data["Action"] = "GetObjectRetention"
        status, answer_headers, body = self.serialized(responses.ActionResult(
            {"Retention": {"Mode": key.lock_mode, "RetainUntilDate": key.lock_until}}))
        answer_headers.update(headers)
        return status, answer_headers, body

    responses.S3Response._key_response_get = _key_response_get
    responses.S3Response._backup_cfn_get_retention = True


def _s3_now() -> dt.datetime:
    from moto.s3 import models

    return models.utcnow()


def _lifecycle_rules(cfn_rules: list[dict]) -> list[dict]:
    """CloudFormation's LifecycleConfiguration rules in the API's shape, as moto's parser gives them."""
    rules = []
    for rule in cfn_rules:
        api = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled"),
               "Filter": {"Prefix": rule.get("Prefix", "")}}
        expiration = {}
        if "ExpirationInDays" in rule:
            expiration["Days"] = str(rule["ExpirationInDays"])
        if str(rule.get("ExpiredObjectDeleteMarker", "")).lower() == "true":
            expiration["ExpiredObjectDeleteMarker"] = "true"
        if expiration:
            api["Expiration"] = expiration
        if "NoncurrentVersionExpiration" in rule:
            api["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": str(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": str(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
        transitions = rule.get("Transitions", [])
        if transitions:
            api["Transition"] = [{"Days": str(t.get("TransitionInDays")), "StorageClass": t["StorageClass"]}
                                 for t in transitions]
        rules.append(api)
    return rules


def patch_bucket_lifecycle() -> None:
    """moto 5.2.5 ignores an `AWS::S3::Bucket`'s LifecycleConfiguration (versioning, Object Lock,
    ownership and replication are s3.patch_bucket_properties'); CloudFormation applies it, on
    creation and on update, as PutBucketLifecycleConfiguration would; so does this patch. Idempotent."""
    from moto.s3 import models

    bucket_class = models.FakeBucket
    if getattr(bucket_class, "_backup_cfn_lifecycle", False):
        return
    create, update = (bucket_class.create_from_cloudformation_json.__func__,
                      bucket_class.update_from_cloudformation_json.__func__)

    def apply(bucket, account_id, region_name, properties) -> None:
        rules = properties.get("LifecycleConfiguration", {}).get("Rules")
        backend = models.s3_backends[account_id][models.get_partition(region_name)]
        if rules:
            backend.put_bucket_lifecycle(bucket.name, _lifecycle_rules(rules))
        elif bucket.rules:
            backend.delete_bucket_lifecycle(bucket.name)

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        apply(bucket, account_id, region_name, cloudformation_json.get("Properties", {}))
        return bucket

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        bucket = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        apply(bucket, account_id, region_name, cloudformation_json.get("Properties", {}))
        return bucket

    bucket_class.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    bucket_class.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)
    bucket_class._backup_cfn_lifecycle = True


def _due(start: dt.datetime, days: int) -> dt.datetime:
    """S3 User Guide (lifecycle rules): the time an action is due is the start plus the days,
    "rounded to the next day midnight UTC"."""
    moment = start + dt.timedelta(days=days)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + dt.timedelta(days=1)


def _prefix(rule) -> str:
    if getattr(rule, "filter", None) is not None and getattr(rule.filter, "prefix", None) is not None:
        return rule.filter.prefix or ""
    return rule.prefix or ""


def run_lifecycle(account: str, bucket_name: str) -> dict:
    """Apply the bucket's enabled lifecycle rules once, at S3's clock (S3 User Guide, "Expiring
    objects" and "Object Lock considerations"): an expired current version gets a delete marker on
    top (allowed on a locked object); a noncurrent version past its days is removed unless a lock
    or legal hold protects it; a delete marker with no version left is removed."""
    from moto.s3 import models
    from moto.s3.exceptions import AccessDeniedByLock

    backend = models.s3_backends[account]["aws"]
    bucket = backend.get_bucket(bucket_name)
    now = _s3_now()
    done = {"delete_markers_added": 0, "versions_removed": 0, "locked_kept": 0, "markers_removed": 0}
    for rule in [r for r in bucket.rules if r.status == "Enabled"]:
        prefix = _prefix(rule)
        for name in [k for k in list(bucket.keys.keys()) if k.startswith(prefix)]:
            versions = bucket.keys.getlist(name) or []
            if not versions:
                continue
            latest = versions[-1]
            if rule.expiration_days and isinstance(latest, models.FakeKey) \
                    and _due(latest.last_modified, int(rule.expiration_days)) <= now:
                backend.delete_object(bucket_name, name)
                done["delete_markers_added"] += 1
                versions = bucket.keys.getlist(name)
            if rule.nve_noncurrent_days:
                for older, successor in zip(versions[:-1], versions[1:]):
                    if _due(successor.last_modified, int(rule.nve_noncurrent_days)) > now:
                        continue
                    if isinstance(older, models.FakeKey) and older.is_locked(governance_bypass=False):
                        done["locked_kept"] += 1
                        continue
                    try:
                        backend.delete_object(bucket_name, name, version_id=older.version_id)
                        done["versions_removed"] += 1
                    except AccessDeniedByLock:
                        done["locked_kept"] += 1
                versions = bucket.keys.getlist(name) or []
            if str(rule.expired_object_delete_marker).lower() == "true" and len(versions) == 1 \
                    and isinstance(versions[0], models.FakeDeleteMarker):
                backend.delete_object(bucket_name, name, version_id=versions[0].version_id)
                done["markers_removed"] += 1
    return done


def patch_control_endpoints() -> None:
    """The two control endpoints, answered before moto routes the request. Idempotent."""
    from moto.moto_server import werkzeug_app

    dispatcher = werkzeug_app.DomainDispatcherApplication
    if getattr(dispatcher, "_backup_cfn_s3_control", False):
        return
    original = dispatcher.__call__

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return original(self, environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if path == CONTROL_PREFIX + "clock":
                answer = {"now": set_clock(body.get("now")).isoformat() + "Z"}
            elif path == CONTROL_PREFIX + "lifecycle":
                answer = run_lifecycle(body["account"], body["bucket"])
            else:
                raise KeyError(path)
            status = "200 OK"
        except Exception as exc:  # the control endpoint answers the error, never the server's 500 page
            answer, status = {"error": f"{type(exc).__name__}: {exc}"}, "400 Bad Request"
        data = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    dispatcher.__call__ = __call__
    dispatcher._backup_cfn_s3_control = True
