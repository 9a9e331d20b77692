"""Wildcard matching of actions and resources, checked against the documented examples
and, with hypothesis, against an independent matcher."""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_cfn.permissions.iam import arn_match, glob_match
from backup_cfn.permissions.iam.matching import Pattern

RESOURCE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html"


@pytest.mark.parametrize(
    "key,expected",
    [
        ("DOC-EXAMPLE-BUCKET/1/test/object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1/2/test/object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1/2/test/3/object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1/2/3/test/4/object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1///test///object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1/test/.jpg", True),
        ("DOC-EXAMPLE-BUCKET//test/object.jpg", True),
        ("DOC-EXAMPLE-BUCKET/1/test/", True),
        ("DOC-EXAMPLE-BUCKET/1-test/object.jpg", False),
        ("DOC-EXAMPLE-BUCKET/test/object.jpg", False),
        ("DOC-EXAMPLE-BUCKET/1/2/test.jpg", False),
    ],
)
def test_resource_wildcard_spans_slashes(key: str, expected: bool) -> None:
    """RESOURCE, "Using wildcards in resource ARNs": ``arn:aws:s3:::DOC-EXAMPLE-BUCKET/*/test/*``
    "apply to all of the following objects" (the first eight) and "would not match" the last three:
    "there is no specific significance when this character [/] is used within a resource ARN"."""
    assert glob_match("arn:aws:s3:::DOC-EXAMPLE-BUCKET/*/test/*", f"arn:aws:s3:::{key}") is expected


def test_resource_wildcard_spans_colons() -> None:
    """RESOURCE (current page): "If the * wildcard is the last character of a resource ARN
    segment, it can expand to match beyond colon boundaries."."""
    assert glob_match(
        "arn:aws:logs:us-east-1:123456789012:*",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:x",
    )
    assert glob_match("arn:aws:logs:*", "arn:aws:logs:us-east-1:123456789012:log-group:g:*")
    assert glob_match("*", "arn:aws:s3:::anything/at/all")
    assert glob_match("*", "*")
    assert not glob_match(
        "arn:aws:s3:::b", "*"
    )  # a "*" request resource is only matched by patterns that match the text "*"


def test_question_mark_is_exactly_one_character() -> None:
    assert glob_match("arn:aws:s3:::b?", "arn:aws:s3:::b1")
    assert not glob_match("arn:aws:s3:::b?", "arn:aws:s3:::b")
    assert not glob_match("arn:aws:s3:::b?", "arn:aws:s3:::b12")


def test_action_match_case_insensitive() -> None:
    assert glob_match("s3:Get*", "S3:getobject", ignore_case=True)
    assert glob_match("iam:*AccessKey*", "iam:ListAccessKeys", ignore_case=True)
    assert not glob_match("iam:*AccessKey*", "iam:ListUsers", ignore_case=True)
    assert glob_match("*", "kms:Decrypt", ignore_case=True)


def test_regex_metacharacters_are_literal() -> None:
    assert glob_match("arn:aws:s3:::a.b", "arn:aws:s3:::a.b")
    assert not glob_match("arn:aws:s3:::a.b", "arn:aws:s3:::axb")
    assert glob_match("arn:aws:s3:::(x)+[y]", "arn:aws:s3:::(x)+[y]")


def test_arn_segments_keep_resource_colons() -> None:
    p = Pattern("arn:aws:logs:us-east-1:${aws:PrincipalAccount}:log-group:/aws/lambda/*")
    segs = p.arn_segments()
    assert segs is not None and len(segs) == 6
    lookup = {"aws:PrincipalAccount": "123456789012"}.get
    assert p.arn_matches("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*", lookup)
    assert not p.arn_matches("arn:aws:logs:us-east-1:999999999999:log-group:/aws/lambda/f", lookup)
    assert arn_match("arn:aws:s3:::*", "arn:aws:s3:::bucket/key")
    # A pattern without six parts is not an ARN pattern: it matches nothing (but "*" matches all).
    assert not arn_match("arn:aws:s3:*", "arn:aws:s3:::bucket")
    assert glob_match("arn:aws:s3:*", "arn:aws:s3:::bucket")
    assert arn_match("*", "arn:aws:s3:::bucket")


# --------------------------------------------------------------------------
# Properties

_ALPHABET = st.sampled_from(list("ab:/*?x"))
_VALUE_ALPHABET = st.sampled_from(list("ab:/x*?"))


def _oracle(pattern: str, value: str) -> bool:
    """An independent matcher: dynamic programming over (pattern, value) positions."""

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        c = pattern[i]
        if c == "*":
            return m(i + 1, j) or (j < len(value) and m(i, j + 1))
        if j == len(value):
            return False
        if c == "?" or c == value[j]:
            return m(i + 1, j + 1)
        return False

    return m(0, 0)


@settings(max_examples=400)
@given(st.text(_ALPHABET, max_size=8), st.text(_VALUE_ALPHABET, max_size=10))
def test_glob_agrees_with_oracle(pattern: str, value: str) -> None:
    assert glob_match(pattern, value) is _oracle(pattern, value)


@settings(max_examples=200)
@given(st.text(_ALPHABET, max_size=8), st.text(_VALUE_ALPHABET, max_size=10))
def test_glob_agrees_with_regex_translation(pattern: str, value: str) -> None:
    """A second oracle: the obvious regex translation (``*`` -> ``.*``, ``?`` -> ``.``)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert glob_match(pattern, value) is (re.fullmatch(rx, value, re.DOTALL) is not None)


@settings(max_examples=200)
@given(
    st.text(st.sampled_from(list("sS3:gGeEtT*")), min_size=1, max_size=8),
    st.text(st.sampled_from(list("sS3:gGeEtT")), max_size=8),
)
def test_action_matching_ignores_case(pattern: str, action: str) -> None:
    expected = glob_match(pattern.lower(), action.lower())
    assert glob_match(pattern, action, ignore_case=True) is expected
    assert glob_match(pattern.upper(), action.swapcase(), ignore_case=True) is expected


_SEGMENT = st.text(st.sampled_from(list("ab/*?")), max_size=4)


@settings(max_examples=300)
@given(
    st.lists(_SEGMENT, min_size=6, max_size=6),
    st.lists(st.text(st.sampled_from(list("ab/:")), max_size=4), min_size=6, max_size=6),
)
def test_arn_like_is_stricter_than_string_like(pattern_parts: list[str], value_parts: list[str]) -> None:
    """Per-segment ARN matching never matches something whole-string StringLike rejects."""
    pattern = ":".join(pattern_parts)
    value = ":".join(value_parts)
    if arn_match(pattern, value):
        assert glob_match(pattern, value)


@settings(max_examples=200)
@given(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
def test_substituted_variables_never_widen(name: str, other: str) -> None:
    """``home/${aws:username}`` matches exactly ``home/<username>``, whatever the username holds."""
    p = Pattern("home/${aws:username}")
    lookup = {"aws:username": name}.get
    assert p.matches(f"home/{name}", lookup)
    assert p.matches(f"home/{other}", lookup) is (other == name)
