"""`make bench` scenario 7: how fast `find` is, and what it costs in requests.

- one user's 60 days: 60 daily backups of one user on the emulator, then `find` for a file name in
  that user's snapshots (target: at most 2 s);
- every user: on the rig of scenarios 4 and 2 (1,000 users, two runs), `find` for a file name across
  all 2,000 snapshots, read one at a time, on the bounded pool, and again with a warm cache.
"""
from __future__ import annotations

import time
from datetime import timedelta

from backup_cfn.bench.rig import SEED, START, make_rig, progress, run_backup

ONE_USER_DAYS = 60
PATTERN = "report-01.pdf"


def _find(rig, env, *, user=None, threads=None, cache=None) -> dict:
    from backup_cfn.engine.catalog import READ_THREADS
    from backup_cfn.ops.find import find
    from backup_cfn.ops.target import DeployedEnvironment

    target = DeployedEnvironment(env, rig.clients, rig.settings, {})
    threads = threads or READ_THREADS
    started = time.perf_counter()
    result = find(target, PATTERN, user=user, threads=threads, cache=cache)
    return {"seconds": round(time.perf_counter() - started, 3), "s3_requests": result["s3_requests"],
            "manifests_read": result["manifests_read"], "manifests_cached": result["manifests_cached"],
            "snapshots_searched": result["snapshots_searched"], "matches": result["matches"], "threads": threads}


def one_user(env, days: int = ONE_USER_DAYS, threads: int = 2) -> dict:
    from backup_cfn.ops import demo_data

    rig = make_rig(env, 60)
    for day in range(1, days + 1):
        rig.clock.moment = START + timedelta(days=day - 1)
        demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=1, day=day, seed=SEED)
        run_backup(rig, threads)
    user = demo_data.user_name(1)
    return {"days": days, "pool": _find(rig, env, user=user), "sequential": _find(rig, env, user=user, threads=1),
            "target_seconds": 2.0}


def every_user(rig, env, cache_dir) -> dict:
    """On a rig that holds 1,000 users and two runs (scenarios 4 and 2)."""
    from backup_cfn.engine.catalog import ManifestCache

    progress("  7 find across every user: one at a time, pooled, cached")
    cache = ManifestCache(cache_dir)
    sequential = _find(rig, env, threads=1)
    pooled = _find(rig, env)
    _find(rig, env, cache=cache)                     # fills the cache
    cached = _find(rig, env, cache=cache)
    return {"sequential": sequential, "pool": pooled, "cached": cached}


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 7's rows of the bench table."""
    one, every = results.get("find_one_user"), results.get("find_all")
    rows = []
    if one:
        rows.append(("7 find", f"1 user, {one['days']} days: {one['pool']['s3_requests']} requests",
                     f"{one['pool']['seconds']} s (one at a time {one['sequential']['seconds']} s)", "<= 2 s"))
    if every:
        rows.append(("" if one else "7 find", f"every user, {every['pool']['snapshots_searched']} snapshots: "
                     f"{every['pool']['s3_requests']} requests, cached {every['cached']['s3_requests']}",
                     f"{every['pool']['seconds']} s (one at a time {every['sequential']['seconds']} s, cached "
                     f"{every['cached']['seconds']} s)", "(report)"))
    return rows
