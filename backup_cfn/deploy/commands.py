"""The deploy-side commands as the CLI calls them (SAM's do_cli): each takes the environment and
the console, builds the environment's clients, and hands over to the module that does the work.
No option parsing here (cli.py), no logic beyond wiring (the modules it calls)."""
from __future__ import annotations

import json
import sys
from typing import Callable

from rich.console import Console

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.deploy import artifacts, handler_package, review
from backup_cfn.deploy.clients import DeployClients
from backup_cfn.deploy.deployment import Deployment, check_account
from backup_cfn.deploy.stack_spec import Options, StackResult
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.deploy.review import document
from backup_cfn.errors import Refused, UserError, describe_aws_error
from backup_cfn.stack.render import TEMPLATES_DIR, write_templates


def interactive() -> bool:
    """Someone can answer a prompt (output may still be piped, e.g. through tee)."""
    return sys.stdin.isatty()


def do_template(envs: list[Environment], *, console: Console, out_dir=None) -> None:
    result = write_templates(envs, out_dir or TEMPLATES_DIR)
    for path in result.paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    console.print(f"built {len(result.paths)} templates in {result.build_seconds * 1000:.0f} ms", highlight=False)


def do_validate(envs: list[Environment], *, console: Console) -> None:
    from backup_cfn.deploy.validate import validate_environments

    report = validate_environments(envs)
    for line in report.lines():
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    if not report.ok:
        raise UserError(f"{report.blocking_count} cfn-lint error(s)/warning(s) or size problem(s)")


def do_package(env: Environment, *, console: Console) -> None:
    clients = DeployClients.for_environment(env)
    built = handler_package.build_package()
    check_account(env, clients.sts)
    bucket = artifacts.artifacts_bucket(clients.cloudformation, poll=Poll(aws.poll_seconds(env)), console=console,
                                        tags=env.tag_dict)
    uploaded = handler_package.upload_package(clients.s3, bucket, built)
    console.print(f"package sha256 {built.sha256} ({len(built.data):,} bytes, {len(built.files)} files: "
                  f"{', '.join(built.distributions) or 'no libraries'})", soft_wrap=True, highlight=False)
    console.print(f"{'uploaded to' if uploaded else 'already in'} s3://{bucket}/{built.key}", soft_wrap=True,
                  highlight=False)


def do_deploy(env: Environment, *, console: Console, yes: bool = False, no_execute: bool = False,
              allow_replace: tuple[str, ...] = (), accept: tuple[str, ...] = (), recreate_failed: bool = False,
              diff_only: bool = False, emit: Callable[[str], None] | None = None, vault: bool = False) -> int:
    """Deploy (or diff) the environment; the exit code (document.EXIT_*). With `emit`, the review
    is also written through it as one JSON document, whatever the outcome (--json). `vault`: the
    vault stack, with the vault account's credentials (the security team's deploy)."""
    if emit is not None and not diff_only and not (yes or no_execute):
        raise UserError("--json needs --yes or --no-execute: there is no prompt in a run read by a machine")
    if vault and not env.has_vault:
        raise UserError(f"environment '{env.name}' has no vault: add a [env.{env.name}.vault] table (docs/vault.md)")
    options = Options(yes=yes, no_execute=no_execute, allow_replace=frozenset(allow_replace),
                      accept=frozenset(accept), recreate_failed=recreate_failed, interactive=interactive())
    clients = DeployClients.for_vault(env) if vault else DeployClients.for_environment(env)
    deployment = Deployment(env, clients, console)
    command = "diff" if diff_only else "deploy"
    try:
        results = deployment.run(options, diff_only=diff_only, vault=vault)
    except Refused as refused:
        if emit is not None:
            results = dict(deployment.results)
            if refused.review is not None:
                results[refused.review.label] = StackResult("blocked", {}, refused.review.change_set, refused.review)
            emit(json.dumps(document.document(command, env.name, results, code=document.EXIT_BLOCKED,
                                              error=refused.message), indent=2, sort_keys=False))
        raise
    except Exception as exc:
        if emit is not None:
            emit(json.dumps(document.document(command, env.name, dict(deployment.results), code=document.EXIT_ERROR,
                                              error=describe_aws_error(exc) or str(exc)), indent=2))
        raise
    code = document.exit_code(results, executed_is_success=not diff_only and not no_execute)
    if emit is not None:
        emit(json.dumps(document.document(command, env.name, results, code=code), indent=2))
    blocked = [r.review for r in results.values() if r.outcome == "blocked" and r.review is not None]
    if blocked:
        raise Refused(" | ".join(review.refusal(b).message for b in blocked))
    return code


def do_diff(env: Environment, *, console: Console, allow_replace: tuple[str, ...] = (), accept: tuple[str, ...] = (),
            emit: Callable[[str], None] | None = None, vault: bool = False) -> int:
    return do_deploy(env, console=console, allow_replace=allow_replace, accept=accept, diff_only=True, emit=emit,
                     vault=vault)


def do_status(env: Environment, *, console: Console, drift: bool = False, as_json: bool = False) -> list:
    """Both stacks, whether the disaster-recovery copy is current, and continuous protection's RPO.
    With a vault, its stack is read with the vault's credentials when they are at hand (the security
    team's); replication's state always, from the production side."""
    from backup_cfn.deploy.protection import current_protection
    from backup_cfn.deploy.replication import print_state, replication_state
    from backup_cfn.deploy.status import stack_status
    from backup_cfn.output import print_json
    from backup_cfn.stack.render import render_environment

    clients = DeployClients.for_environment(env)
    primary_rendered, dr_rendered = render_environment(env)
    package_sha = handler_package.build_package().sha256
    poll = Poll(aws.poll_seconds(env))
    shown = Console(quiet=True) if as_json else console
    vault_clients = _vault_clients_if_any(env) if env.has_vault else None
    stacks = []
    if not env.has_vault:
        stacks.append(stack_status(clients.replica_cloudformation, label="replica", name=env.replica_stack_name,
                                   rendered=dr_rendered, console=shown, poll=poll, drift=drift))
    elif vault_clients is not None:
        stacks.append(stack_status(vault_clients.cloudformation, label="vault", name=env.vault.stack_name,
                                   rendered=dr_rendered, console=shown, poll=poll, package_sha256=package_sha,
                                   drift=drift))
    else:
        shown.print(f"vault stack {env.vault.stack_name} (account {env.vault.account_id}, {env.vault.region}): "
                    "[dim]not readable with these credentials (the vault account's: vault.profile or vault.role_arn)"
                    "[/dim]")
    primary = stack_status(clients.cloudformation, label="primary", name=env.stack_name, rendered=primary_rendered,
                           console=shown, poll=poll, package_sha256=package_sha, drift=drift)
    stacks.append(primary)
    document = {"env": env.name, "stacks": [s.to_json() for s in stacks]}
    bucket = primary.outputs.get(contract.OUTPUT_BACKUP_BUCKET)
    if bucket:
        where = f"the vault ({env.vault.account_id})" if env.has_vault else f"the replica ({env.replica_region})"
        state = replication_state(clients.s3, bucket, vault_s3=vault_clients.s3 if vault_clients else None,
                                  vault_bucket=env.vault.bucket_name if env.has_vault else None)
        print_state(shown, state, where)
        document["replication"] = state.to_json()
    protection = None
    if primary.outputs:
        protection = current_protection(aws.client(env, "sqs"), aws.client(env, "cloudwatch"), primary.outputs)
        if protection is not None:
            shown.print(protection.line(), highlight=False)
    document["continuous_protection"] = protection.to_json() if protection else None
    if as_json:
        print_json("status", document)
    return stacks


def _vault_clients_if_any(env: Environment) -> DeployClients | None:
    """The vault account's clients when these credentials reach it (its stack answers), else None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        clients = DeployClients.for_vault(env)
        clients.cloudformation.describe_stacks(StackName=env.vault.stack_name)
        return clients
    except ClientError as exc:
        return clients if "does not exist" in str(exc) else None
    except BotoCoreError:
        return None


def deployer_templates(env: Environment, *, vault: bool = False) -> list[dict]:
    """The templates one team deploys: the platform team's primary (and, in the one-account layout,
    the replica), or (`vault`) the security team's vault stack; each with the bootstrap stack."""
    import json

    from backup_cfn.stack.render import render_bootstrap, render_environment

    primary, disaster_recovery = render_environment(env)
    bodies = [disaster_recovery] if vault else [primary] + ([] if env.has_vault else [disaster_recovery])
    return [json.loads(body) for body in (*bodies, render_bootstrap())]


def do_deployer_policy(env: Environment, *, console: Console, vault: bool = False) -> list[dict]:
    """The deployer's least-privilege policy, as managed policies small enough for IAM, on stdout:
    the platform team's, or (`vault`) the security team's for the vault stack."""
    import json

    from backup_cfn.permissions.deployer import as_managed_policies, deployer_policy, size

    if vault and not env.has_vault:
        raise UserError(f"environment '{env.name}' has no vault")
    documents = as_managed_policies(deployer_policy(env, deployer_templates(env, vault=vault), vault=vault))
    console.print_json(json.dumps(documents, sort_keys=True))
    # The figures on stderr: stdout stays the JSON, ready for `> policy.json`.
    Console(stderr=True).print(f"{len(documents)} managed policies ({', '.join(f'{size(d):,}' for d in documents)} characters; "
                  f"IAM's limit is 6,144 each) for deploy, diff, status and delete of "
                  f"{env.vault.stack_name if vault else env.name}: see "
                  "docs/permissions.md", style="dim", highlight=False, soft_wrap=True)
    return documents


def do_delete(env: Environment, *, console: Console, yes: bool = False, vault: bool = False) -> list[str]:
    """Delete the primary (and the replica) stacks; or (`vault`) the vault stack, with its own
    credentials. Retained resources, the data above all, outlive them; the vault's locks too."""
    from backup_cfn.deploy.teardown import Target, delete_environment

    if vault:
        if not env.has_vault:
            raise UserError(f"environment '{env.name}' has no vault")
        clients = DeployClients.for_vault(env)
        check_account(env, clients.sts, vault=True)
        targets = [Target("vault", env.vault.stack_name, clients.cloudformation)]
        return delete_environment(env.name, targets, Options(yes=yes, interactive=interactive()), console,
                                  Poll(aws.poll_seconds(env)))
    clients = DeployClients.for_environment(env)
    check_account(env, clients.sts)
    targets = [Target("primary", env.stack_name, clients.cloudformation)]
    if not env.has_vault:
        targets.append(Target("replica", env.replica_stack_name, clients.replica_cloudformation))
    return delete_environment(env.name, targets, Options(yes=yes, interactive=interactive()), console,
                              Poll(aws.poll_seconds(env)))
