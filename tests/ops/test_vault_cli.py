"""The vault as its operators use it from a shell, on `local` with its vault in a second account:
the security team deploys the vault, the platform team the primary; a backup run replicates into
the vault; status says whether the vault is current; verify, drill and restore `--from-vault` read
the vault alone, with the vault account's credentials, and restore the same bytes."""
from __future__ import annotations

import json

from backup_cfn.local import server

from cli_support import one_line_error, run


def files_under(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_vault_from_deploy_to_a_restore_read_from_it_alone(vault_environments, vault_env, tmp_path):
    environments = vault_environments
    # The platform team cannot deploy the primary before the vault exists: its replication rule
    # names the vault's key.
    assert "deploy the vault first" in one_line_error(run(environments, "deploy", "--env", "local", "--yes"))
    vault = run(environments, "deploy", "--env", "local", "--vault", "--yes")
    assert vault.exit_code == 0, vault.output
    assert "backup-cfn-local-vault CREATE_COMPLETE" in vault.output and "vault.key_arn" in vault.output
    primary = run(environments, "deploy", "--env", "local", "--yes")
    assert primary.exit_code == 0, primary.output
    assert "backup-cfn-local CREATE_COMPLETE" in primary.output and "backup-cfn-local-replica" not in primary.output

    assert run(environments, "demo-data", "--env", "local", "--users", "3", "--day", "1").exit_code == 0
    backed_up = run(environments, "run", "--env", "local")
    assert backed_up.exit_code == 0 and "3 of 3" in backed_up.output, backed_up.output
    assert server.wait_for_replication(vault_env.endpoint_url)["failed"] == 0

    status = run(environments, "status", "--env", "local", "--json")
    assert status.exit_code == 0, status.output
    document = json.loads(status.stdout)
    assert [s["label"] for s in document["stacks"]] == ["vault", "primary"]
    replication = document["replication"]
    assert replication["current"] is True and replication["vault_has_newest"] == replication["snapshots"] == 3

    checked = run(environments, "verify", "--env", "local", "--from-vault", "--sample", "100")
    assert checked.exit_code == 0 and "verify: no problems" in checked.output, checked.output
    drilled = run(environments, "drill", "--env", "local", "--from-vault", "--users", "3")
    assert drilled.exit_code == 0 and "the vault (210987654321)" in drilled.output, drilled.output
    assert "PASSED" in drilled.output

    from_backup, from_vault = tmp_path / "backup", tmp_path / "vault"
    assert run(environments, "restore", "--env", "local", "--user", "client-0001", "--to", str(from_backup)).exit_code == 0
    restored = run(environments, "restore", "--env", "local", "--user", "client-0001", "--from-vault",
                   "--to", str(from_vault))
    assert restored.exit_code == 0, restored.output
    assert files_under(from_vault) == files_under(from_backup) and files_under(from_vault)
    assert "give --from-replica or --from-vault, not both" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--from-vault", "--from-replica",
            "--to", "d"))
    assert "--include-late applies to --from-vault only" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--include-late", "--to", "d"))
    # With a vault, its disaster-recovery copy is read --from-vault only; many users from it into S3
    # are restored here (the stack's restore function, in the production account, cannot read it).
    assert "use --from-vault" in one_line_error(
        run(environments, "restore", "--env", "local", "--all-users", "--from-replica", "--to", "d"))
    from backup_cfn import aws, contract
    from backup_cfn.deploy.outputs import outputs_of

    source = outputs_of(aws.client(vault_env, "cloudformation"), vault_env.stack_name)[contract.OUTPUT_SOURCE_BUCKET]
    into_s3 = run(environments, "restore", "--env", "local", "--all-users", "--from-vault", "--to", f"s3://{source}/dr",
                  "--json")
    assert into_s3.exit_code == 0, into_s3.output
    document = json.loads(into_s3.stdout)
    assert (document["source"], document["ran_on"], document["restore_id"]) == ("vault", "this machine", None)
    assert [u["user"] for u in document["users"] if u["ok"]] == ["client-0001", "client-0002", "client-0003"]
