"""Daily garbage collection: expire snapshots past the retention, delete unreferenced content."""
from __future__ import annotations

from backup_cfn.engine import pruner
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get()
    dry_run = bool((event or {}).get("dry_run", False)) if isinstance(event, dict) else False
    summary = pruner.scheduled_prune(clients, settings, dry_run=dry_run).to_dict()
    logger.info("garbage collection done", extra={"prune": summary})
    return summary
