"""ListObjectVersions on the emulator (patches/s3_versions.py) answers as stock moto does: a
differential test over random writes, overwrites and deletes across prefixes, comparing every
listing's keys, order, latest flags, sizes, delete markers and pages (version IDs differ between
the two backends and are compared by their position)."""
from __future__ import annotations

import random

import boto3
import pytest
from moto import mock_aws

from backup_cfn import aws

PREFIXES = ["content/ab/", "content/ac/", "manifests/alice/", "manifests/al", "", "content/ab/cd", "nothing/"]


def _shape(response: dict) -> dict:
    def rows(items, *fields):
        return [tuple(item.get(f) for f in fields) for item in items]
    return {"versions": rows(response.get("Versions", []), "Key", "IsLatest", "Size"),
            "markers": rows(response.get("DeleteMarkers", []), "Key", "IsLatest"),
            "prefixes": rows(response.get("CommonPrefixes", []), "Prefix"),
            "truncated": response.get("IsTruncated"), "next_key": response.get("NextKeyMarker")}


def _history(s3, seed: int) -> None:
    rng = random.Random(seed)
    s3.create_bucket(Bucket="versions-under-test")
    s3.put_bucket_versioning(Bucket="versions-under-test", VersioningConfiguration={"Status": "Enabled"})
    keys = [f"{p}{n:02d}" for p in ("content/ab/cd/", "content/ac/", "manifests/alice/", "manifests/bob/") for n in range(6)]
    for _ in range(80):
        key = rng.choice(keys)
        if rng.random() < 0.2:
            s3.delete_object(Bucket="versions-under-test", Key=key)
        else:
            s3.put_object(Bucket="versions-under-test", Key=key, Body=b"x" * rng.randint(1, 50))


def _listings(s3) -> list:
    found = []
    for prefix in PREFIXES:
        for delimiter in (None, "/"):
            for max_keys in (1000, 3):
                args = {"Bucket": "versions-under-test", "Prefix": prefix, "MaxKeys": max_keys}
                if delimiter:
                    args["Delimiter"] = delimiter
                pages = []
                while True:
                    response = s3.list_object_versions(**args)
                    pages.append(_shape(response))
                    if not response.get("IsTruncated") or len(pages) > 50:
                        break
                    args["KeyMarker"] = response["NextKeyMarker"]
                    if response.get("NextVersionIdMarker"):
                        args["VersionIdMarker"] = response["NextVersionIdMarker"]
                    else:
                        args.pop("VersionIdMarker", None)
                found.append(((prefix, delimiter, max_keys), pages))
    return found


@pytest.mark.parametrize("seed", [1])
def test_listing_versions_answers_as_stock_moto(local_env, seed, monkeypatch):
    patched = aws.client(local_env, "s3")
    _history(patched, seed)
    emulator = _listings(patched)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        stock = boto3.client("s3", region_name="us-east-1")
        _history(stock, seed)
        expected = _listings(stock)
    assert emulator == expected
