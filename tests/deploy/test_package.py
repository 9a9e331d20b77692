import hashlib
import io
import zipfile

import pytest

from backup_cfn import aws
from backup_cfn.deploy import handler_package
from backup_cfn.errors import UserError


@pytest.fixture
def source(tmp_path):
    """A checkout in miniature: handlers importing powertools and part of the local package."""
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "__init__.py").write_text("")
    (tmp_path / "handlers" / "worker.py").write_text(
        "from aws_lambda_powertools import Logger\n"
        "from backup_cfn import contract\n"
        "from backup_cfn.engine.jobs import run\n"
        "import boto3\nimport json\n"
        "def handler(event, context):\n    return run(event)\n")
    pkg = tmp_path / "backup_cfn"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "contract.py").write_text("PREFIX = 'content/'\n")
    (pkg / "template.py").write_text("import troposphere\n")
    (pkg / "engine" / "__init__.py").write_text("")
    (pkg / "engine" / "jobs.py").write_text("from ..contract import PREFIX\ndef run(event):\n    return PREFIX\n")
    return tmp_path


def test_package_holds_handlers_reached_modules_and_pure_python_libraries(source):
    built = handler_package.build_package(source)
    assert "handlers/worker.py" in built.files
    assert {"backup_cfn/__init__.py", "backup_cfn/contract.py", "backup_cfn/engine/__init__.py",
            "backup_cfn/engine/jobs.py"} <= set(built.files)
    assert "backup_cfn/template.py" not in built.files
    assert "aws_lambda_powertools/logging/logger.py" in built.files
    assert "typing_extensions.py" in built.files
    assert not any(f.startswith(("boto3/", "botocore/", "jmespath/")) for f in built.files)
    assert not any(f.endswith(".pyc") or "__pycache__" in f or f.endswith("/RECORD") for f in built.files)
    assert built.distributions == ("aws_lambda_powertools==3.37.0", "typing_extensions==4.16.0")


def test_package_is_reproducible_sorted_with_fixed_times_and_permissions(source):
    first = handler_package.build_package(source)
    (source / "handlers" / "worker.py").touch()
    second = handler_package.build_package(source)
    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.data).hexdigest()
    infos = zipfile.ZipFile(io.BytesIO(first.data)).infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_changed_source_changes_the_sha(source):
    first = handler_package.build_package(source)
    (source / "backup_cfn" / "contract.py").write_text("PREFIX = 'blobs/'\n")
    assert handler_package.build_package(source).sha256 != first.sha256


def test_handler_reaching_a_template_module_is_refused(source):
    (source / "handlers" / "pruner.py").write_text("from backup_cfn import template\n")
    with pytest.raises(UserError, match="troposphere.*template-building module"):
        handler_package.build_package(source)


def test_import_nobody_provides_is_a_clear_error(source):
    (source / "handlers" / "pruner.py").write_text("import not_installed_anywhere\n")
    with pytest.raises(UserError, match="'not_installed_anywhere'.*requirements.in"):
        handler_package.build_package(source)


def test_no_handlers_is_a_clear_error(tmp_path):
    (tmp_path / "handlers").mkdir()
    with pytest.raises(UserError, match="no handlers to package"):
        handler_package.build_package(tmp_path)


def test_upload_puts_under_the_sha_key_once(local_env, source):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="artifacts")
    built = handler_package.build_package(source)
    assert handler_package.upload_package(s3, "artifacts", built) is True
    assert handler_package.upload_package(s3, "artifacts", built) is False
    stored = s3.get_object(Bucket="artifacts", Key=f"handlers/{built.sha256}.zip")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == built.sha256


def test_a_library_built_for_one_platform_is_refused(source):
    # cryptography ships compiled wheels (cp3x-abi3-manylinux...): not the same on arm64 Lambda.
    (source / "handlers" / "pruner.py").write_text("import cryptography\n")
    with pytest.raises(UserError, match=r"cryptography .* is not a pure-Python wheel \(tags: cp3"):
        handler_package.build_package(source)


def test_requirements_are_evaluated_for_the_lambda_target():
    assert handler_package.TARGET_MARKERS["python_version"] == "3.14"
    from packaging.requirements import Requirement

    assert Requirement('backports-zoneinfo; python_version < "3.9"').marker.evaluate(handler_package.TARGET_MARKERS) is False
    assert Requirement('x; platform_machine == "aarch64"').marker.evaluate(handler_package.TARGET_MARKERS) is True
