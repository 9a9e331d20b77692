"""Daily garbage collection: expire snapshots past the retention, delete unreferenced content."""
from __future__ import annotations

from backup_cfn.engine import pruner
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get()
    dry_run = bool((event or {}).get("dry_run", False)) if isinstance(event, dict) else False
    report = pruner.prune(clients, settings, dry_run=dry_run)
    summary = report.to_dict()
    logger.info("garbage collection done", extra={"prune": summary})
    if clients.sns is not None and settings.topic_arn and (report.content_deleted or report.manifests_expired):
        clients.sns.publish(TopicArn=settings.topic_arn, Subject=f"backup-cfn {settings.stack_name}: pruned",
                            Message="\n".join(f"{k}: {v}" for k, v in summary.items()))
    return summary
