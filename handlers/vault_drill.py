"""The vault's weekly restore drill (engine/vault_drill.py); its result is a metric the vault's
drill alarm watches, and the report it returns."""
from __future__ import annotations

from backup_cfn import contract
from backup_cfn.engine import drill, vault_drill
from handlers import runtime
from handlers.runtime import logger


@logger.inject_lambda_context
def handler(event, context):
    clients, settings = runtime.get_vault()
    event = event if isinstance(event, dict) else {}
    users = event.get("users")
    if users is not None and (isinstance(users, bool) or not isinstance(users, int)):
        raise ValueError(f"event 'users' must be a whole number, got {users!r}")
    trigger = "manual" if event.get("source") == "backup-cfn.cli" else "schedule"
    report = vault_drill.run_vault_drill(clients, settings, users=users, trigger=trigger)
    failed = report.result == drill.FAILED
    runtime.publish_metrics(settings, {contract.METRIC_DRILLS_FAILED: int(failed),
                                       contract.METRIC_DRILLS_PASSED: int(not failed)})
    (logger.error if failed else logger.info)("vault restore drill done", extra={"drill": report.to_json()})
    return report.to_json()
