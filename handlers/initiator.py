"""Daily schedule -> one run: discover users, record the run, enqueue one job per user."""
from __future__ import annotations

from backup_cfn import contract
from backup_cfn.engine import initiator
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get()
    result = initiator.handle_schedule_event(clients, settings, event)
    logger.info("run started", extra={"run": result.to_dict()})
    if result.finalized_run is not None:
        runtime.publish_metrics(settings, {contract.METRIC_RUNS_SUCCEEDED: 1})
    return result.to_dict()
