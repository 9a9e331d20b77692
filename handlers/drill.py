"""Weekly restore drill: re-read and re-hash the newest snapshots of a random sample of users,
record the result in the runs table and publish it as a metric (the drill alarm watches it)."""
from __future__ import annotations

from backup_cfn import contract
from backup_cfn.engine import drill
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get()
    report = drill.handle_drill_event(clients, settings, event if event is not None else {})
    failed = report.result == drill.FAILED
    runtime.publish_metrics(settings, {contract.METRIC_DRILLS_FAILED: int(failed),
                                       contract.METRIC_DRILLS_PASSED: int(not failed)})
    (logger.error if failed else logger.info)("restore drill done", extra={"drill": report.to_json()})
    return report.to_json()
