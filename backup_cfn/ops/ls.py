"""`backup-cfn ls`: the files of one snapshot, like restic's `ls -l`: size, modified time, the
start of the content's SHA-256 and the path, one file a line."""
from __future__ import annotations

from rich.console import Console

from backup_cfn.config import Environment
from backup_cfn.engine.manifest import Manifest
from backup_cfn.engine.restore import select
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes
from backup_cfn.output import print_json, print_line
from backup_cfn.ops.selection import snapshot
from backup_cfn.ops.target import connect

SHA_SHOWN = 12


def listing(manifest: Manifest, path_prefix: str | None) -> dict:
    """The `ls` document (docs/json.md, backup-cfn/ls)."""
    entries = select(manifest, path_prefix)
    return {
        "user": manifest.user, "run_id": manifest.run_id, "created_at": manifest.created_at,
        "path_prefix": path_prefix or "", "files": len(entries), "bytes": sum(e.size for e in entries.values()),
        "entries": [{"path": path, **entry.to_json()} for path, entry in sorted(entries.items())],
        "skipped": [{"path": path, "reason": reason} for path, reason in sorted(manifest.skipped.items())
                    if not path_prefix or path.startswith(path_prefix)],
    }


def do_ls(env: Environment, *, console: Console, user: str, run_id: str | None = None, at: str | None = None,
          path_prefix: str | None = None, as_json: bool = False) -> dict:
    target = connect(env)
    manifest = snapshot(target.clients.s3, target.settings.backup_bucket, user, run_id=run_id, at=at,
                        window_start=target.settings.window_start())
    document = listing(manifest, path_prefix)
    if path_prefix and not document["files"]:
        raise UserError(f"run {manifest.run_id} of {user!r} holds no file under {path_prefix!r}")
    if as_json:
        return print_json("ls", document)
    under = f" under {path_prefix}" if path_prefix else ""
    when = f"at {manifest.created_at}" if at else f"at run {manifest.run_id}"
    print_line(console, f"{user} {when}{under}: {document['files']} file(s), "
                        f"{human_bytes(document['bytes'])}")
    for entry in document["entries"]:
        modified = entry["last_modified"].replace("T", " ").rstrip("Z")
        print_line(console, f"{human_bytes(entry['size']):>10}  {modified}  {entry['sha256'][:SHA_SHOWN]}  {entry['path']}")
    for skipped in document["skipped"]:
        print_line(console, f"{'skipped':>10}  {skipped['path']}: {skipped['reason']}")
    return document
