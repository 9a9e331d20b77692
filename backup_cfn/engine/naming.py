"""Names derived from values: content keys from hashes, manifest keys from users and runs, run IDs
from schedule times. Everything a restore needs is derivable, so the replica needs no table."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from backup_cfn import contract

RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_SUFFIX = ".json.gz"
RUN_ITEM = "RUN"
USER_ITEM_PREFIX = "USER#"
MAX_USER_LENGTH = 512


def content_key(sha256_hex: str) -> str:
    """content/ab/cd/abcd...: two levels of hex prefixes spread requests over 65,536 prefixes."""
    if not _SHA256.match(sha256_hex):
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return f"{contract.CONTENT_PREFIX}{sha256_hex[0:2]}/{sha256_hex[2:4]}/{sha256_hex}"


def hash_of_content_key(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1]
    return name if key.startswith(contract.CONTENT_PREFIX) and _SHA256.match(name) and key == content_key(name) else None


def manifest_prefix(user: str) -> str:
    return f"{contract.MANIFEST_PREFIX}{user}/"


def manifest_key(user: str, run_id: str) -> str:
    return f"{manifest_prefix(user)}{run_id}{MANIFEST_SUFFIX}"


PART_MARKER = ".part"


def part_key(user: str, run_id: str, part: int) -> str:
    """The progress of a job split over several invocations: one object per chunk, beside the
    manifest it becomes (manifest readers skip it: it does not parse as a manifest key)."""
    return f"{manifest_prefix(user)}{run_id}{PART_MARKER}{part:05d}{MANIFEST_SUFFIX}"


def parse_part_key(key: str) -> tuple[str, str, int] | None:
    """(user, run_id, part) of a part key, or None."""
    if not key.startswith(contract.MANIFEST_PREFIX) or not key.endswith(MANIFEST_SUFFIX):
        return None
    rest = key[len(contract.MANIFEST_PREFIX):-len(MANIFEST_SUFFIX)]
    user, _, name = rest.rpartition("/")
    run_id, marker, number = name.partition(PART_MARKER)
    if not user or "/" in user or not marker or not is_run_id(run_id) or not number.isdigit():
        return None
    return user, run_id, int(number)


def parse_manifest_key(key: str) -> tuple[str, str] | None:
    """(user, run_id) of a manifest key, or None for anything else under the prefix."""
    if not key.startswith(contract.MANIFEST_PREFIX) or not key.endswith(MANIFEST_SUFFIX):
        return None
    rest = key[len(contract.MANIFEST_PREFIX):-len(MANIFEST_SUFFIX)]
    user, _, run_id = rest.rpartition("/")
    if not user or "/" in user or not is_run_id(run_id):
        return None
    return user, run_id


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and bool(_RUN_ID.match(value))


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(_SHA256.match(value))


def run_id_for(moment: datetime) -> str:
    """The run ID of a schedule time: a retried invocation of the same schedule gets the same ID."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(RUN_ID_FORMAT)


def run_id_from_event_time(value: str) -> str:
    """Run ID from an EventBridge event's `time` ("2026-11-25T02:00:00Z")."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return run_id_for(moment)


def run_time(run_id: str) -> datetime:
    return datetime.strptime(run_id, RUN_ID_FORMAT).replace(tzinfo=timezone.utc)


def expires_at(run_id: str, retention_days: int) -> int:
    """Epoch seconds after which the runs table's TTL may remove a run's records."""
    moment = run_time(run_id) + timedelta(days=retention_days + contract.RUN_RECORD_EXTRA_DAYS)
    return int(moment.timestamp())


def is_valid_user(user: object) -> bool:
    """A user is a top-level prefix of the source bucket: non-empty, no '/', not '.' or '..'."""
    return (isinstance(user, str) and 0 < len(user) <= MAX_USER_LENGTH and "/" not in user
            and user not in (".", "..") and user.isprintable())


def user_item(user: str) -> str:
    return f"{USER_ITEM_PREFIX}{user}"


def run_key(run_id: str) -> dict:
    """The runs table's key of a run's record."""
    return {contract.RUNS_PARTITION_KEY: {"S": run_id}, contract.RUNS_SORT_KEY: {"S": RUN_ITEM}}


def job_id(run_id: str, user: str) -> str:
    return f"{run_id}/{user}"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso_precise(moment: datetime) -> str:
    """ISO time with microseconds: index timestamps are compared for equality in conditions."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
