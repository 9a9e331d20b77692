"""Shared fixtures. The suite starts its own emulator (moto in server mode) on a free loopback
port, once per test session, and resets its state around each test that uses it."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

from backup_cfn.config import load_environment
from backup_cfn.local import server

ROOT = Path(__file__).resolve().parent.parent

# No per-example deadline: on a shared 2-core machine an example's time says nothing about the code,
# and timing belongs in `make bench`. Examples still run to hypothesis's own limits.
settings.register_profile("backup-cfn", deadline=None)
settings.load_profile("backup-cfn")


@pytest.fixture(scope="session")
def emulator_endpoint(tmp_path_factory):
    """URL of a running emulator private to this test session."""
    os.environ.setdefault("BACKUP_CFN_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    server.STATE_DIR = Path(os.environ["BACKUP_CFN_STATE_DIR"])
    port = server.free_port()
    process = server.start(port)
    yield server.url(port)
    server.stop(port)
    if process is not None:
        process.wait(timeout=10)


@pytest.fixture
def local_env(vault_env):
    """The `local` environment pointed at the session's emulator, with clean emulator state: as the
    environments file has it (its vault in a second account). A test folder whose tests are about
    the one-account layout overrides it (tests/deploy/conftest.py)."""
    return vault_env


@pytest.fixture
def vault_env(emulator_endpoint, monkeypatch):
    """`local` with its vault in a second account, whatever a folder makes of `local_env`."""
    server.reset(emulator_endpoint)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return dataclasses.replace(load_environment("local"), endpoint_url=emulator_endpoint)


@pytest.fixture
def one_account_env(local_env):
    """`local` in the one-account layout: the same-account replica instead of the vault."""
    return dataclasses.replace(local_env, vault=None)


@pytest.fixture
def engine(local_env):
    """The engine's resources on the emulator with a fake clock (engine_support.make_engine); test
    folders that need a backed-up engine override it."""
    from engine_support import make_engine

    return make_engine(local_env)


@pytest.fixture
def environments(tmp_path, local_env):
    """The project's environments file with `local` pointed at the session's emulator, for CLI tests,
    in the one-account layout (the same-account replica): the vault's CLI tests use
    `vault_environments`."""
    return _environments_file(tmp_path, local_env, vault=False)


@pytest.fixture
def vault_environments(tmp_path, local_env):
    """The environments file as the project ships it: `local` with its vault in a second account."""
    return _environments_file(tmp_path, local_env, vault=True)


def _environments_file(tmp_path: Path, local_env, *, vault: bool) -> Path:
    from backup_cfn.config import DEFAULT_ENVIRONMENTS_FILE

    text = re.sub(r'endpoint_url = "[^"]*"', f'endpoint_url = "{local_env.endpoint_url}"',
                  DEFAULT_ENVIRONMENTS_FILE.read_text())
    if not vault:
        text = re.sub(r"^\[env\.local\.vault\].*?(?=^\[|\Z)", "", text, flags=re.S | re.M)
    path = tmp_path / "environments.toml"
    path.write_text(text)
    return path
