"""`backup-cfn local start` starts, beside the emulator, what stands in for Lambda's event source
mapping on the capture queue: once the local stack is deployed, a file written to its source bucket
is in the journal within seconds, without any `backup-cfn run`; `local stop` ends both."""
from __future__ import annotations

import dataclasses
import re
import time

from click.testing import CliRunner

import cli
from backup_cfn.config import DEFAULT_ENVIRONMENTS_FILE
from backup_cfn.engine import journal
from backup_cfn.local import server
from backup_cfn.ops.target import connect


def test_local_start_protects_a_change_within_seconds_without_a_run(local_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = server.free_port()
    text = re.sub(r'endpoint_url = "[^"]*"', f'endpoint_url = "{server.url(port)}"', DEFAULT_ENVIRONMENTS_FILE.read_text())
    # The one-account layout: this test is about the capture path, not the vault's deploy.
    text = re.sub(r"^\[env\.local\.vault\].*?(?=^\[|\Z)", "", text, flags=re.S | re.M)
    environments = tmp_path / "environments.toml"
    environments.write_text(text)
    invoke = lambda *args: CliRunner().invoke(cli.cli, ["--environments", str(environments), *args], obj={},  # noqa: E731
                                              catch_exceptions=False)
    started = invoke("local", "start", "--port", str(port))
    try:
        assert started.exit_code == 0 and "continuous capture started" in started.output, started.output
        assert invoke("deploy", "--env", "local", "--yes").exit_code == 0
        target = connect(dataclasses.replace(local_env, endpoint_url=server.url(port), vault=None))
        written = time.monotonic()
        target.clients.s3.put_object(Bucket=target.settings.source_bucket, Key="client-0001/just-now.pdf",
                                     Body=b"written a second ago")
        segments = []
        while not segments and time.monotonic() - written < 60:
            time.sleep(0.5)
            segments = journal.list_segments(target.clients.s3, target.settings.backup_bucket, "client-0001")
        assert segments, "the change was not captured within 60 s"
        [change] = journal.read_segment(target.clients.s3, target.settings.backup_bucket, segments[0].key).changes
        assert (change.path, change.op) == ("just-now.pdf", "put") and change.sha256
    finally:
        stopped = invoke("local", "stop", "--port", str(port))
    assert stopped.exit_code == 0 and "emulator stopped" in stopped.output
    assert not (server.STATE_DIR / f"capture-{port}.pid").exists()
