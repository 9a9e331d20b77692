"""The bench's results: the table printed at the end and results.json."""
from __future__ import annotations

import json
from pathlib import Path

from backup_cfn.bench import continuous, engine_runs, find, micro, restore, restore_jobs, split, storage, year

# Each scenario's rows of the table, in the scenarios' order; a scenario that did not run adds none.
SCENARIO_ROWS = (storage.table_rows, engine_runs.request_rows, micro.hashing_rows, engine_runs.end_to_end_rows,
                 micro.template_rows, year.table_rows, find.table_rows, split.table_rows, restore.table_rows,
                 restore_jobs.table_rows, continuous.table_rows)
HEADER = ("scenario", "measured", "result", "target")


def table(results: dict) -> str:
    rows = [row for rows_of in SCENARIO_ROWS for row in rows_of(results)]
    widths = [max(len(row[i]) for row in rows + [HEADER]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
