"""The deploy-side commands as the CLI calls them: each builds the environment's clients and a
console, then hands over to the module that does the work."""
from __future__ import annotations

import sys

from rich.console import Console

from backup_cfn import bootstrap, package as packaging
from backup_cfn.config import Environment
from backup_cfn.deploy import Clients, Deployment, Options, StackResult, check_account, poll_for


def interactive() -> bool:
    """Someone can answer a prompt (output may still be piped, e.g. through tee)."""
    return sys.stdin.isatty()


def run_package(env: Environment, console: Console | None = None) -> tuple[packaging.Package, str, bool]:
    console = console or Console()
    clients = Clients.for_environment(env)
    built = packaging.build_package()
    check_account(env, clients.sts)
    bucket = bootstrap.artifacts_bucket(clients.cloudformation, poll=poll_for(env), console=console,
                                        tags=env.tag_dict)
    uploaded = packaging.upload_package(clients.s3, bucket, built)
    return built, bucket, uploaded


def run_deploy(env: Environment, *, yes: bool, no_execute: bool, allow_replace: tuple[str, ...],
               recreate_failed: bool, diff_only: bool = False, console: Console | None = None) -> dict[str, StackResult]:
    console = console or Console()
    options = Options(yes=yes, no_execute=no_execute, allow_replace=frozenset(allow_replace),
                      recreate_failed=recreate_failed, interactive=interactive())
    deployment = Deployment(env, Clients.for_environment(env), console)
    return deployment.run(options, diff_only=diff_only)


def run_status(env: Environment, *, drift: bool, console: Console | None = None) -> list:
    from backup_cfn.status import stack_status
    from backup_cfn.template import render_environment

    console = console or Console()
    clients = Clients.for_environment(env)
    primary_rendered, replica_rendered = render_environment(env)
    package_sha = packaging.build_package().sha256
    poll = poll_for(env)
    return [
        stack_status(clients.replica_cloudformation, label="replica", name=env.replica_stack_name,
                     rendered=replica_rendered, console=console, poll=poll, drift=drift),
        stack_status(clients.cloudformation, label="primary", name=env.stack_name, rendered=primary_rendered,
                     console=console, poll=poll, package_sha256=package_sha, drift=drift),
    ]


def run_delete(env: Environment, *, yes: bool, console: Console | None = None) -> list[str]:
    from backup_cfn.teardown import Target, delete_environment

    console = console or Console()
    clients = Clients.for_environment(env)
    check_account(env, clients.sts)
    targets = [Target("primary", env.stack_name, clients.cloudformation),
               Target("replica", env.replica_stack_name, clients.replica_cloudformation)]
    return delete_environment(env.name, targets, Options(yes=yes, interactive=interactive()), console, poll_for(env))
