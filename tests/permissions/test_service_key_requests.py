"""Key requests AWS does not fully document, evaluated in every form AWS may send them (issue 22), and
what an attacker sends instead, refused. The AWS rule behind each is in the statement's docstring
(backup_cfn/stack/policies/keys.py, roles.py) and in docs/permissions.md.

- EventBridge into the encrypted failure queue: SQS asks KMS as events.amazonaws.com, with or
  without aws:SourceArn/aws:SourceAccount (undocumented), always through SQS with the queue's
  aws:sqs:arn context.
- CloudTrail with the trail bucket's S3 Bucket Key: kms:Decrypt for the service, through S3 (the
  bucket's context) or directly (the trail's context), always with the trail's aws:SourceArn.
- `restore --from-replica --to s3://SOURCE`: the copy goes to the source bucket's Region; which
  Region's S3 asks the replica key to decrypt is undocumented, so both.
"""
from __future__ import annotations

import pytest

from backup_cfn.config import load_environment
from backup_cfn.permissions.conformance import check_calls, check_services
from backup_cfn.permissions.model import ACCOUNT, build_model
from backup_cfn.permissions.recorder import Call
from backup_cfn.permissions.requests import Need
from backup_cfn.permissions.services import ServiceAction, cloudtrail, schedules

ENVS = ("dev", "prod", "local")
OTHER_ACCOUNT = "210987654321"


@pytest.fixture(scope="module", params=ENVS)
def model(request):
    return build_model(load_environment(request.param))


# The one-account layout's replica (with a vault, production reads nothing in the disaster-recovery
# copy: tests/permissions/test_attack_table.py).
ONE_ACCOUNT_ENVS = tuple(name for name in ENVS if not load_environment(name).has_vault)


@pytest.fixture(scope="module", params=ONE_ACCOUNT_ENVS)
def one_account_model(request):
    return build_model(load_environment(request.param))


def _queue(model):
    return model.resources["FailedInvocationQueue"]


def _events_kms(model, **context) -> ServiceAction:
    queue = _queue(model)
    return ServiceAction("events.amazonaws.com", Need("kms:GenerateDataKey", queue.key_arn, context,
                                                      f"attacker {sorted(context.items())}"))


def test_eventbridge_key_requests_are_evaluated_with_and_without_source_keys(model):
    key_needs = [a.need for a in schedules(model) if a.need.action.startswith("kms:")]
    with_source = [n for n in key_needs if "aws:SourceArn" in n.context]
    without = [n for n in key_needs if "aws:SourceArn" not in n.context]
    assert with_source and len(with_source) == len(without)
    # The schedules' failures go to the failure queue; the source's changes (issue 20) to the capture queue.
    queues = {_queue(model).arn, model.resources["CaptureQueue"].arn}
    assert all(n.context["kms:ViaService"].startswith("sqs.") and
               n.context["kms:EncryptionContext:aws:sqs:arn"] in queues for n in key_needs)
    assert {n.context["kms:EncryptionContext:aws:sqs:arn"] for n in key_needs} == queues


def test_eventbridge_delivers_into_the_encrypted_failure_queue_either_way(model):
    denials = check_services(model, schedules(model))
    assert not denials, "\n".join(d.line() for d in denials)


def test_eventbridge_key_use_outside_this_stacks_queues_through_sqs_is_refused(model):
    queue = _queue(model)
    through_sqs = {"kms:ViaService": f"sqs.{queue.region}.amazonaws.com",
                   "kms:EncryptionContext:aws:sqs:arn": queue.arn}
    other_rule = f"arn:aws:events:{queue.region}:{OTHER_ACCOUNT}:rule/theirs"
    attacks = [
        # another queue of the account, encrypted with this key by whoever may
        _events_kms(model, **{**through_sqs, "kms:EncryptionContext:aws:sqs:arn":
                              f"arn:aws:sqs:{queue.region}:{ACCOUNT}:someone-elses-queue"}),
        _events_kms(model, **{k: v for k, v in through_sqs.items() if k != "kms:ViaService"}),    # not through SQS
        _events_kms(model, **{**through_sqs, "kms:ViaService": f"sns.{queue.region}.amazonaws.com"}),
        _events_kms(model, **through_sqs, **{"aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": other_rule}),
        _events_kms(model, **through_sqs, **{"aws:SourceArn": other_rule}),
    ]
    assert len(check_services(model, attacks)) == len(attacks)


def test_cloudtrail_decrypts_through_the_trail_bucket_key_either_way(model):
    decrypts = [a for a in cloudtrail(model) if a.need.action == "kms:Decrypt"]
    assert {("kms:ViaService" in a.need.context) for a in decrypts} == {True, False}
    denials = check_services(model, cloudtrail(model))
    assert not denials, "\n".join(d.line() for d in denials)


def test_cloudtrail_decrypt_for_another_trail_or_without_one_is_refused(model):
    [through_s3] = [a.need for a in cloudtrail(model) if a.need.action == "kms:Decrypt"
                    and "kms:ViaService" in a.need.context]
    other_trail = through_s3.context["aws:SourceArn"].replace("-audit", "-someone-else")
    without_source = {k: v for k, v in through_s3.context.items() if k not in ("aws:SourceArn", "aws:SourceAccount")}
    attacks = [ServiceAction("cloudtrail.amazonaws.com", Need("kms:Decrypt", through_s3.resource, context, f"attacker {i}"))
               for i, context in enumerate(({**through_s3.context, "aws:SourceArn": other_trail}, without_source))]
    assert len(check_services(model, attacks)) == len(attacks)


def _replica_copy(model, region: str) -> Call:
    replica, source = model.resources["ReplicaBucket"], model.resources["SourceBucket"]
    return Call("RestoreRole", "s3", "CopyObject", {
        "Bucket": source.name, "Key": "dr/client-0001/reports/a.pdf", "TaggingDirective": "REPLACE",
        "CopySource": {"Bucket": replica.name, "Key": "content/ab/cd/" + "ab" * 32}}, region)


def test_a_copy_from_the_replica_into_the_source_bucket_may_decrypt_from_either_region(one_account_model):
    model = one_account_model
    call = _replica_copy(model, model.env.region)
    replica_key = model.resources["ReplicaBucket"].key_arn
    from backup_cfn.permissions.requests import needs_of

    asked = {n.context["kms:ViaService"] for n in needs_of(model, call) if n.resource == replica_key}
    assert asked == {f"s3.{model.env.region}.amazonaws.com", f"s3.{model.env.replica_region}.amazonaws.com"}
    denials = check_calls(model, [call])
    assert not denials, "\n".join(d.line() for d in denials)


def test_the_replica_key_decrypts_only_the_replica_bucket_through_s3(one_account_model):
    model = one_account_model
    replica = model.resources["ReplicaBucket"]
    role = model.principal("RestoreRole")
    from backup_cfn.permissions.iam import Request

    def allowed(**context) -> bool:
        return model.store.evaluate(Request(role, "kms:Decrypt", replica.key_arn, context)).allowed

    via = f"s3.{model.env.region}.amazonaws.com"
    assert allowed(**{"kms:ViaService": via, "kms:EncryptionContext:aws:s3:arn": replica.arn, "kms:CallerAccount": ACCOUNT})
    assert not allowed(**{"kms:ViaService": via, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::another-bucket",
                          "kms:CallerAccount": ACCOUNT})
    assert not allowed(**{"kms:ViaService": f"dynamodb.{model.env.region}.amazonaws.com",
                          "kms:EncryptionContext:aws:s3:arn": replica.arn, "kms:CallerAccount": ACCOUNT})
    assert not allowed(**{"kms:EncryptionContext:aws:s3:arn": replica.arn, "kms:CallerAccount": ACCOUNT})
