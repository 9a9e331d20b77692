import time

from backup_cfn import aws
from backup_cfn.local import server


def test_emulator_answers_and_serves_s3_through_environment_clients(local_env):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]


def test_reset_clears_state(local_env):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="probe")
    server.reset(local_env.endpoint_url)
    assert s3.list_buckets()["Buckets"] == []


def test_is_ready_is_false_for_a_closed_port():
    assert server.is_ready(server.url(server.free_port()), timeout=0.2) is False


def test_start_then_stop_leaves_no_process_behind(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(server, "STATE_DIR", tmp_path)
    port = server.free_port()
    process = server.start(port)
    assert server.is_ready(server.url(port))
    assert server.start(port) is None  # already answering: not started twice
    assert server.stop(port) is True
    assert not server.is_ready(server.url(port), timeout=0.2)
    try:
        os.kill(process.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert alive is False  # exited and reaped, not a zombie
    assert server.stop(port) is False


def test_every_patch_applied_to_moto_is_listed_in_the_emulator_doc():
    """docs/emulator.md is the list of what the emulator does differently from stock moto."""
    import ast
    from pathlib import Path

    patches = Path(__file__).resolve().parents[2] / "backup_cfn" / "local" / "patches"
    applied = {node.attr for node in ast.walk(ast.parse((patches / "__init__.py").read_text()))
               if isinstance(node, ast.Attribute) and node.attr.startswith("patch_")}
    defined = {node.name for path in patches.glob("*.py") for node in ast.parse(path.read_text()).body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("patch_")}
    doc = (patches.parent.parent.parent / "docs" / "emulator.md").read_text()
    assert applied == defined and len(applied) >= 10
    assert sorted(name for name in applied if f"`{name}`" not in doc) == []


def test_the_log_keeps_errors_not_a_line_per_request_unless_asked(local_env, tmp_path):
    import subprocess
    import sys

    aws.client(local_env, "s3").list_buckets()
    port = int(local_env.endpoint_url.rsplit(":", 1)[1])
    quiet_log = (server.STATE_DIR / f"emulator-{port}.log").read_text()
    assert '"GET / HTTP/1.1" 200' not in quiet_log

    port = server.free_port()
    log = tmp_path / "emulator.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "backup_cfn.local.server", "serve", "--port", str(port),
                                    "--access-log"], stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if server.is_ready(server.url(port)):
                break
            time.sleep(0.1)
        assert server.is_ready(server.url(port))
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert '"GET /moto-api/ HTTP/1.1" 200' in log.read_text()
