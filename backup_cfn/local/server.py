"""The offline target: moto in server mode on a loopback port, run by this project's launcher.

The launcher runs moto in a child process of its own (`python -m backup_cfn.local.server serve`),
so the documented fixes in `backup_cfn.local.patches` apply to the emulator without touching the
real templates. `start()` waits until the server answers; `stop()` ends it; both are idempotent.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from backup_cfn.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055
READY_TIMEOUT_SECONDS = 30
PORTS = range(1, 65536)   # a larger number would be taken modulo 65536 by the socket layer
STATE_DIR = Path(os.environ.get("BACKUP_CFN_STATE_DIR", Path.home() / ".backup-cfn"))


def url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    return f"http://{host}:{port}"


def is_ready(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _pid_file(port: int) -> Path:
    return STATE_DIR / f"emulator-{port}.pid"


def check_port(port: int) -> int:
    if port not in PORTS:
        raise UserError(f"--port {port} is not a TCP port (1 to 65535)")
    return port


def start(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, log_path: Path | None = None) -> subprocess.Popen | None:
    """Start the emulator in the background; returns the process, or None if one already answers."""
    check_port(port)
    endpoint = url(port, host)
    if is_ready(endpoint):
        return None
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log_path = log_path or STATE_DIR / f"emulator-{port}.log"
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backup_cfn.local.server", "serve", "--host", host, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    _pid_file(port).write_text(str(process.pid))
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the emulator exited with code {process.returncode}; see {log_path}")
        if is_ready(endpoint):
            return process
        time.sleep(0.1)
    process.kill()
    raise UserError(f"the emulator did not answer on {endpoint} within {READY_TIMEOUT_SECONDS}s; see {log_path}")


def _capture_pid_file(port: int) -> Path:
    return STATE_DIR / f"capture-{port}.pid"


def start_capture(port: int = DEFAULT_PORT, environments: Path | None = None, env_name: str = "local") -> int | None:
    """Start what stands in for Lambda's event source mapping on the capture queue
    (local/capture_source.py) in the background: it waits for the environment's stack on this
    emulator and captures its source's changes until stopped. The process ID, or None when one runs."""
    pid_file = _capture_pid_file(port)
    if pid_file.exists() and not _exited(int(pid_file.read_text())):
        return None
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "backup_cfn.local.capture_source", "--env", env_name, "--endpoint", url(port)]
    if environments is not None:
        argv += ["--environments", str(environments)]
    with open(STATE_DIR / f"capture-{port}.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process.pid


def stop_capture(port: int = DEFAULT_PORT) -> bool:
    return _stop_pid(_capture_pid_file(port))


def stop(port: int = DEFAULT_PORT) -> bool:
    """Stop the emulator this launcher started on `port` (and its capture stand-in); False when
    none was running."""
    check_port(port)
    stop_capture(port)
    return _stop_pid(_pid_file(port))


def _stop_pid(pid_file: Path) -> bool:
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if _exited(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def _exited(pid: int) -> bool:
    # A child of this process lingers as a zombie, which still answers signal 0, until reaped.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def reset(endpoint: str) -> None:
    """Clear all emulator state (between tests), S3's clock back to real time included."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    clock = urllib.request.Request(f"{endpoint}/backup-cfn/s3/clock", data=b'{"now": null}', method="POST",
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(clock, timeout=10):
        pass


REPLICATION_PATH = "/moto-api/backup-cfn/replication"  # served by backup_cfn.local.patches.replication


def wait_for_replication(endpoint: str, timeout: float = 60.0) -> dict:
    """Wait until the emulator has replicated every object version and delete marker written so far
    (S3 replication is asynchronous, there as on AWS); returns its figures: `completed` and `failed`
    replications, `lag_seconds_max` and `lag_seconds_mean` from a write to its replicas, and the
    last `failures`. Raises UserError if replication has not caught up within `timeout` seconds."""
    with urllib.request.urlopen(f"{endpoint}{REPLICATION_PATH}?wait={timeout}", timeout=timeout + 10) as response:
        figures = json.loads(response.read())
    if figures["pending"]:
        state = "is paused" if figures["paused"] else f"has not caught up within {timeout:g} s"
        raise UserError(f"the emulator's replication {state}: {figures['pending']} pending")
    return figures


def pause_replication(endpoint: str, paused: bool = True) -> None:
    """Hold the emulator's replication (what is written stays PENDING), or let it go on."""
    request = urllib.request.Request(f"{endpoint}{REPLICATION_PATH}?paused={str(paused).lower()}", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def do_start(*, console, port: int = DEFAULT_PORT, environments: Path | None = None, capture: bool = True) -> None:
    process = start(port)
    state = "already running" if process is None else f"started (pid {process.pid})"
    console.print(f"emulator {state} at {url(port)}", highlight=False)
    if capture:
        pid = start_capture(port, environments)
        state = "already running" if pid is None else f"started (pid {pid})"
        console.print(f"continuous capture {state}: the local stack's source changes are protected as they happen "
                      f"(log: {STATE_DIR / f'capture-{port}.log'})", highlight=False)


def do_stop(*, console, port: int = DEFAULT_PORT) -> None:
    console.print("emulator stopped" if stop(port) else "no emulator was running")


def serve(host: str, port: int, access_log: bool = False) -> None:
    from backup_cfn.local.patches import apply_patches

    apply_patches()
    # werkzeug logs a line per request at INFO: 6% of the emulator's CPU in the demo and a 5 MB log
    # per run, so only on request. Warnings and errors (a failed request's traceback) always are.
    logging.getLogger("werkzeug").setLevel(logging.INFO if access_log else logging.WARNING)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    while not stopping:
        time.sleep(0.2)
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.local.server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the emulator in the foreground")
    serve_parser.add_argument("--host", default=DEFAULT_HOST)
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--access-log", action="store_true", help="log a line per request (werkzeug's)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, access_log=args.access_log)
    # Leave without the interpreter's teardown: freeing the emulator's state object by object takes
    # seconds after a demo (the launcher waits for the exit). Nothing is left to write but the log.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
