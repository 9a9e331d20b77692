"""The bench's results: the table printed at the end and results.json."""
from __future__ import annotations

import json
from pathlib import Path


def table(results: dict) -> str:
    rows = []
    s = results.get("storage")
    if s:
        f = s["final"]
        rows.append(("1 storage", f"stored {f['stored'] / 1024**2:.1f} MiB vs unique {f['unique'] / 1024**2:.1f} MiB",
                     f"{s['stored_over_unique']:.3f}x unique (max {s['max_stored_over_unique']:.3f})", "<= 1.02x"))
        rows.append(("", f"naive full {f['naive_full'] / 1024**2:.0f} MiB, incremental {f['incremental_no_dedup'] / 1024**2:.1f} MiB",
                     f"naive {s['naive_over_stored']}x, incr. {s['incremental_over_stored']}x stored", ""))
    r = results.get("requests")
    if r:
        rows.append(("2 requests", f"S3 {r['s3_total']} (min {r['minimum_s3']}), DynamoDB {r['dynamodb_total']} "
                                   f"(min {r['minimum_dynamodb']})",
                     f"S3 {r['s3_over_minimum']}x, DDB {r['dynamodb_over_minimum']}x, all {r['total_over_minimum']}x",
                     "<= 1.1x"))
    h = results.get("hashing")
    if h:
        rows.append(("3 hashing", f"engine {h['engine_mib_per_second']} MiB/s, hashlib {h['hashlib_mib_per_second']} MiB/s",
                     f"{h['ratio']}", ">= 0.9"))
    e = results.get("end_to_end")
    if e:
        rows.append(("4 end to end", f"{e['objects']} objects: {e['first_run_objects_per_second']}/s vs raw copy "
                                     f"{e['raw_copy_objects_per_second']}/s at {e['concurrency']}",
                     f"{e['ratio']} of raw", "(ratio)"))
        pr = e.get("profile")
        if pr:
            per = pr["requests_per_object"]
            rows.append(("", f"per new object: {per['all']} requests (S3 {per.get('s3')}, DDB {per.get('dynamodb')}, "
                             f"SQS {per.get('sqs')})",
                         f"pollers busy {pr['busy_share']:.0%}, idle {pr['idle_share']:.0%}; "
                         f"{pr['ms_per_request_in_invocations']} ms/request", ""))
    t = results.get("templates")
    if t:
        rows.append(("5 templates", f"{t['templates']} templates, best of {t['rounds']}",
                     f"{t['best_ms']} ms (median {t['median_ms']})", "-"))
    from backup_cfn.bench import find, restore, restore_jobs, year
    rows += year.table_rows(results.get("year")) + find.table_rows(results.get("find_one_user"), results.get("find_all"))
    sp = results.get("split")
    if sp:
        f, i = sp["first_run"], sp["incremental"]
        rows.append(("8 large user", f"{sp['objects']} objects, {sp['deadline_seconds']} s invocations: first run "
                                     f"{f['invocations']}, incremental {i['invocations']}",
                     f"200,000 objects at 900 s: {f['invocations_for_200k_at_900s']} + "
                     f"{i['invocations_for_200k_at_900s']} invocations", "bounded"))
    rows += restore.table_rows(results.get("restore"))
    rows += restore_jobs.table_rows(results.get("restore_by_stack"))
    widths = [max(len(row[i]) for row in rows + [("scenario", "measured", "result", "target")]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(("scenario", "measured", "result", "target"), widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)



def write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
