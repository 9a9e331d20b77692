"""`backup-cfn cost`: the arithmetic on small cases computed by hand, and the command's errors."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from backup_cfn.config import Environment, load_environment
from backup_cfn.errors import UserError
from backup_cfn.ops.cost import model as cost
from backup_cfn.ops.cost.model import GLACIER, IA, STANDARD, Facts, Workload
from backup_cfn.stack import network
from cli import cli

GIB = 1024**3
DAYS = 30.4167  # days_per_month in the price file


@pytest.fixture(scope="module")
def prices():
    return cost.load_prices("us-east-1")


def facts(**overrides) -> Facts:
    values = dict(retention_days=60, deleted_version_days=7, transition_day=30, keys=2, interface_endpoint_azs=0,
                  alarms=0, dashboards=0, rtc=False, bucket_keys=True, object_lock="none",
                  multi_region_trail=False, worker_gb=1.0, pruner_gb=1.0, initiator_gb=0.5, email=False)
    values.update(overrides)
    return Facts(**values)


def small(change: float, **overrides) -> Workload:
    """100 GB in 10,000 objects over 10 users, no small objects unless asked."""
    values = dict(data_gb=100, objects=10_000, users=10, daily_change=change, small_share=0.0)
    values.update(overrides)
    return Workload(**values)


def item(items, component: str) -> float:
    found = [i.usd for i in items if i.component == component]
    assert len(found) == 1, f"{component} in {[i.component for i in items]}"
    return found[0]


def test_price_file_states_its_date_and_source(prices):
    data = json.loads(prices.path.read_text())
    assert data["prices_as_of"] and data["source"].startswith("AWS public list prices")
    assert prices["s3"]["standard_ia_gb_month"] == 0.0125
    assert prices.days_per_month == DAYS


def test_standard_storage_uses_the_volume_tiers(prices):
    assert prices.standard_storage(100) == pytest.approx(2.3)
    assert prices.standard_storage(51_200 + 100) == pytest.approx(51_200 * 0.023 + 100 * 0.022)


def test_glacier_at_45_deleted_at_60_is_billed_90_days():
    days = cost.cohort_days(60, [(STANDARD, 0), (IA, 30), (GLACIER, 45)], {IA: 30, GLACIER: 90})
    assert days == {STANDARD: (30, 0), IA: (15, 15), GLACIER: (15, 75)}


def test_reference_with_noncurrent_versions_stores_75_glacier_days_and_pays_15_more():
    days = cost.cohort_days(120, [(STANDARD, 0), (IA, 30), (GLACIER, 45)], {IA: 30, GLACIER: 90})
    assert days == {STANDARD: (30, 0), IA: (15, 15), GLACIER: (75, 15)}


def test_reference_early_deletion_charge_by_hand(prices):
    h = cost.reference_holdings(small(0.0), prices)
    # per bucket: 100 GB x 15 days short in IA, 100 GB x 15 days short in Glacier, plus the 32 KiB
    # Glacier overhead of each of 10,000 objects for those 15 days (4.5776 GB)
    overhead = 10_000 * 15 * 32 * 1024 / GIB
    expected = 1500 * 0.0125 + (1500 + overhead) * 0.0036
    items = cost.storage_items(h, prices)
    assert item(items, "S3 primary: early deletion/transition") == pytest.approx(expected)
    assert item(items, "S3 replica: early deletion/transition") == pytest.approx(expected)
    # stored: 30 days Standard, 15 IA, 75 Glacier of a 100 GB copy made every day
    assert h.gb[("primary", IA)] == pytest.approx(1500)
    assert h.gb[("primary", GLACIER)] == pytest.approx(7500 + 10_000 * 75 * 32 * 1024 / GIB)
    assert h.gb[("primary", STANDARD)] == pytest.approx(3000 + 10_000 * 75 * 8 * 1024 / GIB)


def test_our_storage_at_zero_change_is_the_data_once_in_ia():
    h = cost.our_holdings(facts(), small(0.0))
    manifest_bytes = 10_000 / 10 * cost.MANIFEST_BYTES_PER_ENTRY
    assert h.gb[("primary", IA)] == pytest.approx(100)
    assert h.gb[("replica", IA)] == pytest.approx(100)
    # only manifests in Standard: 10 users x (61 kept + 7 deleted-but-versioned) manifests
    assert h.gb[("primary", STANDARD)] == pytest.approx(10 * 68 * manifest_bytes / GIB)
    assert h.gb[("replica", STANDARD)] == pytest.approx(10 * (61 + 60) * manifest_bytes / GIB)
    assert not any(h.early_gb.values())


def test_our_storage_at_ten_percent_change():
    h = cost.our_holdings(facts(), small(0.10))
    manifests = 10 * 68 * (10_000 / 10 * cost.MANIFEST_BYTES_PER_ENTRY) / GIB
    # 10 GB new content a day; each stays 61 days after it is replaced: 100 x (1 + 0.1 x 61) = 710 GB,
    # of which the last 30 days' new content (300 GB) is still Standard.
    assert h.gb[("primary", STANDARD)] == pytest.approx(300 + manifests)
    assert h.gb[("primary", IA)] == pytest.approx(410 + 10 * 7)      # + deleted versions kept 7 days
    assert h.gb[("replica", IA)] == pytest.approx(410 + 10 * 60)     # replica keeps them 60 days
    assert not any(h.early_gb.values())


def test_objects_up_to_128_kib_never_move_to_ia():
    w = small(0.0, small_share=0.5, small_object_kib=64)
    small_gb = 5000 * 64 * 1024 / GIB
    h = cost.our_holdings(facts(), w)
    assert h.gb[("primary", IA)] == pytest.approx(100 - small_gb)
    assert h.gb[("primary", STANDARD)] >= small_gb
    assert h.objects[("primary", IA)] == pytest.approx(5000)


def test_ia_bills_each_object_as_at_least_128_kib():
    assert cost.ia_billable_gb(1.0, 100_000) == pytest.approx(100_000 * 128 * 1024 / GIB)
    assert cost.ia_billable_gb(100.0, 1000) == 100.0


def test_no_ia_rule_when_retention_leaves_less_than_the_ia_minimum():
    env = Environment(name="short", stack_name="short", region="us-east-1", replica_region="us-west-2",
                      retention_days=45, vpc_endpoints=False)
    f = cost.environment_facts(env)
    assert f.transition_day is None
    h = cost.our_holdings(f, small(0.05))
    assert ("primary", IA) not in h.gb and h.gb[("primary", STANDARD)] > 100


def test_bucket_keys_cut_kms_requests(prices):
    f = facts()
    a = cost.our_activity(f, small(0.10))
    # a day: 2 manifest calls x 10 users, 1,000 source GETs, 1,000 copies x 2, 610 kept manifests
    # read by the collector, 1,010 replicated objects x 2
    assert a.kms_without_bucket_keys == 20 + 1000 + 2000 + 610 + 2020
    per_request = 0.03 / 10_000
    without = 5650 * DAYS + cost.SERVICE_KMS_REQUESTS_PER_MONTH
    with_keys = 5650 * DAYS * 0.01 + cost.SERVICE_KMS_REQUESTS_PER_MONTH
    on = cost.activity_items(f, a, prices, bucket_keys=True)
    off = cost.activity_items(f, a, prices, bucket_keys=False)
    assert item(on, "KMS requests (bucket keys on)") == pytest.approx(with_keys * per_request)
    assert item(on, "  KMS requests if bucket keys were off") == pytest.approx(without * per_request)
    assert item(off, "KMS requests (no bucket keys)") == pytest.approx(without * per_request)
    shadow = [i for i in on if i.component.strip().startswith("KMS requests if")]
    assert not shadow[0].in_total


def test_requests_of_a_day_by_hand(prices):
    a = cost.our_activity(facts(), small(0.10))
    # worker: 10 source lists + 1,000 copies + 10 manifest PUTs; initiator 1 list; collector 1 list of 610 manifests
    assert a.s3_put == 10 + 1000 + 10 + 1 + 1
    # 10 previous manifests + 1,000 HEAD + 1,000 GET of changed sources + 610 manifests read by the collector
    assert a.s3_get == 10 + 1000 + 1000 + 610
    # claim + mark per new content, mark + delete per collected content, 10 writes per user job, 2 per run
    assert a.ddb_write_units == 2000 + 2000 + 100 + 2
    items = cost.activity_items(facts(), a, prices, bucket_keys=True)
    assert item(items, "S3 requests: PUT/COPY/LIST") == pytest.approx(1022 * DAYS / 1000 * 0.005)
    assert item(items, "DynamoDB requests") == pytest.approx(
        (4102 * 0.625 + a.ddb_read_units * 0.125) * DAYS / 1e6)


def test_aws_backup_keeps_the_retention_windows_incrementals(prices):
    s = cost.aws_backup_scenario(facts(), small(0.10), prices)
    # 100 GB + 10 GB a day for 60 days, in the primary vault and its copy
    assert item(s.items, "AWS Backup: primary vault") == pytest.approx(700 * 0.05)
    assert item(s.items, "AWS Backup: copy in the replica region") == pytest.approx(700 * 0.05)
    assert s.total == pytest.approx(70 + 10 * DAYS * 0.02)


def test_interface_endpoints_follow_the_network_module(prices):
    prod, dev = load_environment("prod"), load_environment("dev")
    azs = len(network.INTERFACE_SERVICES) * len(network.SUBNET_CIDRS)
    assert cost.environment_facts(prod).interface_endpoint_azs == azs
    assert cost.environment_facts(dev).interface_endpoint_azs == 0
    result = cost.estimate(prod, Workload())
    assert result.scenarios[0].usd("VPC interface endpoints") >= azs * 730 * 0.01
    assert "VPC interface endpoints" not in {i.component for i in cost.estimate(dev, Workload()).scenarios[0].items}


def test_this_design_costs_less_than_the_reference_and_aws_backup():
    ours, reference, backup = cost.estimate(load_environment("dev"), Workload()).scenarios
    assert ours.total < backup.total < reference.total


@pytest.mark.parametrize("values, message", [
    (dict(data_gb=-1), "--data-gb must be more than 0"),
    (dict(objects=0), "--objects must be at least 1"),
    (dict(daily_change=1.5), "--daily-change must be between 0 and 100 %"),
    (dict(users=20_000, objects=10_000), "--users (20000) cannot exceed --objects (10000)"),
])
def test_bad_workloads_are_user_errors(values, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Workload(**values)


def test_unknown_region_has_no_price_file():
    with pytest.raises(UserError, match="no price file for region eu-west-1 .have: us-east-1."):
        cost.load_prices("eu-west-1")


def run(*arguments):
    return CliRunner().invoke(cli, list(arguments), obj={}, env={"COLUMNS": "200"})


def test_cli_prints_the_three_scenarios():
    result = run("cost", "--env", "prod", "--data-gb", "500", "--objects", "100000", "--daily-change", "2")
    assert result.exit_code == 0, result.output
    assert "500 GB in 100,000 objects over 1,000 users, 2.00% changed per day" in result.output
    for heading in ("this design", "reference lifecycle", "AWS Backup for S3", "total per month",
                    "VPC interface endpoints", "prices-us-east-1.json: list prices as of"):
        assert heading in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--env", "dev", "--data-gb", "-1"], "Error: --data-gb must be more than 0, got -1"),
    (["--env", "dev", "--daily-change", "101"], "Error: --daily-change must be between 0 and 100 %, got 101"),
    (["--env", "nowhere"], "unknown environment 'nowhere' (known: dev, local, prod)"),
])
def test_cli_bad_values_one_line_exit_1(arguments, message):
    result = run("cost", *arguments)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
