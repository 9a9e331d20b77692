"""Every fix this project applies to moto, by family. Each restores an AWS behaviour the project
depends on, or, where said, AWS's cost per request without changing any answer (the speed patches
that keep `make demo` fast: core, serving, sqs, s3, and dynamodb's expression cache); each is
listed in docs/emulator.md with what moto does and what AWS does, and has a test that drives it
through the AWS API.

`apply_patches()` runs in the emulator's own process (`python -m backup_cfn.local.server serve`)
before the server starts, so the real templates deploy unchanged.
"""
from __future__ import annotations


def apply_patches() -> None:
    """Idempotent."""
    from moto.cloudformation import models as cfn_models

    from backup_cfn.local.patches import (awslambda, cloudformation, cloudwatch, dynamodb, ec2, kms, replication, s3,
                                          s3_objectlock, s3events)

    if getattr(cfn_models, "_backup_cfn_patched", False):
        return
    cloudformation.patch_change_set_execution(cfn_models)
    cloudformation.patch_empty_change_set()
    cloudformation.patch_parameter_changes(cfn_models)
    cloudformation.patch_in_place_updates()
    cloudformation.patch_resource_failures(cfn_models)
    cloudformation.patch_resource_events(cfn_models)
    cloudformation.patch_termination_protection(cfn_models)
    cloudformation.patch_drift_detection()
    cloudformation.patch_change_set_validation_events()
    awslambda.patch_account_settings()
    ec2.patch_subnet_zone_ids()
    kms.patch_kms_key_properties()
    s3.patch_bucket_properties()
    replication.patch_replication_configuration()
    replication.patch_replication()
    s3events.patch_eventbridge_events()
    cloudwatch.patch_sqs_age_metric()
    dynamodb.patch_table_updates()
    dynamodb.patch_transactions()
    dynamodb.patch_atomic_requests()
    s3_objectlock.patch_bucket_lifecycle()   # after s3.patch_bucket_properties, which it wraps
    s3_objectlock.patch_object_lock_retention()
    s3_objectlock.patch_get_object_retention()
    s3_objectlock.patch_clock()
    s3_objectlock.patch_control_endpoints()
    apply_speed_patches()
    cfn_models._backup_cfn_patched = True


def apply_speed_patches() -> None:
    """The patches that change what a request costs, not what it answers (tests/local/emulator_costs.py
    measures moto with and without them)."""
    from backup_cfn.local.patches import core, dynamodb, s3, s3_versions, serving, sqs

    core.patch_clock()  # before the patches below: they read the clock through the names it rebinds
    core.patch_action_lookup()
    serving.patch_routing()
    serving.patch_keep_alive()
    serving.patch_request_log()
    serving.patch_header_parsing()
    sqs.patch_queue_scans()
    s3.patch_list_index()
    s3_versions.patch_list_object_versions()   # after the list index it reads
    dynamodb.patch_expression_cache()
    dynamodb.patch_expression_traversal()
    dynamodb.patch_attribute_value_serializer()
    dynamodb.patch_update_item_work()
