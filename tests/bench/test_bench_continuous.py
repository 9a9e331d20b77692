"""Scenario 11 (backup_cfn/bench/continuous.py) and the continuous path's scale rows
(backup_cfn/bench/scale_continuous.py): outcomes only, no time asserted."""
from __future__ import annotations

import pytest

from backup_cfn.bench import continuous, scale_continuous
from backup_cfn.bench.report import table
from backup_cfn.config import load_environment


def test_a_small_stream_and_burst_are_each_captured_and_their_requests_counted(local_env):
    result = continuous.continuous_protection(local_env, steady_rate=2.0, steady_seconds=2, burst_changes=30)
    assert result["steady"]["changes"] == 4 and result["burst"]["changes"] == 30
    for part in ("steady", "burst"):
        assert 0 < result[part]["p50_seconds"] <= result[part]["p99_seconds"] <= result[part]["max_seconds"]
    per = {s: result["requests"][s]["per_change"] for s in ("s3", "dynamodb", "sqs")}
    # Each change read and stored once at least (a GET, a claim, a copy), plus its share of the batch.
    assert per["s3"] >= 2 and per["dynamodb"] >= 1 and per["sqs"] > 0
    assert result["requests_per_change_with_eventbridge"] == pytest.approx(result["requests_per_change"] + 1)
    rows = table({"continuous": result})
    assert "11 continuous" in rows and "per captured change" in rows


def test_the_continuous_scale_rows_name_the_first_limit_and_what_raising_concurrency_meets():
    modelled = scale_continuous.model(None, load_environment("prod"))
    assert modelled["source"].startswith("the data model")
    one, hundred = modelled["scales"][0], modelled["scales"][-1]
    assert hundred["changes_per_day"] == 100 * one["changes_per_day"]
    assert hundred["requests_per_day"]["eventbridge_sends"] == hundred["changes_per_day"]
    for row in modelled["scales"]:
        assert row["first_limit"] == max(row["checks"], key=lambda r: r["ratio"])["check"]
        assert row["hard_ceiling"]["concurrency"] > 0
        # One user rewriting 100,000 files waits for all of them: longer than a 10,000 burst.
        assert row["rewrite_rpo_seconds"] > row["burst_rpo_seconds"]
        assert any(c["check"].startswith("RPO through one user rewriting 100,000") for c in row["checks"])
    measured = {"requests": {s: {"per_change": n * 2} for s, n in scale_continuous.FALLBACK_PER_CHANGE.items()}}
    slower = scale_continuous.model(measured, load_environment("prod"))
    assert slower["scales"][0]["throughput_per_second"] < one["throughput_per_second"]
    assert slower["scales"][0]["rewrite_rpo_seconds"] > one["rewrite_rpo_seconds"]
    assert "first limit" in scale_continuous.table(modelled)
