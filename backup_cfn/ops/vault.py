"""The vault as the operator commands reach it: with the vault account's credentials (or a
recovery account's), reading nothing in the production account.

`restore --from-vault`, `drill --from-vault` and `verify --from-vault` take their target here; the
vault's bucket name comes from the environments file (a recovery account cannot read the vault's
stack), its stack's outputs when the credentials can read them (the lock table and functions)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.deploy.outputs import outputs_of
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.vault import VaultSettings
from backup_cfn.errors import UserError
from backup_cfn.ops.target import retention_of


@dataclass
class VaultTarget:
    env: Environment
    clients: Clients
    settings: VaultSettings
    outputs: dict


def vault_settings(env: Environment, outputs: dict) -> VaultSettings:
    return VaultSettings(bucket=outputs.get(contract.OUTPUT_VAULT_BUCKET) or env.vault.bucket_name,
                         lock_table=outputs.get(contract.OUTPUT_VAULT_LOCK_TABLE, ""), retention=retention_of(env),
                         stack_name=env.vault.stack_name, lock_mode=env.vault.lock_mode.upper(),
                         drill_users=env.drill_users)


def connect_vault(env: Environment, outputs: dict | None = None) -> VaultTarget:
    """The vault with its own credentials. Its stack's outputs are read when those credentials may
    (the vault account's); a recovery account gets on with the bucket's name alone."""
    if not env.has_vault:
        raise UserError(f"environment '{env.name}' has no vault: give it a [env.{env.name}.vault] table "
                        "(docs/vault.md), or restore --from-replica")
    clients = aws.vault_engine_clients(env)
    if outputs is None:
        try:
            outputs = outputs_of(aws.vault_client(env, "cloudformation"), env.vault.stack_name) or {}
        except (ClientError, BotoCoreError):
            outputs = {}
    return VaultTarget(env, clients, vault_settings(env, outputs), outputs)


def run_vault_function_on_aws(target: VaultTarget, function: str, event: dict) -> dict:
    """Invoke the vault's lock or drill function with the vault's credentials; its report comes back."""
    output = {"lock": contract.OUTPUT_VAULT_LOCK_FUNCTION, "drill": contract.OUTPUT_VAULT_DRILL_FUNCTION}[function]
    name = target.outputs.get(output)
    if not name:
        raise UserError(f"the vault stack {target.env.vault.stack_name} has no output {output} readable with these "
                        f"credentials: use the vault account's (vault.profile or vault.role_arn)")
    client = aws.vault_client(target.env, "lambda", call_seconds=contract.VAULT_LOCK_TIMEOUT_SECONDS)
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = response["Payload"].read().decode()
    if response.get("FunctionError"):
        raise UserError(f"the vault's {function} function failed: {payload[:300]}")
    return json.loads(payload)
