"""`make moto-tests`: moto's own test suite, at the version requirements.txt pins, run twice for the
services the emulator's patches touch: stock, and with `apply_patches()` applied in the test process
(moto_suite_plugin.py). A test that passes stock and fails patched is a behaviour the patches broke,
and fails the target, unless INTENDED lists it with the AWS behaviour that makes the difference
right. A listed test that no longer fails patched fails the target too, so the list stays true.

moto's sdist (from PyPI, with `pip download --no-deps --no-binary :all:`) ships its tests; the
extracted copy's own `moto/` package is removed, so the tests import the installed moto, the one the
emulator serves. Figures and how to read a failure: docs/emulator.md, "moto's own tests".

    .venv/bin/python -m backup_cfn.local.moto_suite [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".moto-tests"
PLUGIN = "backup_cfn.local.moto_suite_plugin"
RESULTS_ENV = "BACKUP_CFN_MOTO_SUITE_RESULTS"

# The patched services' test folders (S3: the listing tests, and what s3events.py touches: deletes,
# bucket notifications, the CloudFormation bucket, EventBridge delivery; CloudWatch: GetMetricData).
SUITES = (
    "tests/test_cloudformation",
    "tests/test_sqs",
    "tests/test_dynamodb",
    "tests/test_s3/test_s3_list_objects.py",
    "tests/test_s3/test_s3_list_object_versions.py",
    "tests/test_s3/test_s3.py",
    "tests/test_s3/test_s3_cloudformation.py",
    "tests/test_s3/test_s3_notifications.py",
    "tests/test_s3/test_s3_eventbridge_integration.py",
    "tests/test_cloudwatch/test_cloudwatch.py",
    "tests/test_cloudwatch/test_cloudwatch_expressions.py",
    "tests/test_kms",
)

_EMPTY_CHANGE_SET = (
    "patch_empty_change_set: AWS creates a change set with nothing to change and marks it FAILED, StatusReason "
    "\"The submitted information didn't contain changes. Submit different information to create a change set.\" "
    "(DescribeChangeSet's StatusReason, CloudFormation API Reference; the AWS CLI's `cloudformation deploy "
    "--no-fail-on-empty-changeset`); moto's test asserts moto's own refusal of the call")

_S3_EVENT_REASON = (
    "patch_eventbridge_events: an S3 event's detail.reason is the API that made the change, \"PutObject\", "
    "\"POST Object\", \"CopyObject\" or \"CompleteMultipartUpload\" for Object Created and \"DeleteObject\" "
    "(or \"Lifecycle Expiration\") for Object Deleted (AWS: S3 User Guide, \"EventBridge event message structure\"); "
    "moto's test asserts moto's own \"ObjectCreated\"/\"ObjectRemoved\"")
_S3_EVENTBRIDGE = "tests/test_s3/test_s3_eventbridge_integration.py::"

# Tests that pass on stock moto and fail patched, on purpose: test ID -> the AWS behaviour restored.
INTENDED: dict[str, str] = {
    **{_S3_EVENTBRIDGE + test: _S3_EVENT_REASON for test in (
        "test_complete_multipart_upload_notification", "test_copy_object_notification",
        "test_delete_object_notification", "test_put_object_notification_ObjectCreated_POST",
        "test_put_object_notification_ObjectCreated_PUT[cn-north-1-aws-cn]",
        "test_put_object_notification_ObjectCreated_PUT[us-west-2-aws]", "test_restore_key_notifications")},
    "tests/test_s3/test_s3_notifications.py::test_send_event_bridge_message": _S3_EVENT_REASON,
    # CreateChangeSet(UsePreviousTemplate=True) with nothing changed: moto's test expects the call to be
    # refused with "No updates are to be performed."; AWS (and the patch) create a FAILED change set.
    "tests/test_cloudformation/test_cloudformation_stack_crud.py::"
    "test_create_change_set_w_previous_template_faillures[no_changes]": _EMPTY_CHANGE_SET,
}


@dataclass(frozen=True)
class Side:
    name: str
    outcomes: dict[str, str]    # test ID -> passed | failed | skipped
    seconds: float

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    def line(self) -> str:
        return (f"{self.name}: {self.count('passed')} passed, {self.count('failed')} failed, "
                f"{self.count('skipped')} skipped in {self.seconds:.0f} s")


def pinned_moto_version(requirements: Path = ROOT / "requirements.txt") -> str:
    for line in requirements.read_text().splitlines():
        match = re.match(r"^moto(?:\[[^\]]*\])?==([\w.]+)", line.strip())
        if match:
            return match.group(1)
    raise SystemExit(f"no moto==VERSION pin in {requirements}")


def fetch_sources(version: str, cache: Path = CACHE) -> Path:
    """moto's sdist at `version`, from PyPI, extracted under `cache` (downloaded once)."""
    source = cache / f"moto-{version}"
    if (source / "tests" / "conftest.py").exists():
        return source
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"moto-{version}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"moto=={version}", "--dest", str(cache)], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    # The tests must import the installed moto (the emulator's), not the copy beside them.
    shutil.rmtree(source / "moto")
    return source


def run_side(source: Path, name: str, *, patched: bool, workers: int, suites=SUITES) -> Side:
    results = source.parent / f"results-{name}.json"
    results.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PLUGIN,
               "--override-ini", "addopts=", "-W", "ignore::DeprecationWarning", *suites]
    if workers > 1:
        command += ["-n", str(workers)]
    env = {**os.environ, RESULTS_ENV: str(results), "BACKUP_CFN_MOTO_SUITE_PATCHED": "1" if patched else "0"}
    # moto's tests talk to the mock, never to AWS: no credentials of the caller can leak into them.
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "TEST_SERVER_MODE"):
        env.pop(key, None)
    started = time.monotonic()
    completed = subprocess.run(command, cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    seconds = time.monotonic() - started
    (source.parent / f"pytest-{name}.log").write_text(completed.stdout)
    if not results.exists():
        raise SystemExit(f"moto's tests ({name}) did not run: see {source.parent / f'pytest-{name}.log'}")
    return Side(name, json.loads(results.read_text()), seconds)


@dataclass(frozen=True)
class Verdict:
    broken: list[str]          # pass stock, fail patched, not intended
    intended: list[str]        # pass stock, fail patched, listed
    stale: list[str]           # listed, but no longer failing patched
    flaky: tuple[str, ...] = ()    # failed patched once, passed when run again alone

    @property
    def ok(self) -> bool:
        return not self.broken and not self.stale


def compare(stock: Side, patched: Side, intended: dict[str, str] = INTENDED) -> Verdict:
    regressions = sorted(t for t, o in stock.outcomes.items() if o == "passed" and patched.outcomes.get(t) == "failed")
    return Verdict(broken=[t for t in regressions if t not in intended],
                   intended=[t for t in regressions if t in intended],
                   stale=sorted(t for t in intended if t not in regressions))


def rerun_broken(source: Path, verdict: Verdict) -> Verdict:
    """A test that passed stock and failed patched runs again, patched and alone: one that passes
    then is timing-dependent (reported as flaky), not broken by the patches."""
    if not verdict.broken:
        return verdict
    again = run_side(source, "patched-again", patched=True, workers=1, suites=tuple(verdict.broken))
    flaky = tuple(t for t in verdict.broken if again.outcomes.get(t) == "passed")
    return Verdict([t for t in verdict.broken if t not in flaky], verdict.intended, verdict.stale, flaky)


def report(stock: Side, patched: Side, verdict: Verdict) -> list[str]:
    lines = [stock.line(), patched.line()]
    for test in verdict.flaky:
        lines.append(f"flaky (failed patched once, passed alone): {test}")
    for test in verdict.intended:
        lines.append(f"intended: {test}: {INTENDED[test]}")
    for test in verdict.broken:
        lines.append(f"BROKEN by the patches (passes stock, fails patched): {test}")
    for test in verdict.stale:
        lines.append(f"listed in INTENDED but no longer failing patched (remove it): {test}")
    lines.append("moto-tests: " + ("ok" if verdict.ok else
                                   f"{len(verdict.broken)} broken, {len(verdict.stale)} stale"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MOTO_TESTS_WORKERS", "2")),
                        help="pytest-xdist workers per side (default 2)")
    args = parser.parse_args(argv)
    source = fetch_sources(pinned_moto_version())
    stock = run_side(source, "stock", patched=False, workers=args.workers)
    print(stock.line(), flush=True)
    patched = run_side(source, "patched", patched=True, workers=args.workers)
    verdict = rerun_broken(source, compare(stock, patched))
    for line in report(stock, patched, verdict):
        print(line)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
