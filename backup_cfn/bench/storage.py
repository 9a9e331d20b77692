"""Scenario 1, storage over time: the engine's real backups and garbage collection, day by day,
over the demo data generator's users, against the unique content bytes, a naive daily full copy
and incremental-without-dedup; and its chart."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from backup_cfn.bench.rig import (SEED, START, Sizes, make_rig, progress, run_backup, save_chart, source_keys,
                                  stored_content_bytes)


def storage_over_time(env, sizes: Sizes, threads: int) -> dict:
    from backup_cfn.engine.pruner import prune
    from backup_cfn.ops import demo_data

    rig = make_rig(env, sizes.retention_days)
    history: list[dict] = []       # per run: source key -> FileSpec (content_seed names the content)
    days, changed_per_day = [], []
    started = time.perf_counter()
    for day in range(1, sizes.retention_days + sizes.extra_days + 1):
        rig.clock.moment = START + timedelta(days=day - 1)
        report = demo_data.generate(rig.clients.s3, rig.settings.source_bucket, users=sizes.storage_users, day=day,
                                   seed=SEED)
        if day > 1:
            changed_per_day.append(report.uploaded / report.files)
        record = run_backup(rig, threads)
        if record.get("status") != "SUCCEEDED":
            raise RuntimeError(f"day {day}: run ended {record.get('status')}: {record}")
        history.append(source_keys(sizes.storage_users, day))
        rig.clock.moment = START + timedelta(days=day - 1, hours=4)
        prune(rig.clients, rig.settings)
        kept = history[-sizes.retention_days:]   # the collector keeps the runs inside the retention
        contents = {spec.content_seed: spec.size for snap in kept for spec in snap.values()}
        per_user = {(key.split("/", 1)[0], spec.content_seed): spec.size for snap in kept for key, spec in snap.items()}
        if day % 10 == 0:
            progress(f"  day {day}")
        days.append({
            "day": day,
            "stored": stored_content_bytes(rig),
            "unique": sum(contents.values()),
            "naive_full": sum(spec.size for snap in kept for spec in snap.values()),
            "incremental_no_dedup": sum(per_user.values()),
            "files": report.files,
        })
    last = days[-1]
    return {
        "users": sizes.storage_users, "files_last_day": last["files"],
        "retention_days": sizes.retention_days, "days": len(days),
        "daily_churn": round(sum(changed_per_day) / max(1, len(changed_per_day)), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "series": days,
        "final": last,
        "stored_over_unique": round(last["stored"] / last["unique"], 4),
        "max_stored_over_unique": round(max(d["stored"] / d["unique"] for d in days), 4),
        "naive_over_stored": round(last["naive_full"] / last["stored"], 2),
        "incremental_over_stored": round(last["incremental_no_dedup"] / last["stored"], 3),
        "target": "stored <= 1.02 x unique",
    }


def chart(storage: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = storage["series"]
    days = [d["day"] for d in series]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for key, label, style in (("naive_full", "naive daily full copy", "--"),
                              ("incremental_no_dedup", "incremental, no dedup (AWS Backup's model)", "-."),
                              ("stored", "backup-cfn stored", "-"),
                              ("unique", "unique content (whole-file dedup limit)", ":")):
        ax.plot(days, [d[key] / 1024**2 for d in series], style, label=label, linewidth=2 if key == "stored" else 1.5)
    ax.set_xlabel("day")
    ax.set_yscale("log")  # the naive copy grows ~30x past the others; a log axis keeps all four readable
    ax.set_ylabel("MiB (log scale)")
    ax.set_title(f"Storage over {storage['days']} days: {storage['users']} users ({storage['files_last_day']} files), "
                 f"{storage['daily_churn']:.1%} of files new or changed a day, {storage['retention_days']}-day retention", fontsize=10)
    save_chart(fig, ax, path)


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 1's rows of the bench table."""
    s = results.get("storage")
    if not s:
        return []
    f = s["final"]
    return [("1 storage", f"stored {f['stored'] / 1024**2:.1f} MiB vs unique {f['unique'] / 1024**2:.1f} MiB",
             f"{s['stored_over_unique']:.3f}x unique (max {s['max_stored_over_unique']:.3f})", "<= 1.02x"),
            ("", f"naive full {f['naive_full'] / 1024**2:.0f} MiB, incremental {f['incremental_no_dedup'] / 1024**2:.1f} MiB",
             f"naive {s['naive_over_stored']}x, incr. {s['incremental_over_stored']}x stored", "")]
