"""`backup-cfn drill` on the emulator, which cannot run Lambda: the drill function's handler called
in-process with the event the CLI sends the deployed function on AWS."""
from __future__ import annotations

from backup_cfn.local.runner import LambdaContext, quiet_handlers


def drill_in_process(target, event: dict) -> dict:
    quiet_handlers()
    from handlers import drill, runtime

    runtime.configure(target.clients, target.settings)
    return drill.handler(event, LambdaContext(function_name="drill"))
