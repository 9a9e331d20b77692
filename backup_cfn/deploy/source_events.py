"""An existing source bucket (environments.toml `source_bucket`) sends its object events to
EventBridge, where the stack's SourceChangeRule picks them up for continuous protection.

The stack cannot own another bucket's notification configuration, so the deploy turns it on itself,
after the primary change set executes, with a read-modify-write: PutBucketNotificationConfiguration
replaces the whole configuration, so the bucket's topic, queue and function configurations are
sent back exactly as read, with `EventBridgeConfiguration` added, and `SkipDestinationValidation`
so S3 does not test those destinations again (S3 API Reference, PutBucketNotificationConfiguration;
S3 User Guide, "Enabling Amazon EventBridge",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-event-notifications-eventbridge.html).
The review says beforehand what this will do (deploy/review/lookups.py, `source-events`)."""
from __future__ import annotations

from dataclasses import dataclass

KEPT = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")


@dataclass(frozen=True)
class SourceEvents:
    bucket: str
    already_on: bool
    kept: int            # the bucket's other notification configurations, left as they were

    def line(self) -> str:
        others = f"; its {self.kept} other notification configuration(s) kept as they were" if self.kept else ""
        if self.already_on:
            return f"source bucket {self.bucket}: EventBridge notifications already on{others}"
        return f"source bucket {self.bucket}: EventBridge notifications turned on{others}"


def read_configuration(s3, bucket: str) -> dict:
    config = dict(s3.get_bucket_notification_configuration(Bucket=bucket))
    config.pop("ResponseMetadata", None)
    return config


def other_configurations(config: dict) -> int:
    return sum(len(config.get(name) or []) for name in KEPT)


def enable_eventbridge(s3, bucket: str) -> SourceEvents:
    """Turn the bucket's EventBridge notifications on, leaving everything else as it was."""
    config = read_configuration(s3, bucket)
    kept = {name: config[name] for name in KEPT if config.get(name)}
    if "EventBridgeConfiguration" in config:
        return SourceEvents(bucket, True, other_configurations(config))
    s3.put_bucket_notification_configuration(Bucket=bucket, SkipDestinationValidation=True,
                                             NotificationConfiguration={**kept, "EventBridgeConfiguration": {}})
    return SourceEvents(bucket, False, other_configurations(config))
