"""The scale model (backup_cfn/bench/scale.py): properties, not figures. The model must reproduce
what the bench measured, grow with the scale, respect the published limits it cites, and name the
bound a constructed load reaches first."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backup_cfn import contract
from backup_cfn.bench import scale
from backup_cfn.engine import tally

ROOT = Path(__file__).resolve().parents[2]

# A measurement with a known linear structure: per user and per written object, by operation.
PER_USER = {"s3": {"ListObjectsV2": 1.0, "PutObject": 1.0, "GetObject": 1.0},
            "dynamodb": {"GetItem": 2.0, "TransactWriteItems": 1.0, "UpdateItem": 1.0}, "sqs": {"DeleteMessage": 1.0}}
PER_OBJECT = {"s3": {"GetObject": 1.0, "HeadObject": 1.0, "CopyObject": 0.8},
              "dynamodb": {"PutItem": 1.0, "UpdateItem": 1.0}, "sqs": {}}
USERS, OBJECTS, CHANGED = 1000, 6000, 60


def _counts(users: int, written: int) -> dict:
    return {s: {op: PER_USER[s].get(op, 0) * users + PER_OBJECT[s].get(op, 0) * written
                for op in set(PER_USER[s]) | set(PER_OBJECT[s])} for s in scale.SERVICES}


def _results(with_first_run_requests: bool = True) -> dict:
    incremental = _counts(USERS, CHANGED)
    e2e = {"users": USERS, "objects": OBJECTS}
    if with_first_run_requests:
        e2e["requests"] = _counts(USERS, OBJECTS)
    return {"requests": {"users": USERS, "changed_objects": CHANGED, **incremental}, "end_to_end": e2e}


def test_the_fit_recovers_the_per_user_and_per_object_requests_of_both_runs():
    fitted = scale.fit_from_results(_results())
    assert fitted.source == "measured"
    for service in scale.SERVICES:
        for op in set(PER_USER[service]) | set(PER_OBJECT[service]):
            assert fitted.per_user[service].get(op, 0) == pytest.approx(PER_USER[service].get(op, 0))
            assert fitted.per_object[service].get(op, 0) == pytest.approx(PER_OBJECT[service].get(op, 0))
    # ...so at the bench's own shape the model gives back the measured requests.
    for users, written in ((USERS, CHANGED), (USERS, OBJECTS)):
        modelled = fitted.requests(users, written)
        expected = _counts(users, written)
        assert all(modelled[s][op] == pytest.approx(n) for s in scale.SERVICES for op, n in expected[s].items())


def test_an_operation_only_the_first_run_makes_is_carried_per_object_never_negative():
    results = _results()
    results["end_to_end"]["requests"]["dynamodb"]["PutItem"] += 500     # first run only: claims with no churn twin
    results["requests"]["sqs"]["ReceiveMessage"] = 5                      # incremental only
    fitted = scale.fit_from_results(results)
    assert all(n >= 0 for part in (fitted.per_user, fitted.per_object) for ops in part.values() for n in ops.values())
    assert fitted.requests(USERS, CHANGED)["sqs"]["ReceiveMessage"] == pytest.approx(5)


def test_without_scenario_4_requests_the_model_says_what_stood_in():
    modelled = scale.from_results(_results(with_first_run_requests=False))
    assert "scenario 4 counted no requests" in modelled["source"]
    assert "scenario 4 counted no requests" in scale.table(modelled)
    assert modelled["large_user_invocations"] == {"source": "scenario 8 did not run"}
    assert scale.from_results({"end_to_end": {}}) is None


def test_every_figure_grows_with_the_scale():
    modelled = scale.model(scale.fit_from_results(_results()))
    figures = [(s["nightly"]["totals"], s["first_run"]["totals"], s["nightly"]["seconds"], s["first_run"]["seconds"],
                s["restore"]["seconds"], s["dynamodb_items"], s["invocations"]) for s in modelled["scales"]]
    for smaller, larger in zip(figures, figures[1:]):
        for a, b in zip(smaller, larger):
            if isinstance(a, dict):
                assert all(b[k] >= a[k] for k in a) and any(b[k] > a[k] for k in a)
            else:
                assert b > a
    ten = [s["nightly"]["totals"]["s3"] for s in modelled["scales"]]
    assert ten[1] == pytest.approx(10 * ten[0], rel=0.01) and ten[2] == pytest.approx(100 * ten[0], rel=0.01)


def test_the_runs_table_holds_a_record_per_user_per_kept_day():
    modelled = scale.model(scale.fit_from_results(_results()))
    design = scale.Design()
    for s in modelled["scales"]:
        days = design.retention_days + contract.RUN_RECORD_EXTRA_DAYS
        shards = tally.shards_for(s["users"])
        assert s["dynamodb_items"]["runs_table"] == (s["users"] + shards + 1) * days + 1
        assert s["dynamodb_items"]["content_index"] <= s["objects"] * (1 + design.churn * design.retention_days)


def test_concurrency_never_exceeds_the_account_quota_and_restore_never_the_prefix_rate():
    design = dataclasses.replace(scale.Design(), concurrency=5000, restore_users_parallel=200,
                                 restore_files_per_user=50)
    modelled = scale.model(scale.fit_from_results(_results()), design)
    for s in modelled["scales"]:
        assert s["nightly"]["concurrency"] == s["first_run"]["concurrency"] == scale.LIMITS[
            "lambda_account_concurrency"].value
        assert s["restore"]["copies_per_second"] <= scale.LIMITS["s3_get_per_prefix"].value
        assert "prefix" in s["restore"]["bound"]
    few = scale.model(scale.fit_from_results(_results()))["scales"][0]["restore"]
    assert few["bound"] == f"copies in flight ({few['in_flight']})"


def _fast_jobs() -> scale.Fit:
    """Jobs that take almost no time: one transaction each, nothing else."""
    fitted = scale.Fit({s: {} for s in scale.SERVICES}, {s: {} for s in scale.SERVICES}, "constructed")
    fitted.per_user["dynamodb"]["TransactWriteItems"] = 1.0
    return fitted


def test_a_rate_bound_is_reached_at_the_concurrency_it_names():
    fitted = _fast_jobs()
    base = scale.model(fitted, dataclasses.replace(scale.Design(), concurrency=50))["scales"][-1]
    ceiling = next(r for r in base["checks"] if r["check"] == base["first_hard_ceiling"])
    assert ceiling["reached_at_concurrency"] < 1000
    at = scale.model(fitted, dataclasses.replace(scale.Design(), concurrency=ceiling["reached_at_concurrency"] + 1))
    found = next(r for r in at["scales"][-1]["checks"] if r["check"] == ceiling["check"])
    assert found["ratio"] >= 1.0 > ceiling["ratio"]


def test_fast_jobs_at_full_concurrency_break_a_shards_partition_first_not_one_item():
    # Every finish is a transactional write of its shard's tally and its user item: spread over the
    # shards, the partition (lease, user item and tally) fills before the tally item alone does.
    modelled = scale.model(_fast_jobs(), dataclasses.replace(scale.Design(), concurrency=1000))
    for s in modelled["scales"]:
        assert s["first_hard_ceiling"] == "shard partition writes"
        partition = next(r for r in s["checks"] if r["check"] == "shard partition writes")
        tally_row = next(r for r in s["checks"] if r["check"] == "tally item writes")
        assert partition["ratio"] > 1 and partition["nature"] == "hard"
        assert tally_row["ratio"] == pytest.approx(partition["ratio"] * 2 / 5, rel=1e-3)


def test_no_hard_ceiling_below_a_thousand_workers_with_the_measured_requests():
    """Issue 21: the design's first hard ceiling (a bound AWS does not adapt past) is above the
    SQS event source's own maximum of 1,000 concurrent functions, at every scale."""
    modelled = scale.model(scale.fit_from_results(_results()), dataclasses.replace(scale.Design(), concurrency=1000))
    for s in modelled["scales"]:
        assert s["hard_ceiling_workers"] > scale.LIMITS["esm_maximum_concurrency"].value, s["scale"]
        assert {r["check"] for r in s["checks"]} >= {"tally item writes", "shard partition writes", "tally conflicts"}


def test_a_first_full_run_and_a_full_restore_at_100x_each_fit_an_hour():
    from backup_cfn.config import load_environment

    prod = load_environment("prod")
    hundred = scale.model(scale.fit_from_results(_results()), scale.design_of(prod))["scales"][-1]
    first = hundred["first_run_in_an_hour"]
    assert first["seconds"] <= 3600 and first["concurrency"] <= scale.LIMITS["lambda_account_concurrency"].value
    # The template pre-warms the content index for that write rate (ContentIndexTable WarmThroughput).
    assert first["index_writes_per_second"] <= prod.content_index_warm_writes
    restore = hundred["restore_by_stack"]
    assert restore["seconds"] <= 3600 and restore["workers"] == prod.max_concurrent_restores
    assert restore["workers_for_an_hour"] <= restore["workers"]
    assert restore["source_prefixes_needed"] <= scale.CONTENT_PREFIXES
    # ...far faster than from one machine, which is bounded by its copies in flight.
    assert hundred["restore"]["seconds"] > 5 * restore["seconds"]


def test_tally_conflicts_grow_with_the_users_and_the_finish_rate():
    fitted = scale.fit_from_results(_results())
    ratios = {}
    for workers in (2, 10, 50, 1000):
        modelled = scale.model(fitted, dataclasses.replace(scale.Design(), concurrency=workers))
        ratios[workers] = [next(r for r in s["checks"] if r["check"] == "tally conflicts")
                           for s in modelled["scales"]]
    for rows in ratios.values():
        # Same workers and shards (10x and 100x have every shard), same finish rate: the failed
        # users grow with the users, tenfold a scale.
        assert rows[2]["demand"] == pytest.approx(10 * rows[1]["demand"], rel=0.01)
    assert ratios[2][-1]["ratio"] < ratios[10][-1]["ratio"] < ratios[50][-1]["ratio"] < ratios[1000][-1]["ratio"]
    assert scale.conflict_chance(0) == 0 and 0 < scale.conflict_chance(100) < scale.conflict_chance(1000) < 1
    # Retried in place (engine/tally.py), a conflict fails a user only when all 45 tries conflict:
    # not one user a night even at 100x with 1,000 workers.
    assert scale.TRIES_PER_JOB == (tally.CONFLICT_RETRIES + 1) * 5 == 45
    assert ratios[1000][-1]["demand"] < 1


def test_ten_million_users_outlast_the_initiators_timeout():
    fitted = scale.fit_from_results(_results())
    huge = scale.Scale("10,000x", 10_000_000, 2_000_000_000, 10_000 * scale.TB)
    modelled = scale.model(fitted, scales=(huge,))["scales"][0]
    row = next(r for r in modelled["checks"] if r["check"] == "initiator timeout")
    assert row["demand"] > contract.INITIATOR_TIMEOUT_SECONDS and row["ratio"] > 1
    assert row["reached_at_users"] < huge.users


def test_every_limit_names_its_source():
    for name, limit in scale.LIMITS.items():
        assert limit.value > 0 and limit.unit
        assert limit.source.startswith("https://docs.aws.amazon.com/") or limit.source == "assumption", name


def test_the_docs_cite_every_published_limit():
    text = (ROOT / "docs" / "scale.md").read_text()
    for name, limit in scale.LIMITS.items():
        if limit.source != "assumption":
            assert limit.source in text, f"docs/scale.md does not cite {name}: {limit.source}"


def test_the_table_has_a_column_per_scale_and_survives_json():
    modelled = json.loads(json.dumps(scale.from_results(_results())))
    text = scale.table(modelled)
    header = text.splitlines()[0]
    assert all(s.name in header for s in scale.SCALES)
    assert "first hard ceiling" in text and "shard partition writes" in text and "full restore (stack)" in text


def test_the_modelled_design_is_prods_from_the_environments_file():
    from backup_cfn.config import load_environment

    prod = load_environment("prod")
    design = scale.design_of(prod)
    assert design.concurrency == prod.max_concurrent_backups and design.retention_days == prod.retention_days
    assert (design.restore_workers, design.content_index_warm_writes) == (prod.max_concurrent_restores,
                                                                          prod.content_index_warm_writes)
    modelled = scale.model(scale.fit_from_results(_results()), design)
    assert all(s["nightly"]["concurrency"] == prod.max_concurrent_backups for s in modelled["scales"])
