"""`status`'s continuous protection: the environment's current RPO, the age of the oldest change of
the source not yet captured, which is the age of the capture queue's oldest message (CloudWatch's
AWS/SQS ApproximateAgeOfOldestMessage, the metric CaptureRpoAlarm watches), and what waits."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from backup_cfn import contract

WAITING, IN_FLIGHT = "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
LOOK_BACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Protection:
    rpo_seconds: float | None        # None: CloudWatch has no datapoint yet and changes are waiting
    waiting: int                      # changes on the capture queue, not yet taken
    in_flight: int                    # being captured now
    dead_lettered: int                # given up on: left to the nightly run
    source: str                       # "cloudwatch" or "queue" (an empty queue: nothing uncaptured)

    @property
    def within_target(self) -> bool | None:
        return None if self.rpo_seconds is None else self.rpo_seconds < contract.RPO_TARGET_SECONDS

    def to_json(self) -> dict:
        return {"rpo_seconds": None if self.rpo_seconds is None else round(self.rpo_seconds, 1),
                "rpo_target_seconds": contract.RPO_TARGET_SECONDS, "within_target": self.within_target,
                "waiting": self.waiting, "in_flight": self.in_flight, "dead_lettered": self.dead_lettered,
                "source": self.source}

    def line(self) -> str:
        if self.rpo_seconds is None:
            rpo = "unknown (no datapoint yet)"
        else:
            rpo = f"{self.rpo_seconds:.0f} s" + ("" if self.within_target else
                                                 f" [red](over the {contract.RPO_TARGET_SECONDS // 60}-minute target)[/red]")
        left = f", {self.dead_lettered} left to the nightly run" if self.dead_lettered else ""
        return f"  continuous protection: RPO {rpo}; {self.waiting} change(s) waiting, {self.in_flight} being captured{left}"


def _counts(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[WAITING, IN_FLIGHT])["Attributes"]
    return int(attributes.get(WAITING, 0)), int(attributes.get(IN_FLIGHT, 0))


def oldest_age(cloudwatch, queue_name: str, now: datetime) -> float | None:
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "age", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage",
                       "Dimensions": [{"Name": "QueueName", "Value": queue_name}]},
            "Period": 60, "Stat": "Maximum"}}],
        StartTime=now - LOOK_BACK, EndTime=now, ScanBy="TimestampDescending")
    values = (response.get("MetricDataResults") or [{}])[0].get("Values") or []
    return float(values[0]) if values else None


def current_protection(sqs, cloudwatch, outputs: dict, now: datetime | None = None) -> Protection | None:
    """None for a stack without continuous protection (deployed before it)."""
    url = outputs.get(contract.OUTPUT_CAPTURE_QUEUE_URL)
    if not url:
        return None
    now = now or datetime.now(timezone.utc)
    waiting, in_flight = _counts(sqs, url)
    dead_url = outputs.get(contract.OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL)
    dead_lettered = sum(_counts(sqs, dead_url)) if dead_url else 0
    age = oldest_age(cloudwatch, url.rstrip("/").rsplit("/", 1)[-1], now)
    if age is not None:
        return Protection(age, waiting, in_flight, dead_lettered, "cloudwatch")
    if waiting + in_flight == 0:
        return Protection(0.0, 0, 0, dead_lettered, "queue")
    return Protection(None, waiting, in_flight, dead_lettered, "queue")
