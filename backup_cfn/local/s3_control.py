"""The emulator's S3 controls (patches/s3_objectlock.py): set S3's clock, run a bucket's lifecycle.
For the year bench and the tests that age the vault in simulated time; nothing else calls them."""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime

from backup_cfn.engine import naming


def _post(endpoint: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{endpoint}/backup-cfn/s3/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def set_s3_clock(endpoint: str, now: datetime | None) -> dict:
    """S3's time from now on (None: real time again)."""
    return _post(endpoint, "clock", {"now": naming.iso_precise(now) if now else None})


def run_lifecycle(endpoint: str, account: str, bucket: str) -> dict:
    """Apply the bucket's lifecycle rules once, at S3's clock: what S3 does each day."""
    return _post(endpoint, "lifecycle", {"account": account, "bucket": bucket})
