"""SQS jobs -> per-user backups, with partial batch failures: only failed messages return, at the
time the retry schedule gives them (engine/attempts.py)."""
from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from backup_cfn import contract
from backup_cfn.engine import runs, worker
from backup_cfn.engine.errors import InvalidJob
from handlers import runtime
from handlers.runtime import logger


def process_record(record: SQSRecord, outcomes: list, context) -> None:
    clients, settings = runtime.get()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    delivery = worker.Delivery(body=record.body, receipt_handle=record.receipt_handle, receive_count=receive_count,
                               remaining_ms=getattr(context, "get_remaining_time_in_millis", None))
    try:
        outcome = worker.handle_delivery(clients, settings, delivery)
    except InvalidJob as exc:
        logger.error("invalid job message; it will reach the dead-letter queue",
                     extra={"message_id": record.message_id, "reason": str(exc)})
        raise
    except Exception as exc:
        final = getattr(exc, "outcome", None)
        if final is not None:
            outcomes.append(final)
        logger.warning("job failed; it will be retried", extra={"message_id": record.message_id,
                                                                 "receive_count": receive_count, "error": str(exc)})
        raise
    outcomes.append(outcome)
    logger.info("job done", extra={"run_id": outcome.job.run_id, "user": outcome.job.user,
                                   "status": outcome.status, **outcome.stats})


@logger.inject_lambda_context
def handler(event, context):
    response, outcomes = runtime.process_sqs_batch(
        event, context, lambda record, outcomes: process_record(record, outcomes, context))
    _, settings = runtime.get()
    runtime.publish_metrics(settings, metric_values(outcomes))
    return response


def metric_values(outcomes: list) -> dict:
    completed = [o for o in outcomes if o.status == runs.COMPLETED]
    values = {
        contract.METRIC_USERS_BACKED_UP: len(completed),
        contract.METRIC_USERS_FAILED: sum(1 for o in outcomes if o.status == runs.FAILED),
        contract.METRIC_BYTES_NEW: sum(o.stats.get("bytes_new", 0) for o in completed),
        contract.METRIC_BYTES_DEDUPLICATED: sum(o.stats.get("bytes_deduplicated", 0) for o in completed),
        # The reconciliation's count of changes the journal lacked (the missed-events alarm's metric).
        contract.METRIC_CHANGES_MISSED: sum(o.stats.get("changes_missed", 0) for o in completed),
    }
    # Any completed run counts (PARTIAL included: most users were backed up); UsersFailed tells
    # the two apart. The 26-hour alarm fires when no run completes at all.
    finished = sum(1 for o in outcomes if o.finalized_run is not None)
    if finished:
        values[contract.METRIC_RUNS_SUCCEEDED] = finished
    return values
