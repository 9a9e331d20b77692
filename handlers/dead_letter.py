"""Dead-lettered job messages -> each job recorded FAILED with its reason, its run closed."""
from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from backup_cfn import contract
from backup_cfn.engine import deadletters
from handlers import runtime
from handlers.runtime import logger


def process_record(record: SQSRecord, outcomes: list) -> None:
    clients, settings = runtime.get()
    outcome = deadletters.record_dead_letter(clients, settings, record.body)
    outcomes.append(outcome)
    logger.error("job dead-lettered", extra={"message_id": record.message_id, "outcome": outcome.status,
                                             "run_id": outcome.job.run_id if outcome.job else None,
                                             "user": outcome.job.user if outcome.job else None,
                                             "reason": outcome.reason})


@logger.inject_lambda_context
def handler(event, context):
    response, outcomes = runtime.process_sqs_batch(event, context, process_record)
    _, settings = runtime.get()
    runtime.publish_metrics(settings, metric_values(outcomes))
    return response


def metric_values(outcomes: list) -> dict:
    """Every dead-lettered message counts (the alarm's metric); newly recorded failures count as
    failed users, as the worker counts the ones it records; a run closed here is a completed run."""
    values = {contract.METRIC_JOBS_DEAD_LETTERED: len(outcomes),
              contract.METRIC_USERS_FAILED: sum(1 for o in outcomes if o.status == deadletters.RECORDED)}
    finished = sum(1 for o in outcomes if o.finalized_run is not None)
    if finished:
        values[contract.METRIC_RUNS_SUCCEEDED] = finished
    return values
