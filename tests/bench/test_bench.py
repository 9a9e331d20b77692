"""The bench's own parts: its synthetic source, its checks, and small runs of its scenarios on the
emulator. Outcomes only: nothing here asserts a time."""
from __future__ import annotations

import dataclasses
import hashlib

import pytest

from backup_cfn import bench

TINY = dataclasses.replace(bench.QUICK, storage_users=2, retention_days=2, extra_days=2, e2e_users=3, churn=0.1,
                           hash_mib=1, template_rounds=1, split_objects=150, split_deadline_seconds=2.0)


def test_source_keys_are_the_generators_files_with_shared_content():
    files = bench.source_keys(20, 1)
    assert all(key.startswith("client-") for key in files)
    seeds = [spec.content_seed for spec in files.values()]
    assert len(set(seeds)) < len(seeds), "every user holds the standard terms: shared content"
    assert bench.source_keys(20, 1) == files


class RecordingS3:
    def __init__(self):
        self.puts = {}

    def put_object(self, Bucket, Key, Body):
        self.puts[Key] = Body


def test_churn_overwrites_the_asked_share_with_new_content():
    s3 = RecordingS3()
    keys = [f"u/{i}" for i in range(200)]
    changed = bench.churn(s3, "b", keys, 0.01)
    assert len(changed) == 2 and set(s3.puts) == set(changed)
    assert len({hashlib.sha256(b).hexdigest() for b in s3.puts.values()}) == 2
    assert len(bench.churn(RecordingS3(), "b", keys[:10], 0.01)) == 1   # at least one


def test_hashing_compares_the_engine_stream_with_hashlib():
    result = bench.hashing(TINY, rounds=1)
    assert result["mib"] == 1 and result["engine_mib_per_second"] > 0 and result["hashlib_mib_per_second"] > 0


def test_hashing_refuses_a_stream_hash_that_disagrees(monkeypatch):
    from backup_cfn.engine import hashing

    monkeypatch.setattr(hashing, "sha256_of_stream", lambda body: (hashlib.sha256(b"other").hexdigest(), 0))
    with pytest.raises(RuntimeError, match="disagrees"):
        bench.hashing(TINY, rounds=1)


def test_template_build_covers_every_environment():
    result = bench.template_build(TINY)
    assert result["templates"] == 2 * len(result["environments"]) == 6


def test_storage_scenario_stays_at_the_unique_content(local_env):
    from backup_cfn.local.runner import quiet_handlers

    quiet_handlers()
    result = bench.storage_over_time(local_env, TINY, threads=2)
    assert result["days"] == 4 and len(result["series"]) == 4
    assert result["max_stored_over_unique"] <= 1.02
    final = result["final"]
    assert final["unique"] < final["incremental_no_dedup"] < final["naive_full"]


def test_requests_scenario_copies_each_new_content_once(local_env):
    from backup_cfn.local.runner import quiet_handlers

    quiet_handlers()
    e2e, requests = bench.end_to_end_and_requests(local_env, TINY, threads=2)
    objects = len(bench.source_keys(3, 1))
    assert e2e["objects"] == requests["objects"] == objects and e2e["ratio"] > 0
    assert requests["run_status"] == "SUCCEEDED"
    assert requests["changed_objects"] == requests["new_contents"] == max(1, round(objects * 0.1))
    assert requests["s3"]["CopyObject"] == requests["new_contents"]
    assert requests["s3"]["PutObject"] == 3      # one manifest per user
    # One record a user, and the run's creation (its header and tallies). A job storing new content
    # takes its lease with its first claim (one transaction) and claims the rest on their own; each
    # new content is marked once. Besides: the initiator's pointer and IN_PROGRESS writes, the close.
    ddb, changed_users = requests["dynamodb"], requests["users_changed"]
    assert ddb["UpdateItem"] == requests["new_contents"] + (requests["new_contents"] - changed_users) + 2 + 1
    # The job enqueued last of the (one) shard says in its first try that it empties the shard; when
    # it does, the header refuses that try (the last open shard) and its second commits, then it
    # closes the run. When another job finishes last, the guess costs one refused try and the last
    # job's first try is refused by the tally (it empties the shard), its second by the header.
    assert ddb["TransactWriteItems"] - (3 + 1 + changed_users) in (1, 1 + 2)
    text = bench.table({"requests": requests, "end_to_end": e2e})
    assert "2 requests" in text and "4 end to end" in text and "per new object" in text
    # The first run's profile: every user one invocation; the pollers' time is invocations or waiting.
    profile = e2e["profile"]
    assert profile["invocations"] == 3
    assert profile["requests_per_object"]["all"] == pytest.approx(
        sum(sum(by.values()) for by in e2e["requests"].values()) / objects, abs=0.01)
    assert 0 < profile["busy_share"] <= 1 and 0 <= profile["idle_share"] <= 1
    # The first run's requests are counted too: one copy per distinct content at most. The scale
    # model fitted on both runs gives the measured incremental run back at the bench's own shape.
    from backup_cfn.bench import scale

    assert 0 < e2e["requests"]["s3"]["CopyObject"] <= objects
    fitted = scale.fit_from_results({"requests": requests, "end_to_end": e2e})
    modelled = fitted.requests(3, requests["changed_objects"])
    for service in scale.SERVICES:
        assert sum(modelled[service].values()) == pytest.approx(sum(requests[service].values()), rel=0.01)


def test_unknown_scenario_is_one_clear_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--only", "12", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--only takes scenario numbers 1-11 separated by commas, got '12'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_year_scenario_stores_exactly_what_the_longer_term_rules_keep(local_env):
    from backup_cfn.bench import year as bench_year
    from backup_cfn.local.runner import quiet_handlers

    quiet_handlers()
    sizes = bench_year.YearSizes(users=1, days=10, retention_days=2, keep_weekly=2, keep_monthly=0)
    result = bench_year.storage_over_a_year(local_env, sizes, threads=2)
    assert len(result["series"]) == 10 and result["max_stored_over_unique"] <= 1.02
    # Day 10 is a Saturday (2026-01-10): days 9 and 10 inside retention, days 8 and 7 the checkpoint
    # before the window (day 8 ran less than a day before its start), and the newest of the week before.
    assert result["final"]["kept_snapshots"] == 5
    assert result["final"]["unique_kept"] >= result["final"]["unique_retention_only"]
    # The vault: every kept snapshot restored from it alone, never short of a lock, and (with the
    # default 7-day grid over 10 days) holding what the rules keep plus at most the grid's slack.
    assert result["vault_restored"]["restored"] == result["vault_restored"]["snapshots"] == 5
    assert result["vault_short_days"] == 0 and result["vault_restored"]["problems_total"] == 0
    assert result["vault_over_unique"] >= 1.0
    table = bench.table({"year": result})
    assert "6 year" in table and "6 vault" in table


def test_find_scenario_reads_each_snapshot_once_and_nothing_with_a_warm_cache(local_env, tmp_path):
    from backup_cfn.bench import find as bench_find
    from backup_cfn.local.runner import quiet_handlers

    quiet_handlers()
    one = bench_find.one_user(local_env, days=3)
    # A listing of the user's snapshots, the 3 manifests, and a listing of the user's journal (empty).
    assert one["pool"]["manifests_read"] == 3 and one["pool"]["s3_requests"] == 5
    rig = bench.make_rig(local_env, 60)
    from backup_cfn.ops import demo_data
    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=3, day=1, seed=bench.SEED)
    bench.run_backup(rig, 2)
    every = bench_find.every_user(rig, local_env, tmp_path / "cache")
    assert every["pool"]["manifests_read"] == every["sequential"]["manifests_read"] == 3
    assert (every["cached"]["manifests_read"], every["cached"]["manifests_cached"], every["cached"]["s3_requests"]) == (0, 3, 1)


def test_large_user_scenario_splits_the_first_run_and_extrapolates_to_the_real_timeout(local_env):
    from backup_cfn.local.runner import quiet_handlers

    quiet_handlers()
    result = bench.split_user(local_env, TINY)
    first, incremental = result["first_run"], result["incremental"]
    assert result["objects"] == 150 and first["files_changed"] == 150 and incremental["files_changed"] == 1
    assert first["invocations"] >= 2 and first["parts"] >= 2
    assert incremental["invocations"] <= first["invocations"]
    assert first["invocations_for_200k_at_900s"] >= 1 and first["objects_per_usable_second"] > 0
    assert "8 large user" in bench.table({"split": result})


def test_restore_scenario_restores_every_file_of_one_and_every_user_and_the_raw_baselines(local_env):
    from backup_cfn.bench import restore as bench_restore
    from backup_cfn.local.runner import quiet_handlers
    from backup_cfn.ops import demo_data

    quiet_handlers()
    rig = bench.make_rig(local_env, 60)
    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=3, day=1, seed=bench.SEED)
    bench.run_backup(rig, 2)
    result = bench_restore.restore_speed(rig)
    files = bench.source_keys(3, 1)
    per_user = {}
    for key in files:
        per_user[key.split("/", 1)[0]] = per_user.get(key.split("/", 1)[0], 0) + 1
    one, every = result["one_user"], result["every_user"]
    assert one["users"] == 1 and one["to_s3"]["objects"] == one["to_directory"]["objects"] == per_user[one["user"]]
    assert per_user[one["user"]] == max(per_user.values())          # the user with most files
    assert every["users"] == 3 and every["to_s3"]["objects"] == every["raw_copy"]["objects"] == len(files)
    assert every["to_directory"]["bytes"] == every["raw_get"]["bytes"] == sum(s.size for s in files.values())
    assert one["concurrency"] == 8 and every["concurrency"] == 24
    # What the restore to S3 wrote is the source, byte for byte, under every-user/<user>/.
    s3, landing = rig.clients.s3, f"{rig.settings.source_bucket}-restored"
    key = sorted(files)[0]
    restored = s3.get_object(Bucket=landing, Key=f"every-user/{key}")["Body"].read()
    assert restored == s3.get_object(Bucket=rig.settings.source_bucket, Key=key)["Body"].read()
    assert every["to_s3_over_raw_copy"] > 0 and every["to_directory_over_raw_get"] > 0
    text = bench.table({"restore": result})
    assert "9 restore" in text and "every user (3), " in text


def test_restore_scenario_refuses_a_restore_that_lost_files(local_env, monkeypatch):
    from backup_cfn.bench import restore as bench_restore
    from backup_cfn.engine import restore as engine_restore
    from backup_cfn.local.runner import quiet_handlers
    from backup_cfn.ops import demo_data

    quiet_handlers()
    rig = bench.make_rig(local_env, 60)
    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=1, day=1, seed=bench.SEED)
    bench.run_backup(rig, 2)
    real = engine_restore.restore_to_s3

    def one_problem(*args, **kwargs):
        report = real(*args, **kwargs)
        report.problems.append("x: copy failed")
        return report
    monkeypatch.setattr(engine_restore, "restore_to_s3", one_problem)
    with pytest.raises(RuntimeError, match="1 user\\(s\\) failed"):
        bench_restore.restore_speed(rig)


def test_restore_by_the_stack_scenario_restores_every_user_byte_exact(local_env):
    from backup_cfn.bench import restore_jobs as bench_restore_jobs
    from backup_cfn.local.runner import quiet_handlers
    from backup_cfn.ops import demo_data

    quiet_handlers()
    rig = bench.make_rig(local_env, 60)
    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=3, day=1, seed=bench.SEED)
    bench.run_backup(rig, 2)
    result = bench_restore_jobs.distributed_restore(rig, local_env)
    files = bench.source_keys(3, 1)
    assert (result["users"], result["users_restored"], result["files"]) == (3, 3, len(files))
    assert result["byte_exact"] and result["invocations"] >= 3 and result["over_raw_copy"] > 0
    assert result["bytes"] == sum(s.size for s in files.values())
    assert "10 restore by stack" in bench.table({"restore_by_stack": result})


def test_restore_by_the_stack_scenario_refuses_a_restore_that_differs(local_env, monkeypatch):
    from backup_cfn.bench import restore_jobs as bench_restore_jobs
    from backup_cfn.engine import restore as engine_restore
    from backup_cfn.local.runner import quiet_handlers
    from backup_cfn.ops import demo_data

    quiet_handlers()
    rig = bench.make_rig(local_env, 60)
    demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=1, day=1, seed=bench.SEED)
    bench.run_backup(rig, 2)
    real = engine_restore.copy_entry

    def corrupt_one(s3, bucket, path, entry, target_bucket, key, **kwargs):
        problem = real(s3, bucket, path, entry, target_bucket, key, **kwargs)
        if problem is None and not getattr(corrupt_one, "done", False):
            corrupt_one.done = True
            s3.put_object(Bucket=target_bucket, Key=key, Body=b"not what was backed up")
        return problem
    monkeypatch.setattr("backup_cfn.engine.restore_jobs.copy_entry", corrupt_one)
    with pytest.raises(RuntimeError, match="objects differ"):
        bench_restore_jobs.distributed_restore(rig, local_env)
