"""How the engine fails, as one hierarchy: the CLI boundary catches EngineError and prints one line;
the worker's handler tells a job worth retrying (RetryableJobError) from one that never will
succeed (InvalidJob)."""
from __future__ import annotations


class EngineError(Exception):
    """Base class of the engine's expected failures."""


class RetryableJobError(EngineError):
    """A transient condition (content being stored by another job, a source object changing under
    us, throttling beyond the SDK's retries). The message goes back to the queue and is retried."""


class SourceChanged(RetryableJobError):
    """The source object is no longer the version being copied (overwritten since it was read)."""


class InvalidJob(EngineError):
    """A message that can never succeed (malformed, unknown run). Reported as a batch item
    failure on every delivery, so SQS moves it to the dead-letter queue after maxReceiveCount."""


class LeaseHeld(RetryableJobError):
    """Another live attempt of the same user job holds its lease."""


class EnqueueFailed(EngineError):
    """Job messages SQS refused (a sender fault) or kept failing after every retry."""


class ManifestError(EngineError, ValueError):
    """A manifest that cannot be read: corrupt, or not a manifest of this format."""


class RestoreError(EngineError):
    """Nothing to restore from: no such user, run or date."""


class PruneAborted(EngineError):
    """The sweep took so long that the grace period no longer covers a worker in flight; or expired
    snapshots could not be deleted. Nothing more is deleted in this collection."""


class MissingSetting(EngineError):
    """A name the engine needs (a bucket, a table) is missing: an environment variable the template
    should have set, or a stack output the deployed stack should have."""

    def __init__(self, name: str, where: str):
        super().__init__(f"missing {where} {name}")
        self.name, self.where = name, where
