"""The vault's lock extender: on a manifest's arrival (EventBridge "Object Created"), that user's
snapshots; on the daily schedule (or any other event), every user's. Thin: engine/vault_locks.py."""
from __future__ import annotations

from backup_cfn import contract
from backup_cfn.engine import vault_locks
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get_vault()
    event = event if isinstance(event, dict) else {}
    if event.get("detail-type") == "Object Created":
        user = vault_locks.user_of_arrival(event)
        if user is None:
            return {"ignored": "not a manifest"}
        report = vault_locks.lock_user(clients, settings, user)
        runtime.publish_metrics(settings, {contract.METRIC_MANIFESTS_ARRIVED: 1})
    else:
        report = vault_locks.lock_all(clients, settings)
    runtime.publish_metrics(settings, {contract.METRIC_VAULT_LOCKS_SHORT: len(report.short),
                                       contract.METRIC_VAULT_LOCKS_EXTENDED: report.objects_extended})
    (logger.error if report.short or report.tampered or report.late else logger.info)(
        "vault locks", extra={"locks": report.to_json(), "tampered": report.tampered[:20], "late": report.late[:20]})
    return report.to_json()
