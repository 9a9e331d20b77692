"""The vault's functions on the emulator, which cannot run Lambda: the lock and drill handlers called
in-process, as the vault account (its clients carry the vault's assumed credentials), with the
event the schedule (or the CLI) sends the deployed functions on AWS."""
from __future__ import annotations

from backup_cfn.local.runner import LambdaContext, quiet_handlers


def run_vault_function_in_process(target, function: str, event: dict) -> dict:
    quiet_handlers()
    from handlers import runtime, vault_drill, vault_lock

    handler = {"lock": vault_lock.handler, "drill": vault_drill.handler}[function]
    runtime.configure_vault(target.clients, target.settings)
    return handler(event, LambdaContext(function_name=f"vault-{function}"))
