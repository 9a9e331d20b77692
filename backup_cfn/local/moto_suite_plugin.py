"""pytest plugin for `make moto-tests` (moto_suite.py), loaded into moto's own test run with `-p`:
applies the emulator's patches before any test when BACKUP_CFN_MOTO_SUITE_PATCHED=1, and writes
each test's outcome (passed, failed, skipped; an error in setup or teardown counts as failed) to
the JSON file named by BACKUP_CFN_MOTO_SUITE_RESULTS. Under pytest-xdist the workers apply the
patches and the controller, which receives every report, writes the file."""
from __future__ import annotations

import json
import os

_outcomes: dict[str, str] = {}


def pytest_configure(config) -> None:
    if os.environ.get("BACKUP_CFN_MOTO_SUITE_PATCHED") == "1":
        from backup_cfn.local.patches import apply_patches

        apply_patches()


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = "passed" if report.passed else "skipped"
    elif report.when == "setup" and report.skipped:
        _outcomes[report.nodeid] = "skipped"


def pytest_sessionfinish(session) -> None:
    path = os.environ.get("BACKUP_CFN_MOTO_SUITE_RESULTS")
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "w") as out:
            json.dump(_outcomes, out, sort_keys=True)
