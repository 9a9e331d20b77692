"""CloudWatch in the emulator answers for SQS's age metric, which `status` reads as continuous
protection's RPO (listed in docs/emulator.md).

AWS: SQS publishes `ApproximateAgeOfOldestMessage` (AWS/SQS, dimension QueueName) to CloudWatch,
"the approximate age of the oldest non-deleted message in the queue"
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html).
moto 5.2.5 publishes no SQS metric, so GetMetricData has no datapoint for it, ever.
"""
from __future__ import annotations

import time

AGE_METRIC = ("AWS/SQS", "ApproximateAgeOfOldestMessage")


def oldest_message_age(account_id: str, region: str, queue_name: str) -> float | None:
    """Seconds since the oldest message still in the queue was sent (0 when empty); None: no queue."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[account_id][region].queues.get(queue_name)
    if queue is None:
        return None
    with queue._messages_lock:
        sent = [m.sent_timestamp for m in queue._messages if m.sent_timestamp]
    return max(0.0, time.time() - min(sent) / 1000) if sent else 0.0


def patch_sqs_age_metric() -> None:
    """GetMetricData of AWS/SQS ApproximateAgeOfOldestMessage answers with the queue's age now, one
    datapoint at the end of the period asked, as the metric SQS would have published. Idempotent."""
    from moto.cloudwatch.models import CloudWatchBackend

    if getattr(CloudWatchBackend, "_backup_cfn_sqs_age", False):
        return
    original = CloudWatchBackend.get_metric_data

    def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
        results = original(self, queries, start_time, end_time, scan_by)
        for query, result in zip([q for q in queries if q.get("ReturnData", True) and "MetricStat" in q], results):
            metric = query["MetricStat"]["Metric"]
            if (metric.get("Namespace"), metric.get("MetricName")) != AGE_METRIC or result["values"]:
                continue
            names = [d["Value"] for d in metric.get("Dimensions", []) if d["Name"] == "QueueName"]
            age = oldest_message_age(self.account_id, self.region_name, names[0]) if names else None
            if age is not None:
                result["values"], result["timestamps"] = [age], [end_time.replace(microsecond=0)]
        return results

    CloudWatchBackend.get_metric_data = get_metric_data
    CloudWatchBackend._backup_cfn_sqs_age = True
