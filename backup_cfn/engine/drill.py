"""Restore drills, like AWS Backup's restore testing: prove on a schedule that backups restore.

A drill takes the newest snapshot of a random sample of users and streams every content object
those snapshots name through SHA-256, as a restore would read it, without writing a copy
anywhere: a content object that is missing, unreadable (a key or permission problem), of another
size or another hash fails the drill. The result, its figures and its duration go to the runs
table as a DRILL record (shown by `backup-cfn runs`), and the handler publishes a metric an alarm
watches.
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.catalog import ReadStats, newest_per_user, read_snapshots
from backup_cfn.engine.contentstore import from_item, to_item
from backup_cfn.engine.errors import InvalidJob
from backup_cfn.engine.integrity import ContentVersions
from backup_cfn.engine.manifest import SnapshotRef, list_snapshots
from backup_cfn.engine.readback import ReadTally, read_back_genuine
from backup_cfn.engine.settings import Settings

DRILL_ITEM = "DRILL"
# Record statuses, disjoint from run and job statuses so the ByStatus index tells them apart.
DRILL_PASSED, DRILL_FAILED = "DRILL_PASSED", "DRILL_FAILED"
PASSED, FAILED = "PASSED", "FAILED"
MAX_RECORDED_PROBLEMS = 20
MAX_PROBLEM_CHARS = 300
MAX_SAMPLE = 1000


@dataclass
class DrillReport(ReadTally):
    drill_id: str
    trigger: str
    started_at: str
    users_asked: int
    snapshots: list[str] = field(default_factory=list)    # "user@run" drilled
    contents: int = 0
    completed_at: str = ""

    @property
    def result(self) -> str:
        return PASSED if self.snapshots and not self.problems else FAILED

    def to_json(self) -> dict:
        return {"drill_id": self.drill_id, "result": self.result, "trigger": self.trigger,
                "started_at": self.started_at, "completed_at": self.completed_at, "seconds": round(self.seconds, 3),
                "users_asked": self.users_asked, "users_sampled": len(self.snapshots), "snapshots": list(self.snapshots),
                "files": self.files, "contents": self.contents, "bytes": self.bytes,
                "problems_total": len(self.problems), "problems": self.problems[:MAX_RECORDED_PROBLEMS]}


def run_drill(clients, settings: Settings, *, drill_id: str, users: int | None = None, trigger: str = "schedule",
              seed: int | None = None) -> DrillReport:
    """Drill the newest snapshots of `users` random users (default: settings.drill_users)."""
    count = settings.drill_users if users is None else users
    newest = newest_per_user(list_snapshots(clients.s3, settings.backup_bucket))
    return drill_snapshots(ContentVersions(clients.s3, settings.backup_bucket), newest, count, drill_id=drill_id,
                           trigger=trigger, now=settings.now(), seed=seed, threads=settings.job_threads)


def drill_snapshots(reader: ContentVersions, newest: dict[str, SnapshotRef], count: int, *, drill_id: str,
                    trigger: str, now, seed: int | None = None, threads: int = 8,
                    problems: list[str] = ()) -> DrillReport:
    """Read and re-hash every content the sampled users' newest snapshots name, as a restore would
    read it (`reader`: the current key first, or by version in the vault). A content read from
    other than its first candidate was written over: restorable, and reported as tampering."""
    if not 1 <= count <= MAX_SAMPLE:
        raise InvalidJob(f"a drill samples 1 to {MAX_SAMPLE} users, not {count}")
    began = time.monotonic()
    report = DrillReport(drill_id, trigger, naming.iso(now), count)
    report.problems.extend(problems)
    s3, bucket = reader.s3, reader.bucket
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    chosen = sorted(rng.sample(sorted(newest), min(count, len(newest))))
    if not chosen:
        report.problems.append(f"no snapshots in s3://{bucket} to drill")
    expected: dict[str, tuple[int, str]] = {}     # content hash -> (size, first "user@run:path" naming it)
    stats = ReadStats()
    for ref, manifest in read_snapshots(s3, bucket, [newest[u] for u in chosen], threads=threads, stats=stats):
        report.snapshots.append(f"{ref.user}@{ref.run_id}")
        report.files += len(manifest.entries)
        for path, entry in sorted(manifest.entries.items()):
            expected.setdefault(entry.sha256, (entry.size, f"{ref.user}@{ref.run_id}:{path}"))
    report.problems.extend(stats.problems)

    def check(item: tuple[str, tuple[int, str]]) -> tuple[int, str | None]:
        sha, (size, where) = item
        back = read_back_genuine(reader, sha, size)
        problem = back.problem or back.tampered
        return back.read, problem and f"{where}: {problem}"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for read, problem in pool.map(check, sorted(expected.items())):
            report.contents += 1
            report.bytes += read
            if problem:
                report.problems.append(problem)
    report.seconds = time.monotonic() - began
    report.completed_at = naming.iso(now)
    return report


def record_drill(dynamodb, settings: Settings, report: DrillReport) -> dict:
    """The DRILL record in the runs table (a drill run again with the same ID replaces it)."""
    record = {
        contract.RUNS_PARTITION_KEY: report.drill_id, contract.RUNS_SORT_KEY: DRILL_ITEM,
        "status": DRILL_PASSED if report.result == PASSED else DRILL_FAILED,
        **{k: v for k, v in report.to_json().items() if k not in ("drill_id", "seconds")},
        "seconds": Decimal(str(round(report.seconds, 3))),
        "problems": [p[:MAX_PROBLEM_CHARS] for p in report.problems[:MAX_RECORDED_PROBLEMS]],
        contract.RUNS_TTL_ATTRIBUTE: naming.expires_at(report.drill_id, settings.retention_days),
    }
    dynamodb.put_item(TableName=settings.runs_table, Item=to_item(record))
    return record


def get_drill(dynamodb, settings: Settings, drill_id: str) -> dict | None:
    key = {contract.RUNS_PARTITION_KEY: {"S": drill_id}, contract.RUNS_SORT_KEY: {"S": DRILL_ITEM}}
    item = dynamodb.get_item(TableName=settings.runs_table, Key=key, ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def recent_drills(dynamodb, settings: Settings, limit: int = 10) -> list[dict]:
    """The newest drills, passed or failed, newest first, through the ByStatus index."""
    found = []
    for status in (DRILL_PASSED, DRILL_FAILED):
        response = dynamodb.query(
            TableName=settings.runs_table, IndexName=contract.RUNS_BY_STATUS_INDEX,
            KeyConditionExpression="#s = :status", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":status": {"S": status}}, ScanIndexForward=False, Limit=limit,
        )
        found.extend(from_item(i) for i in response.get("Items", []))
    found = [d for d in found if d.get(contract.RUNS_SORT_KEY) == DRILL_ITEM]
    return sorted(found, key=lambda d: d[contract.RUNS_PARTITION_KEY], reverse=True)[:limit]


def handle_drill_event(clients, settings: Settings, event) -> DrillReport:
    """A scheduled event (EventBridge's `time` names the drill), `backup-cfn drill`'s
    {"time": ..., "users": N, "source": "backup-cfn.cli"}, or {} (now, the configured sample);
    the drill is run and recorded."""
    if not isinstance(event, dict):
        raise InvalidJob("a drill event is a JSON object")
    moment = event.get("time")
    if moment is not None and not isinstance(moment, str):
        raise InvalidJob(f"event time is not an ISO 8601 timestamp: {moment!r}")
    try:
        drill_id = naming.run_id_from_event_time(moment) if moment else naming.run_id_for(settings.now())
    except ValueError:
        raise InvalidJob(f"event time is not an ISO 8601 timestamp: {moment!r}") from None
    users = event.get("users")
    if users is not None and (isinstance(users, bool) or not isinstance(users, int)):
        raise InvalidJob(f"event 'users' must be a whole number, got {users!r}")
    trigger = "manual" if event.get("source") == "backup-cfn.cli" else "schedule"
    report = run_drill(clients, settings, drill_id=drill_id, users=users, trigger=trigger)
    record_drill(clients.dynamodb, settings, report)
    return report
