"""How a job can fail, and what happens next."""
from __future__ import annotations


class EngineError(Exception):
    """Base class of the engine's expected failures."""


class RetryableJobError(EngineError):
    """A transient condition (content being stored by another job, a source object changing under
    us, throttling beyond the SDK's retries). The message goes back to the queue and is retried."""


class InvalidJob(EngineError):
    """A message that can never succeed (malformed, unknown run). Reported as a batch item
    failure on every delivery, so SQS moves it to the dead-letter queue after maxReceiveCount."""


class LeaseHeld(RetryableJobError):
    """Another live attempt of the same user job holds its lease."""
