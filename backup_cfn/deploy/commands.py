"""The deploy-side commands as the CLI calls them (SAM's do_cli): each takes the environment and
the console, builds the environment's clients, and hands over to the module that does the work.
No option parsing here (cli.py), no logic beyond wiring (the modules it calls)."""
from __future__ import annotations

import sys

from rich.console import Console

from backup_cfn import aws
from backup_cfn.config import Environment
from backup_cfn.deploy import artifacts, handler_package
from backup_cfn.deploy.clients import DeployClients
from backup_cfn.deploy.deployment import Deployment, check_account
from backup_cfn.deploy.stack_deployer import Options, StackResult
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.errors import UserError
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
              allow_replace: tuple[str, ...] = (), recreate_failed: bool = False,
              diff_only: bool = False) -> dict[str, StackResult]:
    options = Options(yes=yes, no_execute=no_execute, allow_replace=frozenset(allow_replace),
                      recreate_failed=recreate_failed, interactive=interactive())
    return Deployment(env, DeployClients.for_environment(env), console).run(options, diff_only=diff_only)


def do_diff(env: Environment, *, console: Console) -> dict[str, StackResult]:
    return do_deploy(env, console=console, diff_only=True)


def do_status(env: Environment, *, console: Console, drift: bool = False, as_json: bool = False) -> list:
    from backup_cfn.deploy.status import stack_status
    from backup_cfn.output import print_json
    from backup_cfn.stack.render import render_environment

    clients = DeployClients.for_environment(env)
    primary_rendered, replica_rendered = render_environment(env)
    package_sha = handler_package.build_package().sha256
    poll = Poll(aws.poll_seconds(env))
    shown = Console(quiet=True) if as_json else console
    stacks = [
        stack_status(clients.replica_cloudformation, label="replica", name=env.replica_stack_name,
                     rendered=replica_rendered, console=shown, poll=poll, drift=drift),
        stack_status(clients.cloudformation, label="primary", name=env.stack_name, rendered=primary_rendered,
                     console=shown, poll=poll, package_sha256=package_sha, drift=drift),
    ]
    if as_json:
        print_json("status", {"env": env.name, "stacks": [s.to_json() for s in stacks]})
    return stacks


def do_delete(env: Environment, *, console: Console, yes: bool = False) -> list[str]:
    from backup_cfn.deploy.teardown import Target, delete_environment

    clients = DeployClients.for_environment(env)
    check_account(env, clients.sts)
    targets = [Target("primary", env.stack_name, clients.cloudformation),
               Target("replica", env.replica_stack_name, clients.replica_cloudformation)]
    return delete_environment(env.name, targets, Options(yes=yes, interactive=interactive()), console,
                              Poll(aws.poll_seconds(env)))
