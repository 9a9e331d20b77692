"""The policy builders' own guarantees."""
import pytest
from awacs.aws import ArnLike, StringEquals

from backup_cfn.stack.policies.elements import all_of


def test_all_of_keeps_every_same_operator_condition():
    condition = all_of(StringEquals("aws:SourceArn", "arn:x"), ArnLike("aws:SourceArn", "arn:*"),
                       StringEquals("s3:x-amz-acl", "bucket-owner-full-control")).JSONrepr()
    assert condition == {"StringEquals": {"aws:SourceArn": "arn:x", "s3:x-amz-acl": "bucket-owner-full-control"},
                         "ArnLike": {"aws:SourceArn": "arn:*"}}


def test_all_of_refuses_a_key_given_twice_under_one_operator():
    with pytest.raises(ValueError, match="aws:SourceArn given twice under StringEquals"):
        all_of(StringEquals("aws:SourceArn", "a"), StringEquals("aws:SourceArn", "b"))
