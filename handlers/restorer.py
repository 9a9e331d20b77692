"""Restore jobs -> users restored (engine/restore_jobs.py), with partial batch failures; the same
function takes the restore dead-letter queue's messages and records those users FAILED."""
from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from backup_cfn import contract
from backup_cfn.engine import restore_jobs
from backup_cfn.engine.errors import InvalidJob
from backup_cfn.engine.worker import Delivery
from handlers import runtime
from handlers.runtime import logger


def process_record(record: SQSRecord, outcomes: list, context) -> None:
    clients, settings = runtime.get()
    if settings.restore_dead_letter_queue_arn and record.event_source_arn == settings.restore_dead_letter_queue_arn:
        outcome = restore_jobs.record_dead_letter(clients, settings, record.body)
        outcomes.append(outcome)
        logger.error("restore job dead-lettered", extra={"message_id": record.message_id, "outcome": outcome.status,
                                                          "reason": outcome.reason})
        return
    receive_count = int(record.attributes.approximate_receive_count or 1)
    delivery = Delivery(body=record.body, receipt_handle=record.receipt_handle, receive_count=receive_count,
                        remaining_ms=getattr(context, "get_remaining_time_in_millis", None))
    try:
        outcome = restore_jobs.handle_delivery(clients, settings, delivery)
    except InvalidJob as exc:
        logger.error("invalid restore job; it will reach the dead-letter queue",
                     extra={"message_id": record.message_id, "reason": str(exc)})
        raise
    except Exception as exc:
        final = getattr(exc, "outcome", None)
        if final is not None:
            outcomes.append(final)
        logger.warning("restore job failed; it will be retried",
                       extra={"message_id": record.message_id, "receive_count": receive_count, "error": str(exc)})
        raise
    outcomes.append(outcome)
    logger.info("restore job done", extra={"restore_id": outcome.job.restore_id, "user": outcome.job.user,
                                           "status": outcome.status, **outcome.figures})


@logger.inject_lambda_context
def handler(event, context):
    response, outcomes = runtime.process_sqs_batch(
        event, context, lambda record, outcomes: process_record(record, outcomes, context))
    clients, settings = runtime.get()
    for outcome in outcomes:
        if outcome.closed is not None:
            restore_jobs.publish_summary(clients.sns, settings, outcome.closed)
    runtime.publish_metrics(settings, metric_values(outcomes))
    return response


def metric_values(outcomes: list) -> dict:
    values = {contract.METRIC_USERS_RESTORED: sum(1 for o in outcomes if o.status == restore_jobs.COMPLETED),
              contract.METRIC_RESTORE_USERS_FAILED: sum(1 for o in outcomes if o.status == restore_jobs.FAILED)}
    closed = sum(1 for o in outcomes if o.closed is not None)
    if closed:
        values[contract.METRIC_RESTORES_COMPLETED] = closed
    return values
