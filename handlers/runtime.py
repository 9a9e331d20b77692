"""What the handlers run with: clients and settings built once per Lambda container from the
environment the template sets, or given by `configure()` (the local runner and tests)."""
from __future__ import annotations

import contextvars
import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from backup_cfn import contract
from backup_cfn.engine.settings import Clients, Settings, settings_from_environ

logger = Logger(service="backup-cfn")
# service="": no "service" dimension, so the metrics carry exactly the one dimension (Stack) the
# dashboard and alarms query; CloudWatch matches a metric only on its full dimension set.
metrics = Metrics(namespace=contract.METRIC_NAMESPACE, service="")
_metrics_lock = threading.Lock()
_lock = threading.Lock()
_runtime: tuple[Clients, Settings] | None = None
# The local runner gives each invocation its own clients (fenced when Lambda would have killed it).
_invocation: contextvars.ContextVar[tuple[Clients, Settings] | None] = contextvars.ContextVar("invocation", default=None)


def configure(clients: Clients, settings: Settings) -> None:
    global _runtime
    with _lock:
        _runtime = (clients, settings)


def configure_invocation(clients: Clients, settings: Settings) -> None:
    """Clients and settings for the invocations run in the calling thread (the local runner)."""
    _invocation.set((clients, settings))


def get() -> tuple[Clients, Settings]:
    global _runtime
    scoped = _invocation.get()
    if scoped is not None:
        return scoped
    with _lock:
        if _runtime is None:
            _runtime = (Clients.default(), settings_from_environ())
        return _runtime


def publish_metrics(settings: Settings, values: dict[str, float]) -> None:
    """Emit one EMF document. Flushed here under a lock rather than by @log_metrics, because the
    local runner calls a handler from several threads and the metric set is shared."""
    values = {name: value for name, value in values.items() if value is not None}
    if not values:
        return
    with _metrics_lock:
        metrics.add_dimension(name=contract.METRIC_DIMENSION, value=settings.stack_name or "unknown")
        for name, value in values.items():
            unit = MetricUnit.Bytes if name.startswith("Bytes") else \
                MetricUnit.Seconds if name.endswith("Seconds") else MetricUnit.Count
            metrics.add_metric(name=name, unit=unit, value=value)
        metrics.flush_metrics()
        metrics.clear_metrics()


_vault_runtime: tuple | None = None


def configure_vault(clients: Clients, settings) -> None:
    """The vault's functions: clients and VaultSettings (the local runner and tests)."""
    global _vault_runtime
    with _lock:
        _vault_runtime = (clients, settings)


def get_vault() -> tuple:
    global _vault_runtime
    with _lock:
        if _vault_runtime is None:
            from backup_cfn.engine.vault import vault_settings_from_environ

            _vault_runtime = (Clients.default(), vault_settings_from_environ())
        return _vault_runtime


def process_sqs_batch(event, context, handle_record) -> tuple[dict, list]:
    """An SQS batch with partial batch failures: `handle_record(record, outcomes)` for each record
    (raising fails that record alone); the response Lambda wants and the outcomes gathered. One
    processor per invocation: it holds per-batch state, and the local runner calls the handlers
    from several threads at once. A batch whose every record failed is reported like any other (all
    items listed), so the caller's metrics are still published."""
    outcomes: list = []
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=lambda record: handle_record(record, outcomes),
                                        processor=processor, context=context)
    return response, outcomes
