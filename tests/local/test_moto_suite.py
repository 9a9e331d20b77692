"""`make moto-tests` (backup_cfn/local/moto_suite.py): its verdict on two runs of moto's own tests, and
the plugin that records each test's outcome. The runs themselves take minutes and are the target's
job; here the decisions are checked on outcomes given, and the plugin inside a small pytest run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backup_cfn.local import moto_suite
from backup_cfn.local.moto_suite import INTENDED, Side, Verdict, compare, pinned_moto_version, report

LISTED = next(iter(INTENDED))
ONE_LISTED = {LISTED: INTENDED[LISTED]}     # the verdict's rules, on one listed test


def test_a_test_passing_stock_and_failing_patched_is_broken_unless_listed():
    stock = Side("stock", {"a": "passed", "b": "passed", "c": "failed", LISTED: "passed"}, 1.0)
    patched = Side("patched", {"a": "passed", "b": "failed", "c": "failed", LISTED: "failed"}, 1.0)
    verdict = compare(stock, patched, ONE_LISTED)
    assert (verdict.broken, verdict.intended, verdict.stale) == (["b"], [LISTED], [])
    assert not verdict.ok


def test_a_test_failing_on_both_sides_or_only_stock_is_not_the_patches_doing():
    stock = Side("stock", {"docker": "failed", "fixed": "failed", LISTED: "passed"}, 1.0)
    patched = Side("patched", {"docker": "failed", "fixed": "passed", LISTED: "failed"}, 1.0)
    assert compare(stock, patched, ONE_LISTED).ok


def test_a_listed_test_that_no_longer_fails_patched_fails_the_target():
    stock = Side("stock", {LISTED: "passed"}, 1.0)
    patched = Side("patched", {LISTED: "passed"}, 1.0)
    verdict = compare(stock, patched, ONE_LISTED)
    assert verdict.stale == [LISTED] and not verdict.ok
    assert report(stock, patched, verdict)[-1] == "moto-tests: 0 broken, 1 stale"


def test_a_failure_that_passes_when_run_again_is_flaky_not_broken(monkeypatch, tmp_path):
    runs = []

    def run_side(source, name, *, patched, workers, suites=moto_suite.SUITES):
        runs.append((name, patched, workers, suites))
        return Side(name, {"b": "passed", "d": "failed"}, 1.0)

    monkeypatch.setattr(moto_suite, "run_side", run_side)
    verdict = moto_suite.rerun_broken(tmp_path, Verdict(["b", "d"], [], []))
    assert runs == [("patched-again", True, 1, ("b", "d"))]
    assert (verdict.broken, verdict.flaky) == (["d"], ("b",))


def test_every_intended_difference_names_its_aws_source():
    assert INTENDED and all("AWS" in why and len(why) > 80 for why in INTENDED.values())


def test_the_version_is_the_pinned_one(tmp_path):
    assert pinned_moto_version() == "5.2.5"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3==1.0\nmoto[server]==9.8.7\n")
    assert pinned_moto_version(requirements) == "9.8.7"


def test_the_plugin_records_passes_failures_errors_and_skips(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "def test_passes(): pass\n"
        "def test_fails(): assert False\n"
        "def test_skipped(): pytest.skip('no docker')\n"
        "@pytest.fixture\n"
        "def broken(): raise RuntimeError('setup')\n"
        "def test_errors(broken): pass\n")
    results = tmp_path / "results.json"
    env = {**os.environ, moto_suite.RESULTS_ENV: str(results), "BACKUP_CFN_MOTO_SUITE_PATCHED": "0"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", moto_suite.PLUGIN,
                    "test_probe.py"], cwd=tmp_path, env=env, capture_output=True, check=False)
    assert json.loads(results.read_text()) == {
        "test_probe.py::test_errors": "failed", "test_probe.py::test_fails": "failed",
        "test_probe.py::test_passes": "passed", "test_probe.py::test_skipped": "skipped"}


def test_the_moto_tests_target_runs_the_suite():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "moto-tests: $(STAMP)" in makefile and "-m backup_cfn.local.moto_suite" in makefile
