"""`backup-cfn find`: which snapshots hold a path matching a glob (or a given SHA-256), across the
whole retention, newest first; for each version of a file, the first and last run it was seen in
and whether the user's newest snapshot still holds it. With --user, the user's journal too
(continuous protection): versions captured between runs, even those no snapshot ever held.

How it reads (docs/engine.md, "Finding, listing and comparing snapshots"): the listing of
manifests/ (one request per 1,000 snapshots) narrows the search by user and period; the snapshots
left are read in parallel on a bounded pool; with --cache, manifests read before are taken from a
local cache by ETag.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from backup_cfn.config import Environment
from backup_cfn.engine.catalog import (
    READ_THREADS,
    ManifestCache,
    ReadStats,
    in_period,
    newest_per_user,
    read_snapshots,
)
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine import naming
from backup_cfn.engine.history import add_journal_versions, collect_versions, mark_states, matcher, newest_first
from backup_cfn.engine.manifest import list_snapshots
from backup_cfn.engine.pointintime import journal_changes, view_at
from backup_cfn.engine.settings import RequestCounter
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes
from backup_cfn.output import print_json, print_line, print_table, side_console
from backup_cfn.ops.selection import check_user, period
from backup_cfn.ops.target import DeployedEnvironment, connect

DEFAULT_CACHE = Path.home() / ".cache" / "backup-cfn" / "manifests"
SHA_SHOWN = 12


def find(target: DeployedEnvironment, pattern: str, *, user: str | None = None, since: str | None = None,
         until: str | None = None, cache: ManifestCache | None = None, threads: int = READ_THREADS) -> dict:
    """The `find` document (docs/json.md, backup-cfn/find)."""
    try:
        match = matcher(pattern)
    except ValueError as exc:
        raise UserError(f"find: {exc}") from None
    if user is not None:
        check_user(user)
    first, last = period(since, until)
    s3, bucket = target.clients.s3, target.settings.backup_bucket
    counter = RequestCounter()
    counter.attach(s3)
    began = time.monotonic()
    refs = list_snapshots(s3, bucket, user)
    changes, segments = [], 0
    if user is not None:
        # One user's journal: one listing from --since, and its segments (the whole journal of every
        # user would be a read per captured batch; docs/operating.md).
        until_moment = naming.run_time(last) if last else target.settings.now()
        changes, segments = journal_changes(s3, bucket, user, since=naming.run_time(first) if first else None,
                                            until=until_moment, threads=threads)
    if user is not None and not refs and not segments:
        raise RestoreError(f"no backups of user {user!r} in s3://{bucket}")
    newest = newest_per_user(refs)
    scope = in_period(refs, first, last)
    stats = ReadStats()
    newest_read = {}

    def remember_newest(snapshots):
        for ref, manifest in snapshots:
            if newest[ref.user] == ref:
                newest_read[ref.user] = manifest
            yield ref, manifest

    versions = collect_versions(remember_newest(read_snapshots(s3, bucket, scope, threads=threads, cache=cache,
                                                               stats=stats)), match)
    if changes:
        add_journal_versions(versions, user, changes, match)
        # Each state against the user's files now (the newest snapshot and the journal after it).
        newest_read[user] = view_at(s3, bucket, user, target.settings.now()).manifest
    # A state needs the user's newest snapshot, which --until may have left out.
    missing = sorted(({v.user for v in versions.values()} - set(newest_read)) & set(newest))
    for ref, manifest in read_snapshots(s3, bucket, [newest[u] for u in missing], threads=threads, cache=cache,
                                        stats=stats):
        newest_read[ref.user] = manifest
    mark_states(versions.values(), newest_read)
    if cache is not None and user is None:
        cache.forget_except(bucket, refs)
    found = newest_first(versions.values())
    return {
        "pattern": pattern, "user": user, "since": first, "until": last,
        "versions": [v.to_json() for v in found],
        "matches": len(found), "paths": len({(v.user, v.path) for v in found}),
        "users": len({v.user for v in found}),
        "snapshots_listed": len(refs), "snapshots_searched": len(scope), "journal_segments_read": segments,
        "manifests_read": stats.read, "manifests_cached": stats.cached, "problems": stats.problems,
        "s3_requests": counter.total("s3"), "seconds": round(time.monotonic() - began, 3),
    }


def _seen(run_id: str | None, captured: str | None, pick) -> str:
    """A run, or a capture's time (continuous protection), whichever `pick` chooses as a time."""
    if not captured:
        return run_id or ""
    as_run = naming.run_id_for(naming.parse_iso(captured))
    return run_id if run_id and pick(run_id, as_run) == run_id else f"captured {captured}"


def do_find(env: Environment, *, console: Console, pattern: str, user: str | None = None, since: str | None = None,
            until: str | None = None, as_json: bool = False, use_cache: bool = False) -> dict:
    target = connect(env)
    cache = ManifestCache(DEFAULT_CACHE) if use_cache else None
    with side_console(console, as_json).status(f"searching snapshots for {pattern}"):
        document = find(target, pattern, user=user, since=since, until=until, cache=cache)
    if as_json:
        return print_json("find", document)
    if not document["versions"]:
        print_line(console, f"no match: none of {document['snapshots_searched']} snapshot(s) holds a file matching "
                            f"{pattern!r}")
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in ("user", "path", "state", "first seen", "last seen", "snapshots", "size", "sha256"):
            table.add_column(column, no_wrap=True, justify="right" if column in ("snapshots", "size") else "left")
        for v in document["versions"]:
            state = v["state"] if v["state"] != "deleted" else f"deleted (not in {v['newest_run']})"
            first, last = _seen(v["first_run"], v["first_captured"], min), _seen(v["last_run"], v["last_captured"], max)
            table.add_row(v["user"], v["path"], state, first, last, str(v["snapshots"]),
                          human_bytes(v["size"]), v["sha256"][:SHA_SHOWN])
        print_table(console, table)
    for problem in document["problems"]:
        print_line(console, f"problem: {problem}")
    cached = f", {document['manifests_cached']} from the cache" if document["manifests_cached"] else ""
    print_line(console, f"{document['matches']} version(s) of {document['paths']} path(s) in "
                        f"{document['snapshots_searched']} of {document['snapshots_listed']} snapshot(s): "
                        f"{document['manifests_read']} read{cached}, {document['s3_requests']} S3 request(s), "
                        f"{document['seconds']:.2f} s")
    return document
