"""backup-cfn: the command line. Commands are thin: each parses its options and calls one `do_*`
function (backup_cfn.deploy.commands, backup_cfn.ops.*), handing it the environment and the one
console of this invocation. Errors are turned into one line in BackupCli.invoke."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from backup_cfn.engine.errors import EngineError
from backup_cfn.errors import UserError, describe_aws_error

ENVIRONMENTS_HELP = "environments file (default: environments.toml beside this tool)"


class BackupCli(click.Group):
    """The one error boundary: expected failures print one line; --debug shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except EngineError as exc:  # the engine's expected failures: a no such user, run, manifest...
            if ctx.find_root().params.get("debug"):
                raise
            raise UserError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - this is the boundary
            if ctx.find_root().params.get("debug"):
                raise
            message = describe_aws_error(exc) or f"unexpected {type(exc).__name__}: {exc}"
            raise UserError(f"{message} (run with --debug for the traceback)") from exc


@click.group(cls=BackupCli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="show tracebacks instead of one-line errors")
@click.option("--environments", "environments_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="BACKUP_CFN_ENVIRONMENTS", default=None, help=ENVIRONMENTS_HELP)
@click.version_option(package_name="backup-cfn")
@click.pass_context
def cli(ctx: click.Context, debug: bool, environments_file: Path | None) -> None:
    """Backups of client reports on AWS: build, check, deploy and operate the stack."""
    from rich.console import Console

    from backup_cfn.config import DEFAULT_ENVIRONMENTS_FILE

    ctx.ensure_object(dict)
    ctx.obj["environments_file"] = environments_file or DEFAULT_ENVIRONMENTS_FILE
    ctx.obj["console"] = Console()


def console_of(ctx: click.Context):
    return ctx.obj["console"]


def env_option(required: bool = True):
    return click.option("--env", "-e", "env_name", required=required, metavar="ENV",
                        help="environment name from the environments file" + ("" if required else " (default: all)"))


def json_option():
    return click.option("--json", "as_json", is_flag=True,
                        help="print one versioned JSON document on stdout and nothing else (docs/json.md)")


def load_env(ctx: click.Context, name: str):
    from backup_cfn.config import load_environment

    return load_environment(name, ctx.obj["environments_file"])


def backup_runner(env):
    """What drives a backup run of `env`: the deployed functions on AWS; on the emulator, which stores
    functions but cannot run them, the same handlers in-process, fed as the event source mapping would."""
    from backup_cfn.aws import deployed_functions_run

    if deployed_functions_run(env):
        from backup_cfn.ops.run import run_on_aws

        return run_on_aws
    from backup_cfn.local.runner import run_in_process

    return run_in_process


def restore_runner(env):
    """What drives a restore the stack runs (one job per user): the deployed restore function on
    AWS, this process following; on the emulator, the same handler in-process, fed from the restore
    queue as the event source mapping would feed it."""
    from backup_cfn.aws import deployed_functions_run

    if deployed_functions_run(env):
        from backup_cfn.ops.restore_service import follow_on_aws

        return follow_on_aws
    from backup_cfn.local.runner import run_restore_in_process

    return run_restore_in_process


def drill_runner(env):
    """What runs a restore drill of `env` now: the deployed drill function on AWS (its role and network
    are part of what the drill proves); on the emulator, the same handler in-process."""
    from backup_cfn.aws import deployed_functions_run

    if deployed_functions_run(env):
        from backup_cfn.ops.drill import drill_on_aws

        return drill_on_aws
    from backup_cfn.local.drill import drill_in_process

    return drill_in_process



def vault_drill_runner(env):
    """What runs the vault's drill (`drill --from-vault`): the vault's deployed drill function, invoked
    with the vault account's credentials, on AWS; on the emulator, the same handler in-process as the vault."""
    from backup_cfn.aws import deployed_functions_run

    if deployed_functions_run(env):
        from backup_cfn.ops.vault import run_vault_function_on_aws as run
    else:
        from backup_cfn.local.vault import run_vault_function_in_process as run
    return lambda target, event: run(target, "drill", event)

def load_envs(ctx: click.Context, name: str | None):
    from backup_cfn.config import load_environment, load_environments

    if name:
        return [load_environment(name, ctx.obj["environments_file"])]
    return list(load_environments(ctx.obj["environments_file"]).values())


# --- templates ------------------------------------------------------------------------------

@cli.command()
@env_option(required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output folder (default: templates/ of this checkout)")
@click.pass_context
def template(ctx: click.Context, env_name: str | None, out_dir: Path | None) -> None:
    """Write the primary and replica templates of each environment."""
    from backup_cfn.deploy.commands import do_template

    do_template(load_envs(ctx, env_name), console=console_of(ctx), out_dir=out_dir)


@cli.command()
@env_option(required=False)
@click.pass_context
def validate(ctx: click.Context, env_name: str | None) -> None:
    """cfn-lint the built templates and check their size; exit 1 on any error or warning."""
    from backup_cfn.deploy.commands import do_validate

    do_validate(load_envs(ctx, env_name), console=console_of(ctx))


# --- cost ---------------------------------------------------------------------------------

@cli.command()
@env_option()
@click.option("--data-gb", type=float, default=1000.0, show_default=True, help="source data, GB")
@click.option("--objects", type=int, default=200_000, show_default=True, help="source objects")
@click.option("--users", type=int, default=1000, show_default=True, help="users (top-level folders)")
@click.option("--daily-change", type=float, default=1.0, show_default=True, metavar="PCT",
              help="percent of objects replaced by new content each day")
@click.option("--duplicates", type=float, default=0.0, show_default=True, metavar="PCT",
              help="percent of content that is a copy of another user's")
@json_option()
@click.pass_context
def cost(ctx: click.Context, env_name: str, data_gb: float, objects: int, users: int, daily_change: float,
         duplicates: float, as_json: bool) -> None:
    """Monthly cost estimate: this design, the reference lifecycle, AWS Backup for S3."""
    from backup_cfn.ops.cost.report import print_estimate

    print_estimate(load_env(ctx, env_name), data_gb=data_gb, objects=objects, users=users,
                   daily_change_percent=daily_change, duplicates_percent=duplicates, as_json=as_json)


# --- deploying ----------------------------------------------------------------------------

@cli.command()
@env_option()
@click.pass_context
def package(ctx: click.Context, env_name: str) -> None:
    """Build the reproducible handler zip and upload it to the artifacts bucket unless it is there."""
    from backup_cfn.deploy.commands import do_package

    do_package(load_env(ctx, env_name), console=console_of(ctx))


def review_options(command):
    """The options the change set review takes, on deploy and diff alike."""
    command = click.option("--json", "as_json", is_flag=True,
                           help="write the review to stdout as one JSON document (progress goes to stderr)")(command)
    command = click.option("--accept", multiple=True, metavar="FINDING_ID",
                           help="accept this blocking forecast finding, e.g. retention-shortened:PrunerFunction "
                                "(repeatable)")(command)
    return click.option("--allow-replace", multiple=True, metavar="LOGICAL_ID",
                        help="let this stateful resource be replaced or removed (repeatable)")(command)


def review_console(ctx: click.Context, as_json: bool):
    """With --json, stdout carries the document alone: everything else goes to stderr."""
    if as_json:
        from rich.console import Console

        ctx.obj["console"] = Console(stderr=True)
    return console_of(ctx)


@cli.command()
@env_option()
@click.option("--yes", "-y", is_flag=True, help="execute without asking (needed without a terminal)")
@click.option("--no-execute", is_flag=True, help="create the change sets, print their console URLs, stop")
@review_options
@click.option("--recreate-failed", is_flag=True, help="delete a ROLLBACK_COMPLETE stack and create it again")
@click.option("--vault", is_flag=True, help="the vault stack instead, with the vault account's credentials")
@click.pass_context
def deploy(ctx: click.Context, env_name: str, yes: bool, no_execute: bool, allow_replace: tuple[str, ...],
           accept: tuple[str, ...], as_json: bool, recreate_failed: bool, vault: bool) -> None:
    """Validate, package, then deploy the replica stack and the primary stack through reviewed change
    sets (with a vault: the primary; --vault: the vault). Exit 0 deployed (or nothing to do), 1 error,
    2 change sets kept (--no-execute), 3 refused."""
    from backup_cfn.deploy.commands import do_deploy

    ctx.exit(do_deploy(load_env(ctx, env_name), console=review_console(ctx, as_json), yes=yes, no_execute=no_execute,
                       allow_replace=allow_replace, accept=accept, recreate_failed=recreate_failed,
                       emit=click.echo if as_json else None, vault=vault))


@cli.command()
@env_option()
@review_options
@click.option("--vault", is_flag=True, help="the vault stack instead, with the vault account's credentials")
@click.pass_context
def diff(ctx: click.Context, env_name: str, allow_replace: tuple[str, ...], accept: tuple[str, ...],
         as_json: bool, vault: bool) -> None:
    """Show what deploy would change, value by value, with the forecast: change sets created, shown and
    deleted, nothing executed. Exit 0 no changes, 2 changes, 3 refused (as deploy would), 1 error."""
    from backup_cfn.deploy.commands import do_diff

    ctx.exit(do_diff(load_env(ctx, env_name), console=review_console(ctx, as_json), allow_replace=allow_replace,
                     accept=accept, emit=click.echo if as_json else None, vault=vault))


@cli.command()
@env_option()
@click.option("--drift", is_flag=True, help="run drift detection on both stacks (takes a while)")
@json_option()
@click.pass_context
def status(ctx: click.Context, env_name: str, drift: bool, as_json: bool) -> None:
    """Both stacks: status, last events, outputs, drift, and whether they match this checkout."""
    from backup_cfn.deploy.commands import do_status

    do_status(load_env(ctx, env_name), console=console_of(ctx), drift=drift, as_json=as_json)


@cli.command()
@env_option()
@click.option("--yes", "-y", is_flag=True, help="delete without asking (needed without a terminal)")
@click.option("--vault", is_flag=True, help="the vault stack instead, with the vault account's credentials")
@click.pass_context
def delete(ctx: click.Context, env_name: str, yes: bool, vault: bool) -> None:
    """Delete the primary and replica stacks; retained resources (the data) outlive them."""
    from backup_cfn.deploy.commands import do_delete

    do_delete(load_env(ctx, env_name), console=console_of(ctx), yes=yes, vault=vault)


@cli.command("deployer-policy")
@env_option()
@click.option("--vault", is_flag=True, help="the security team's policy, for the vault stack in the vault account")
@click.pass_context
def deployer_policy(ctx: click.Context, env_name: str, vault: bool) -> None:
    """The least-privilege IAM policy for running deploy, diff, status and delete (JSON managed policies)."""
    from backup_cfn.deploy.commands import do_deployer_policy

    do_deployer_policy(load_env(ctx, env_name), console=console_of(ctx), vault=vault)


# --- operating backups ---------------------------------------------------------------------

@cli.command()
@env_option()
@click.option("--users", metavar="U1,U2", default=None, help="only these users (default: every user in the source)")
@click.option("--timeout", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="give up when nothing has moved for this long (default: the longest one job may take with "
                   "the environment's retries)")
@json_option()
@click.pass_context
def run(ctx: click.Context, env_name: str, users: str | None, timeout: int | None, as_json: bool) -> None:
    """Start a backup now and follow it to the end (local: the handlers run in-process)."""
    from backup_cfn.ops.run import do_run

    env = load_env(ctx, env_name)
    do_run(env, console=console_of(ctx), runner=backup_runner(env), users=users, timeout=timeout, as_json=as_json)


@cli.command()
@env_option()
@click.option("--user", default=None, help="one user's history")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="one run's figures")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True,
              help="how many runs and drills to list (with --user: runs of that user)")
@json_option()
@click.pass_context
def runs(ctx: click.Context, env_name: str, user: str | None, run_id: str | None, limit: int, as_json: bool) -> None:
    """Recent runs and restore drills with their figures, one user's history, or one run or drill."""
    from backup_cfn.ops.runs import do_runs

    do_runs(load_env(ctx, env_name), console=console_of(ctx), user=user, run_id=run_id, limit=limit,
            as_json=as_json)


@cli.command("ls")
@env_option()
@click.option("--user", required=True, help="whose snapshot")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="the snapshot of this run (default: the newest)")
@click.option("--at", default=None, metavar="DATE", help="the newest snapshot at or before this date/time (UTC)")
@click.option("--path", "path_prefix", default=None, metavar="PREFIX", help="only files under this path")
@json_option()
@click.pass_context
def ls(ctx: click.Context, env_name: str, user: str, run_id: str | None, at: str | None, path_prefix: str | None,
       as_json: bool) -> None:
    """The files of one snapshot: size, modified time, SHA-256 prefix, path."""
    from backup_cfn.ops.ls import do_ls

    do_ls(load_env(ctx, env_name), console=console_of(ctx), user=user, run_id=run_id, at=at, path_prefix=path_prefix,
          as_json=as_json)


@cli.command()
@env_option()
@click.argument("pattern")
@click.option("--user", default=None, help="only this user's snapshots (default: every user)")
@click.option("--since", default=None, metavar="DATE", help="only snapshots from this date/time on (UTC)")
@click.option("--until", default=None, metavar="DATE", help="only snapshots up to this date (end of day) or time (UTC)")
@click.option("--cache", "use_cache", is_flag=True,
              help="keep manifests read in ~/.cache/backup-cfn (file names and hashes, no content) to skip them next time")
@json_option()
@click.pass_context
def find(ctx: click.Context, env_name: str, pattern: str, user: str | None, since: str | None, until: str | None,
         use_cache: bool, as_json: bool) -> None:
    """Which snapshots hold a file matching PATTERN (a glob, a SHA-256 or sha256:PREFIX), newest first,
    with the first and last run each version was seen in. No match: a line saying so, exit 0."""
    from backup_cfn.ops.find import do_find

    do_find(load_env(ctx, env_name), console=console_of(ctx), pattern=pattern, user=user, since=since, until=until,
            as_json=as_json, use_cache=use_cache)


@cli.command()
@env_option()
@click.option("--user", required=True, help="whose snapshots")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@json_option()
@click.pass_context
def compare(ctx: click.Context, env_name: str, user: str, run_a: str, run_b: str, as_json: bool) -> None:
    """What changed in a user's files from RUN_A to RUN_B: added, removed, modified, metadata only."""
    from backup_cfn.ops.compare import do_compare

    do_compare(load_env(ctx, env_name), console=console_of(ctx), user=user, run_a=run_a, run_b=run_b,
               as_json=as_json)


@cli.command()
@env_option()
@click.option("--user", "users", multiple=True, metavar="USER",
              help="whose files to restore; repeat it for several users (each to TO/<user>/)")
@click.option("--all-users", is_flag=True, help="every user with a snapshot, each to TO/<user>/ (disaster recovery)")
@click.option("--run", "run_id", default=None, metavar="RUN_ID",
              help="the snapshot of this run (with --all-users: each user's newest at or before it)")
@click.option("--at", default=None, metavar="DATE", help="the newest snapshot at or before this date/time (UTC)")
@click.option("--path", "path_prefix", default=None, metavar="PREFIX", help="only files under this path")
@click.option("--to", "to", default=None, metavar="s3://BUCKET/PREFIX|DIR", help="where to restore to")
@click.option("--from-replica", is_flag=True, help="read from the replica bucket (disaster recovery)")
@click.option("--from-vault", is_flag=True,
              help="read from the vault only, with the vault's (or a recovery account's) credentials, on this machine")
@click.option("--include-late", is_flag=True, help="with --from-vault: also snapshots that reached the vault late")
@click.option("--on-this-machine", is_flag=True,
              help="many users into S3 from this machine, not by the stack's restore function")
@click.option("--resume", default=None, metavar="RESTORE_ID",
              help="follow (and finish enqueuing) a restore the stack is running, after an interruption")
@json_option()
@click.pass_context
def restore(ctx: click.Context, env_name: str, users: tuple[str, ...], all_users: bool, run_id: str | None,
            at: str | None, path_prefix: str | None, to: str | None, from_replica: bool, from_vault: bool,
            include_late: bool, on_this_machine: bool, resume: str | None, as_json: bool) -> None:
    """Restore users' files as they were at a run: server-side copies to S3, or a directory with
    every file's SHA-256 checked. Many users into S3 are restored by the stack (one job per user on
    its restore queue), with one progress display and one summary; one user, or a folder, here."""
    from backup_cfn.ops.restore import do_restore

    env = load_env(ctx, env_name)
    do_restore(env, console=console_of(ctx), runner=restore_runner(env), users=users, all_users=all_users, to=to,
               run_id=run_id, at=at, path_prefix=path_prefix, from_replica=from_replica, from_vault=from_vault,
               include_late=include_late, as_json=as_json, on_this_machine=on_this_machine, resume=resume)


@cli.command()
@env_option()
@click.option("--sample", "sample_percent", type=float, default=5.0, show_default=True, metavar="PERCENT",
              help="share of stored content to download and re-hash")
@click.option("--from-vault", is_flag=True, help="check the vault (with its credentials): versions, tampering, locks")
@json_option()
@click.pass_context
def verify(ctx: click.Context, env_name: str, sample_percent: float, from_vault: bool, as_json: bool) -> None:
    """Check every snapshot's content exists and is indexed, and re-hash a sample; exit 1 on any problem."""
    from backup_cfn.ops.verify import do_verify

    do_verify(load_env(ctx, env_name), console=console_of(ctx), sample_percent=sample_percent, as_json=as_json,
              from_vault=from_vault)


@cli.command()
@env_option()
@click.option("--users", type=int, default=None, metavar="N",
              help="how many users' newest snapshots to re-hash (default: the environment's drill_users)")
@click.option("--from-vault", is_flag=True, help="drill the vault (its drill function, with the vault's credentials)")
@json_option()
@click.pass_context
def drill(ctx: click.Context, env_name: str, users: int | None, from_vault: bool, as_json: bool) -> None:
    """A restore drill now: the newest snapshots of a random sample of users, every content object
    streamed through SHA-256 and checked; recorded in the runs table; exit 1 when it fails."""
    from backup_cfn.ops.drill import do_drill

    env = load_env(ctx, env_name)
    runner = vault_drill_runner(env) if from_vault else drill_runner(env)
    do_drill(env, console=console_of(ctx), runner=runner, users=users, as_json=as_json, from_vault=from_vault)


@cli.command()
@env_option()
@click.option("--dry-run", is_flag=True, help="show what would be deleted, delete nothing")
@click.pass_context
def prune(ctx: click.Context, env_name: str, dry_run: bool) -> None:
    """Garbage collection now: expire old snapshots, delete content no kept snapshot references."""
    from backup_cfn.ops.prune import do_prune

    do_prune(load_env(ctx, env_name), console=console_of(ctx), dry_run=dry_run)


@cli.command("demo-data")
@env_option()
@click.option("--users", type=int, default=1000, show_default=True, help="how many users' folders")
@click.option("--day", type=int, default=1, show_default=True, help="1 = first day; each later day adds churn")
@click.option("--seed", type=int, default=42, show_default=True, help="the same seed writes the same files")
@click.pass_context
def demo_data(ctx: click.Context, env_name: str, users: int, day: int, seed: int) -> None:
    """Fill the source bucket with synthetic client reports for day N (deterministic from the seed)."""
    from backup_cfn.ops.demo_data import do_demo_data

    do_demo_data(load_env(ctx, env_name), console=console_of(ctx), users=users, day=day, seed=seed)


# --- the local emulator -------------------------------------------------------------------

@cli.group()
def local() -> None:
    """Run the offline AWS emulator (moto in server mode on loopback)."""


PORT = click.IntRange(1, 65535)


@local.command("start")
@click.option("--port", type=PORT, default=5055, show_default=True, help="the emulator's loopback port")
@click.option("--no-capture", is_flag=True, help="do not start the stand-in for the capture queue's event source mapping")
@click.pass_context
def local_start(ctx: click.Context, port: int, no_capture: bool) -> None:
    """Start the emulator in the background and wait until it answers; with it, what stands in for
    Lambda's event source mapping on the capture queue, so the local stack's source changes are
    protected as they happen."""
    from backup_cfn.local.server import do_start

    do_start(console=console_of(ctx), port=port, environments=ctx.obj["environments_file"], capture=not no_capture)


@local.command("stop")
@click.option("--port", type=PORT, default=5055, show_default=True, help="the emulator's loopback port")
@click.pass_context
def local_stop(ctx: click.Context, port: int) -> None:
    """Stop the emulator started by `backup-cfn local start`."""
    from backup_cfn.local.server import do_stop

    do_stop(console=console_of(ctx), port=port)


def main() -> None:
    cli(obj={}, prog_name="backup-cfn")


if __name__ == "__main__":
    sys.exit(main())
