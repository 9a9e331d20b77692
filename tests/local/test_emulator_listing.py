"""The emulator's ListObjectsV2 by a sorted key index (backup_cfn.local.patches.s3.patch_list_index):
what AWS returns, through boto3 against the session's emulator, and, for random buckets and
listings, exactly what stock moto 5.2.5 returns (moto in this test process, where no speed patch
is applied)."""
from __future__ import annotations

import random

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from backup_cfn import aws

KEYS = ["a/1", "a/2", "a/b/3", "a/b/4", "a/c/5", "a0", "b/6", "c", "é/7", "a/b/x/8", "z"]


def make_bucket(s3, name: str = "listing", keys=KEYS, versioned: bool = False) -> str:
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


def aws_listing(keys, prefix: str = "", delimiter: str | None = None, start_after: str | None = None):
    """What ListObjectsV2 returns on AWS, all pages together: (keys, common prefixes), in UTF-8
    binary order (the same as code point order for these keys)."""
    contents, prefixes = [], []
    for key in sorted(keys):
        if not key.startswith(prefix) or (start_after is not None and key <= start_after):
            continue
        rest = key[len(prefix):]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter)[0] + delimiter
            if folder not in prefixes:
                prefixes.append(folder)
        else:
            contents.append(key)
    return contents, prefixes


def all_pages(s3, **kwargs) -> list[dict]:
    """Every page of a listing, following NextContinuationToken by hand."""
    pages, token = [], None
    while True:
        page = s3.list_objects_v2(**kwargs, **({"ContinuationToken": token} if token else {}))
        pages.append(page)
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            return pages
        token = page["NextContinuationToken"]


def listed(pages: list[dict]) -> tuple[list[str], list[str]]:
    return ([o["Key"] for p in pages for o in p.get("Contents", [])],
            [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])])


@pytest.fixture
def s3(local_env):
    return aws.client(local_env, "s3")


@pytest.mark.parametrize("prefix,delimiter", [("", None), ("a/", None), ("a/", "/"), ("", "/"), ("a", "/"),
                                              ("a/b/", "/"), ("nothing", None), ("é/", None)])
@pytest.mark.parametrize("max_keys", [1, 2, 1000])
def test_prefix_delimiter_and_pages_are_as_aws_lists_them(s3, prefix, delimiter, max_keys):
    bucket = make_bucket(s3)
    pages = all_pages(s3, Bucket=bucket, Prefix=prefix, MaxKeys=max_keys, **({"Delimiter": delimiter} if delimiter else {}))
    assert listed(pages) == aws_listing(KEYS, prefix, delimiter)
    for page in pages:
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", [])) <= max_keys
        assert (page["Prefix"], page["MaxKeys"], page.get("Delimiter")) == (prefix, max_keys, delimiter)
    assert all(page["IsTruncated"] for page in pages[:-1])


def test_a_listed_object_has_the_fields_head_object_gives(s3):
    bucket = make_bucket(s3, keys=["k/one"])
    listed_object = s3.list_objects_v2(Bucket=bucket, Prefix="k/")["Contents"][0]
    head = s3.head_object(Bucket=bucket, Key="k/one")
    assert (listed_object["Key"], listed_object["Size"], listed_object["StorageClass"]) == ("k/one", 5, "STANDARD")
    assert (listed_object["ETag"], listed_object["LastModified"]) == (head["ETag"], head["LastModified"])


@pytest.mark.parametrize("start_after", ["a/1", "a/b/3", "a", "", "zz", "b/6"])
def test_start_after_then_continuation_tokens(s3, start_after):
    bucket = make_bucket(s3)
    page = s3.list_objects_v2(Bucket=bucket, StartAfter=start_after)
    assert [o["Key"] for o in page.get("Contents", [])] == aws_listing(KEYS, start_after=start_after or None)[0]
    assert page.get("StartAfter", "") == start_after
    # One key a page: from the second page on, the token, not StartAfter, says where to go on.
    keys, _ = listed(all_pages(s3, Bucket=bucket, Prefix="a/", StartAfter=start_after, MaxKeys=1))
    assert keys == [k for k in aws_listing(KEYS, "a/")[0] if not start_after or k > start_after]


def test_a_common_prefix_is_not_repeated_on_the_next_page(s3):
    bucket = make_bucket(s3)
    pages = all_pages(s3, Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert listed(pages) == (["a0", "c", "z"], ["a/", "b/", "é/"])
    assert [p["KeyCount"] for p in pages] == [1] * 6


def test_max_keys_zero_and_an_empty_bucket(s3):
    bucket = make_bucket(s3)
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert (page["KeyCount"], page["IsTruncated"], "Contents" in page) == (0, False, False)
    empty = make_bucket(s3, "empty", keys=[])
    page = s3.list_objects_v2(Bucket=empty, Prefix="a/", Delimiter="/")
    assert (page["KeyCount"], page["IsTruncated"]) == (0, False)


def test_after_overwrites_and_deletes_the_listing_follows(s3):
    bucket = make_bucket(s3)
    s3.put_object(Bucket=bucket, Key="a/1", Body=b"much longer body")
    s3.delete_object(Bucket=bucket, Key="a/2")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a/c/5"}, {"Key": "z"}]})
    s3.put_object(Bucket=bucket, Key="a/new", Body=b"x")
    expected = sorted([k for k in KEYS if k not in ("a/2", "a/c/5", "z")] + ["a/new"])
    objects = [o for p in all_pages(s3, Bucket=bucket, MaxKeys=2) for o in p.get("Contents", [])]
    assert [o["Key"] for o in objects] == expected
    assert next(o["Size"] for o in objects if o["Key"] == "a/1") == len(b"much longer body")
    assert listed([s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")]) == (["a/1", "a/new"], ["a/b/"])


def test_versioned_bucket_lists_latest_versions_and_hides_delete_markers(s3):
    bucket = make_bucket(s3, keys=["v/1", "v/2", "v/3"], versioned=True)
    s3.put_object(Bucket=bucket, Key="v/2", Body=b"second version")
    s3.delete_object(Bucket=bucket, Key="v/3")  # a delete marker on top
    objects = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in objects] == [("v/1", 3), ("v/2", len(b"second version"))]
    versions = s3.list_object_versions(Bucket=bucket)
    assert (len(versions["Versions"]), len(versions["DeleteMarkers"])) == (4, 1)
    s3.delete_object(Bucket=bucket, Key="v/3", VersionId=versions["DeleteMarkers"][0]["VersionId"])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["v/1", "v/2", "v/3"]
    for version in s3.list_object_versions(Bucket=bucket, Prefix="v/1")["Versions"]:
        s3.delete_object(Bucket=bucket, Key="v/1", VersionId=version["VersionId"])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["v/2", "v/3"]


def test_a_token_the_server_did_not_issue_is_refused_as_aws_refuses_it(s3):
    bucket = make_bucket(s3, keys=["x"])
    with pytest.raises(ClientError) as caught:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="not-a-token")
    error = caught.value.response
    assert (error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("InvalidArgument", "The continuation token provided is incorrect", 400)


def test_random_buckets_and_listings_answer_as_stock_moto(s3):
    """400 random puts, overwrites and deletes (delete markers in the versioned bucket), then 150
    random listings followed to their last page: every page is what stock moto answers
    (LastModified aside)."""
    rng = random.Random(7)
    alphabet = ["a", "b", "/", "-", "é", "0"]
    operations = [("delete" if rng.random() < 0.2 else "put", rng.randint(0, 1),
                   "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))), rng.randint(1, 5))
                  for _ in range(400)]
    queries = []
    for _ in range(150):
        query = {"MaxKeys": rng.choice([1, 2, 3, 7, 1000])}
        if rng.random() < 0.6:
            query["Prefix"] = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 2)))
        if rng.random() < 0.5:
            query["Delimiter"] = rng.choice(["/", "a", "-"])
        if rng.random() < 0.3:
            query["StartAfter"] = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        queries.append((rng.randint(0, 1), query))

    def replay(client) -> list:
        buckets = [make_bucket(client, "plain", keys=[]), make_bucket(client, "versioned", keys=[], versioned=True)]
        for operation, which, key, size in operations:
            if operation == "put":
                client.put_object(Bucket=buckets[which], Key=key, Body=b"x" * size)
            else:
                client.delete_object(Bucket=buckets[which], Key=key)
        answers = []
        for which, query in queries:
            pages = all_pages(client, Bucket=buckets[which], **query)
            for page in pages:
                page.pop("ResponseMetadata")
                for listed_object in page.get("Contents", []):
                    listed_object.pop("LastModified")
            answers.append((query, pages))
        return answers

    patched = replay(s3)
    with mock_aws():  # the credentials are local_env's
        stock = replay(boto3.client("s3", region_name="us-east-1"))
    assert sum(len(pages) for _, pages in patched) > 150  # pages were followed, not only first pages
    for (query, ours), (_, theirs) in zip(patched, stock):
        assert ours == theirs, query
