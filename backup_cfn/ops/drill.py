"""`backup-cfn drill`: a restore drill now, as the weekly schedule runs it: on AWS the deployed
drill function is invoked (its own role and network path are part of what is proven); on the
emulator the same handler runs in-process (backup_cfn.local.drill.drill_in_process); the command's
wiring (cli.py) hands in which. Exit 1 when it fails."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable

from rich.console import Console

from backup_cfn import aws, contract
from backup_cfn.config import DRILL_USERS_LIMIT, Environment
from backup_cfn.engine import drill as drills, naming
from backup_cfn.errors import UserError
from backup_cfn.ops.runs import drill_json, print_runs
from backup_cfn.ops.target import DeployedEnvironment, connect
from backup_cfn.ops.vault import connect_vault
from backup_cfn.output import print_json, side_console

# Runs one drill for the event and returns the drill function's result: (target, event) -> dict.
DrillRunner = Callable[[DeployedEnvironment, dict], dict]


def drill_event(moment: datetime, users: int | None) -> dict:
    """What `backup-cfn drill` sends the drill function: a scheduled event's shape, from the CLI."""
    event = {"version": "0", "id": f"drill-{naming.run_id_for(moment)}", "detail-type": "Restore drill",
             "source": "backup-cfn.cli", "time": naming.iso(moment), "detail": {}}
    if users is not None:
        event["users"] = users
    return event


def drill_on_aws(target: DeployedEnvironment, event: dict) -> dict:
    function = target.outputs.get(contract.OUTPUT_DRILL)
    if not function:
        raise UserError(f"stack {target.env.stack_name} has no output {contract.OUTPUT_DRILL}: deploy it again "
                        f"with `backup-cfn deploy --env {target.env.name}`")
    lambda_client = aws.long_call_client(target.env, "lambda", contract.DRILL_TIMEOUT_SECONDS)
    response = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = response["Payload"].read().decode()
    if response.get("FunctionError"):
        raise UserError(f"the drill function failed: {payload[:300]}")
    return json.loads(payload)


def do_drill(env: Environment, *, console: Console, runner: DrillRunner, users: int | None = None,
             as_json: bool = False, from_vault: bool = False) -> dict:
    """The drill of the backups, or (`from_vault`) the vault's drill function, run with the vault's
    credentials: it reads the vault by version and reports written-over or late snapshots too. The
    wiring (cli.py) hands in the runner that fits (`drill_runner`, or `vault_drill_runner`)."""
    if users is not None and not 1 <= users <= DRILL_USERS_LIMIT:
        raise UserError(f"--users must be between 1 and {DRILL_USERS_LIMIT}, got {users}")
    event = drill_event(datetime.now(timezone.utc).replace(microsecond=0), users)
    if from_vault:
        target, where = connect_vault(env), f"the vault ({env.vault.account_id})"
    else:
        target, where = connect(env), "the backups"
    count = users or target.settings.drill_users
    with side_console(console, as_json).status(f"restore drill of {where}: re-hashing the newest snapshots of "
                                               f"{count} user(s)"):
        result = runner(target, event)
    drill = drill_json(result)
    if as_json:
        print_json("drill", {"drill": drill})
    else:
        print_runs(console, "drill", {"drill": drill})
        if from_vault:
            console.print(f"read from {where}, each content by version, as a restore from the vault reads it")
    if drill["result"] != drills.PASSED:
        raise UserError(f"restore drill {drill['drill_id']} failed: {drill['problems_total']} problem(s)")
    return drill
