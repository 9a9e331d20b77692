"""`make bench` scenario 6: storage over a simulated year with longer-term retention.

The real engine on the emulator, day after day: the demo data generator's users change their files,
a backup runs, then the garbage collector with `keep_monthly` (default 12) besides the 60-day
retention. Each day the bucket's content bytes are set against the unique content of the snapshots
the rules keep (the collector should hold exactly that), against what the 60-day retention alone
would keep (the storage the monthly snapshots cost), and against a daily full copy of the same.

The backups also replicate into a vault in its own account (backup_cfn/bench/vault.py): its lock
pass and S3 lifecycle run in the same simulated time, its bytes (every version it holds) are set
against the kept snapshots themselves: their manifests and the unique content they name (issue
19's bound: at most 1.05x; the content alone is reported too), and at the end every kept snapshot
is restored from the vault alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from backup_cfn.bench.rig import (SEED, START, make_rig, progress, run_backup, save_chart, source_keys,
                                  stored_content_bytes, stored_manifest_bytes)


@dataclass(frozen=True)
class YearSizes:
    users: int
    days: int
    retention_days: int
    keep_weekly: int
    keep_monthly: int
    vault_step_days: int = 7      # the lock extender's grid (contract.VAULT_LOCK_STEP_DAYS)


FULL_YEAR = YearSizes(users=5, days=365, retention_days=60, keep_weekly=0, keep_monthly=12)
# Retention of 3 days: a 1-day grid keeps the lock slack in proportion (7 days would be twice the retention).
QUICK_YEAR = YearSizes(users=2, days=24, retention_days=3, keep_weekly=3, keep_monthly=0, vault_step_days=1)
VAULT_BOUND = 1.05


def unique_bytes(history: dict[str, dict], snapshots) -> int:
    """Unique content of the (user, run_id) snapshots: content_seed names a content."""
    contents = {}
    for user, run_id, _ in snapshots:
        for key, spec in history[run_id].items():
            if key.startswith(f"{user}/"):
                contents[spec.content_seed] = spec.size
    return sum(contents.values())


def vault_over_kept(day: dict) -> float:
    """The vault's bytes over the kept snapshots' own: their manifests and the unique content they name."""
    return day["vault"] / (day["unique_kept"] + day["kept_manifests"])


def storage_over_a_year(env, sizes: YearSizes, threads: int) -> dict:
    from backup_cfn.bench.vault import make_vault_rig, restore_kept
    from backup_cfn.engine.pruner import prune
    from backup_cfn.engine.retention import RetentionPolicy, decide
    from backup_cfn.local.s3_control import set_s3_clock
    from backup_cfn.ops import demo_data

    rig = make_rig(env, sizes.retention_days)
    rig.settings = rig.settings.with_(keep_weekly=sizes.keep_weekly, keep_monthly=sizes.keep_monthly)
    policy = rig.settings.retention()
    vault = make_vault_rig(env, rig, policy, step_days=sizes.vault_step_days)
    retention_only = RetentionPolicy(sizes.retention_days)
    history: dict[str, dict] = {}
    snapshots: list[tuple[str, str, str]] = []
    series = []
    started = time.perf_counter()
    for day in range(1, sizes.days + 1):
        moment = START + timedelta(days=day - 1)
        rig.clock.moment = moment
        set_s3_clock(env.endpoint_url, moment)
        demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=sizes.users, day=day, seed=SEED)
        record = run_backup(rig, threads)
        if record.get("status") != "SUCCEEDED":
            raise RuntimeError(f"day {day}: run ended {record.get('status')}")
        run_id = record["run_id"]
        history[run_id] = source_keys(sizes.users, day)
        snapshots += [(demo_data.user_name(i), run_id, f"{i}/{run_id}") for i in range(1, sizes.users + 1)]
        rig.clock.moment = moment + timedelta(hours=4)
        prune(rig.clients, rig.settings)
        kept = decide(snapshots, rig.clock.moment, policy).kept
        kept_retention_only = decide(snapshots, rig.clock.moment, retention_only).kept
        snapshots = kept                      # what the collector deleted is gone for good
        vault_day = vault.day(moment + timedelta(hours=5))
        vault_bytes, vault_versions, vault_manifests = vault.stored_bytes()
        series.append({
            "vault": vault_bytes, "vault_versions": vault_versions, "vault_short": vault_day["short"],
            "vault_manifests": vault_manifests, "kept_manifests": stored_manifest_bytes(rig),
            "day": day, "stored": stored_content_bytes(rig), "kept_snapshots": len(kept),
            "unique_kept": unique_bytes(history, kept),
            "unique_retention_only": unique_bytes(history, kept_retention_only),
            "naive_full": sum(spec.size for user, run, _ in kept for key, spec in history[run].items()
                              if key.startswith(f"{user}/")),
        })
        if day % 30 == 0:
            progress(f"  day {day}: {len(kept)} snapshots kept")
    last = series[-1]
    progress(f"  restoring the {len(snapshots)} kept snapshots from the vault alone")
    restored = restore_kept(vault, history, snapshots)
    set_s3_clock(env.endpoint_url, None)
    # Past the first retention period: before it the vault holds everything, and so does the rule.
    steady = [d for d in series if d["day"] > sizes.retention_days] or series
    return {
        # The vault against what the kept snapshots are: their manifests (as the primary holds them)
        # and the unique content they name; and its content alone against that content.
        "vault_over_unique": round(vault_over_kept(last), 4),
        "max_vault_over_unique": round(max(vault_over_kept(d) for d in steady), 4),
        "mean_vault_over_unique": round(sum(vault_over_kept(d) for d in steady) / len(steady), 4),
        "days_over_bound": sum(1 for d in steady if vault_over_kept(d) > VAULT_BOUND),
        "steady_days": len(steady),
        "vault_content_over_unique": round((last["vault"] - last["vault_manifests"]) / last["unique_kept"], 4),
        "vault_restored": restored, "vault_bound": VAULT_BOUND,
        "vault_short_days": sum(1 for d in series if d["vault_short"]),
        "users": sizes.users, "days": sizes.days, "retention_days": sizes.retention_days,
        "keep_weekly": sizes.keep_weekly, "keep_monthly": sizes.keep_monthly,
        "seconds": round(time.perf_counter() - started, 1), "series": series, "final": last,
        "stored_over_unique": round(last["stored"] / last["unique_kept"], 4),
        "max_stored_over_unique": round(max(d["stored"] / d["unique_kept"] for d in series), 4),
        "over_retention_only": round(last["unique_kept"] / last["unique_retention_only"], 3),
        "snapshots_per_user": round(last["kept_snapshots"] / sizes.users, 1),
        "target": "stored = unique content of the kept snapshots (<= 1.02x)",
    }


def chart(result: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    days = [d["day"] for d in series]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    rule = f"keep_monthly = {result['keep_monthly']}" if result["keep_monthly"] else f"keep_weekly = {result['keep_weekly']}"
    for key, label, style in (("stored", f"backup-cfn stored, {result['retention_days']} days + {rule}", "-"),
                              ("unique_kept", "unique content of the kept snapshots", ":"),
                              ("vault", "the vault: every version it holds", "-."),
                              ("unique_retention_only", f"{result['retention_days']}-day retention alone", "--")):
        ax.plot(days, [d[key] / 1024**2 for d in series], style, label=label, linewidth=2 if key == "stored" else 1.5)
    ax.set_xlabel("day")
    ax.set_ylabel("MiB")
    ax.set_title(f"Storage over {result['days']} days: {result['users']} users, {rule}", fontsize=10)
    save_chart(fig, ax, path)


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 6's rows of the bench table."""
    y = results.get("year")
    if not y:
        return []
    f = y["final"]
    rule = f"keep_monthly {y['keep_monthly']}" if y["keep_monthly"] else f"keep_weekly {y['keep_weekly']}"
    rows = [("6 year", f"{y['days']} days, {y['users']} users, {rule}: stored {f['stored'] / 1024**2:.1f} MiB",
             f"{y['stored_over_unique']:.3f}x kept (max {y['max_stored_over_unique']:.3f})", "<= 1.02x"),
            ("", f"{y['snapshots_per_user']} snapshots/user; {y['retention_days']} days alone "
                 f"{f['unique_retention_only'] / 1024**2:.1f} MiB", f"{y['over_retention_only']}x retention alone", "")]
    if "vault_over_unique" in y:
        r = y["vault_restored"]
        rows += [("6 vault", f"vault holds {f['vault'] / 1024**2:.1f} MiB in {f['vault_versions']} versions; "
                             f"{r['restored']} of {r['snapshots']} kept snapshots restored from it alone, "
                             f"{r['problems_total']} problems",
                  f"{y['vault_over_unique']:.3f}x kept (max {y['max_vault_over_unique']:.3f})", f"<= {VAULT_BOUND}x"),
                 ("", f"mean {y['mean_vault_over_unique']:.3f}x over {y['steady_days']} days, "
                      f"{y['days_over_bound']} over the bound; content alone {y['vault_content_over_unique']:.3f}x",
                  "", "")]
    return rows
