"""Capture queue (S3's events through EventBridge) -> each user's changes in the journal, in seconds.

Partial batch failures (Lambda's ReportBatchItemFailures,
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): only the messages
whose change could not be recorded are returned, offered again after contract.CAPTURE_RETRY_SECONDS
(their visibility), and dead-lettered after contract.CAPTURE_MAX_RECEIVES deliveries.
"""
from __future__ import annotations

from backup_cfn import contract
from backup_cfn.engine import attempts, capture
from backup_cfn.engine.attempts import Deadline
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get()
    records = capture.records_of(event)
    deadline = Deadline(getattr(context, "get_remaining_time_in_millis", None), settings)
    outcome = capture.capture_batch(clients, settings, records, deadline=deadline)
    handles = {r.message_id: r for r in records}
    for message_id in outcome.failed_ids():
        record = handles[message_id]
        if record.receipt_handle and settings.capture_queue_url:
            # Back in a moment; after its last delivery at once, so the next receive dead-letters it.
            last = record.receive_count >= contract.CAPTURE_MAX_RECEIVES
            attempts.change_visibility(clients.sqs, settings, record.receipt_handle,
                                       0 if last else contract.CAPTURE_RETRY_SECONDS, queue_url=settings.capture_queue_url)
    for message_id, reason in outcome.ignored:
        logger.warning("event ignored: not a change of a user's file", extra={"message_id": message_id, "reason": reason})
    for message_id, error in outcome.failed.items():
        logger.warning("change not captured; it will be retried", extra={"message_id": message_id, "error": error,
                                                                          "receive_count": handles[message_id].receive_count})
    for user in outcome.users_bursting:
        logger.error("burst of changes: a user's files are changing at an unusual rate",
                     extra={"user": user, "threshold": settings.burst_changes,
                            "window_seconds": contract.BURST_WINDOW_SECONDS})
    runtime.publish_metrics(settings, metric_values(outcome))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in outcome.failed_ids()]}


def metric_values(outcome: capture.BatchOutcome) -> dict:
    values = {contract.METRIC_CHANGES_CAPTURED: outcome.captured,
              contract.METRIC_CAPTURE_EVENTS_IGNORED: len(outcome.ignored)}
    if outcome.captured:
        values[contract.METRIC_CAPTURE_LATENCY] = round(outcome.latency_seconds, 3)
    if outcome.users_bursting:
        values[contract.METRIC_USERS_BURSTING] = len(outcome.users_bursting)
    return values
