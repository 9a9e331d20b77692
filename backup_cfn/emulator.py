"""The offline target: moto in server mode on a loopback port, run by this project's launcher.

The launcher runs moto in a child process of its own (`python -m backup_cfn.emulator serve`), so
the small, documented fixes in `apply_patches()` apply to the emulator without touching the real
templates. `start()` waits until the server answers; `stop()` ends it; both are idempotent.
"""
from __future__ import annotations

import argparse
import json
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


def start(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, log_path: Path | None = None) -> subprocess.Popen | None:
    """Start the emulator in the background; returns the process, or None if one already answers."""
    endpoint = url(port, host)
    if is_ready(endpoint):
        return None
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log_path = log_path or STATE_DIR / f"emulator-{port}.log"
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backup_cfn.emulator", "serve", "--host", host, "--port", str(port)],
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


def stop(port: int = DEFAULT_PORT) -> bool:
    """Stop the emulator this launcher started on `port`; False when none was running."""
    pid_file = _pid_file(port)
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
    """Clear all emulator state (between tests)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def apply_patches() -> None:
    """Fixes for moto behaviours that differ from AWS in ways that would break a real template.
    Each is listed, with the AWS behaviour it restores, in docs/emulator.md. Idempotent."""
    from moto.cloudformation import models as cfn_models

    if getattr(cfn_models, "_backup_cfn_patched", False):
        return
    _patch_change_set_execution(cfn_models)
    _patch_empty_change_set()
    _patch_parameter_changes(cfn_models)
    _patch_in_place_updates()
    _patch_resource_failures()
    _patch_resource_events(cfn_models)
    _patch_kms_key_properties()
    _patch_termination_protection(cfn_models)
    _patch_drift_detection()
    from backup_cfn.engine_emulator import patch_transactions

    patch_transactions()
    cfn_models._backup_cfn_patched = True


def _patch_change_set_execution(cfn_models) -> None:
    """After ExecuteChangeSet the stack has its template's Outputs and Exports, parameters and
    tags, as after CreateStack/UpdateStack (moto 5.2.5 leaves them at the empty REVIEW stack's), and
    the stack's change sets are gone, as AWS removes them on execution; ListChangeSets lists only
    the named stack's change sets (moto lists every stack's). A CREATE change set for a stack in
    REVIEW_IN_PROGRESS is attached to it (moto creates a second stack of the same name)."""
    backend_class = cfn_models.CloudFormationBackend
    original = backend_class.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        try:
            original(self, change_set_name, stack_name)
        except Exception as exc:  # noqa: BLE001 - AWS reports a failed execution through the stack
            _roll_back(cfn_models, self, stack, change_set, exc)
            return
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.parameters = change_set.parameters
        if change_set.tags is not None:
            stack.tags = change_set.tags
        for export in stack.exports:
            self.exports.pop(export.name, None)
        stack.output_map = stack._create_output_map()
        self._validate_export_uniqueness(stack)
        for export in stack.exports:
            self.exports[export.name] = export
        for change_set_id in [i for i, c in self.change_sets.items() if c.stack_id == stack.stack_id]:
            del self.change_sets[change_set_id]

    backend_class.execute_change_set = execute_change_set
    original_create = backend_class.create_change_set

    def create_change_set(self, stack_name, change_set_name, template, parameters, description, change_set_type,
                          *args, **kwargs):
        # A CREATE change set for a stack left in REVIEW_IN_PROGRESS belongs to that stack (moto makes a second one).
        waiting = next((s for s in self.stacks.values() if s.name == stack_name and s.status == "REVIEW_IN_PROGRESS"),
                       None) if change_set_type == "CREATE" else None
        change_set_id, stack_id = original_create(self, stack_name, change_set_name, template, parameters,
                                                  description, change_set_type, *args, **kwargs)
        if waiting is not None and stack_id != waiting.stack_id:
            self.stacks.pop(stack_id)
            change_set = self.change_sets[change_set_id]
            change_set.stack, change_set.stack_id = waiting, waiting.stack_id
            stack_id = waiting.stack_id
        return change_set_id, stack_id

    backend_class.create_change_set = create_change_set

    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def list_change_sets(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        return ActionResult({"Summaries": [c for c in self.cloudformation_backend.change_sets.values()
                                           if c.stack_id == stack.stack_id]})

    CloudFormationResponse.list_change_sets = list_change_sets


class ResourceFailed(Exception):
    """A resource moto could not create or update, named as CloudFormation names it in its events."""

    def __init__(self, logical_id: str, resource_type: str, action: str, cause: BaseException):
        super().__init__(getattr(cause, "message", None) or str(cause) or type(cause).__name__)
        self.logical_id, self.resource_type, self.action = logical_id, resource_type, action


def _roll_back(cfn_models, backend, stack, change_set, failure: Exception) -> None:
    """The stack events and status AWS shows when a resource fails: the resource's *_FAILED event,
    then ROLLBACK_* (a CREATE) or UPDATE_ROLLBACK_* (an UPDATE). The change sets are consumed."""
    creating = change_set.change_set_type == "CREATE"
    verb = "create" if creating else "update"
    if isinstance(failure, ResourceFailed):
        stack.events.append(cfn_models.Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=failure.logical_id,
            physical_resource_id="", resource_type=failure.resource_type,
            resource_status=f"{failure.action.upper()}_FAILED", resource_status_reason=str(failure),
            resource_properties=None))
        summary = f"The following resource(s) failed to {verb}: [{failure.logical_id}]. "
    else:
        summary = f"{type(failure).__name__}: {failure}. "
    if creating:
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=summary + "Rollback requested by user.")
        # What the failed creation made is deleted, except DeletionPolicy Retain (RetainExceptOnCreate goes too).
        try:
            stack.resource_map.delete(rolling_back_create=True)
        except Exception:  # noqa: BLE001 - a resource moto cannot delete stays, as ROLLBACK_FAILED would leave it
            pass
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"
    else:
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=summary)
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    for change_set_id in [i for i, c in backend.change_sets.items() if c.stack_id == stack.stack_id]:
        del backend.change_sets[change_set_id]


def _patch_resource_failures() -> None:
    """A resource that moto cannot create or update fails *that resource* (ResourceFailed, with its
    logical ID), so ExecuteChangeSet reports it through the stack (see _roll_back) as AWS does,
    instead of answering HTTP 500 and leaving the stack in REVIEW_IN_PROGRESS. DeletionPolicy
    RetainExceptOnCreate is honoured (moto deletes such resources with the stack)."""
    from moto.cloudformation import parsing

    original = parsing.parse_and_create_resource

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
        try:
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - every moto failure becomes this resource's failure
            raise ResourceFailed(logical_id, resource_json.get("Type", ""), "create", exc) from exc

    parsing.parse_and_create_resource = parse_and_create_resource

    original_delete = parsing.ResourceMap.delete

    def delete(self, rolling_back_create: bool = False):
        # DeletionPolicy RetainExceptOnCreate is Retain, except when the creation itself rolls back.
        if rolling_back_create:
            return original_delete(self)
        saved = self._resource_json_map
        self._resource_json_map = {
            key: ({**value, "DeletionPolicy": "Retain"} if value.get("DeletionPolicy") == "RetainExceptOnCreate"
                  else value) for key, value in saved.items()}
        try:
            return original_delete(self)
        finally:
            self._resource_json_map = saved

    parsing.ResourceMap.delete = delete


def _patch_resource_events(cfn_models) -> None:
    """Each resource created, updated or deleted gets its *_IN_PROGRESS and *_COMPLETE stack events,
    as in AWS (moto 5.2.5 records stack-level events only), so deploys show progress per resource."""
    from moto.cloudformation import parsing

    def record(resources_map, logical_id, resource_type, status, physical_id=""):
        backend = cfn_models.cloudformation_backends[resources_map._account_id][resources_map._region_name]
        stack = backend.stacks.get(resources_map.stack_id)
        if stack is not None:
            stack.events.append(cfn_models.Event(
                stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                physical_resource_id=physical_id or "", resource_type=resource_type, resource_status=status,
                resource_status_reason=None, resource_properties=None))

    def physical_id(resource) -> str:
        value = getattr(resource, "physical_resource_id", "")
        return value if isinstance(value, str) else ""

    def with_events(original, action):
        # Recorded once the outcome is known: a resource moto skips (None) is asked for again on each
        # reference, and has no events, as it has no resource.
        def wrapper(logical_id, resource_json, resources_map, account_id, region_name):
            resource_type = resource_json.get("Type", "")
            try:
                resource = original(logical_id, resource_json, resources_map, account_id, region_name)
            except Exception:
                record(resources_map, logical_id, resource_type, f"{action}_IN_PROGRESS")
                raise
            if resource is not None:
                record(resources_map, logical_id, resource_type, f"{action}_IN_PROGRESS")
                record(resources_map, logical_id, resource_type, f"{action}_COMPLETE", physical_id(resource))
            return resource
        return wrapper

    parsing.parse_and_create_resource = with_events(parsing.parse_and_create_resource, "CREATE")
    parsing.parse_and_update_resource = with_events(parsing.parse_and_update_resource, "UPDATE")
    original_delete_resource = parsing.ResourceMap._delete_resource

    def delete_resource(self, parsed_resource, resource_json):
        original_delete_resource(self, parsed_resource, resource_json)
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        record(self, logical_id, resource_json.get("Type", ""), "DELETE_IN_PROGRESS", physical_id(parsed_resource))
        record(self, logical_id, resource_json.get("Type", ""), "DELETE_COMPLETE", physical_id(parsed_resource))

    parsing.ResourceMap._delete_resource = delete_resource


def _patch_parameter_changes(cfn_models) -> None:
    """A resource using a parameter whose value changes is listed as Modify in the change set, and
    `Fn::Sub` placeholders count as uses (moto 5.2.5 lists only resources whose JSON changed, and
    sees only `Ref`), so a new handler package shows, and is applied, as a change to the functions."""
    import re

    from moto.cloudformation import parsing

    original_references = parsing.get_references_from_template

    def get_references_from_template(template):
        references = original_references(template)
        for text in _sub_strings(template):
            references += [name.split(".")[0] for name in re.findall(r"\$\{(?!!)([^}]+)\}", text)]
        return references

    parsing.get_references_from_template = get_references_from_template

    def diff(self):
        resource_map = self.stack.resource_map
        by_action = resource_map.build_resource_diff(self.template_dict, self.parameters)
        changes = []
        for action in ("Add", "Modify", "Remove"):
            for name in by_action[action]:
                source = resource_map._resource_json_map if action == "Remove" else self.template_dict["Resources"]
                changes.append(cfn_models.Change(action=action, logical_resource_id=name,
                                                 resource_type=source[name]["Type"]))
        return changes

    cfn_models.ChangeSet.diff = diff


def _sub_strings(template) -> list[str]:
    """The template strings of every Fn::Sub inside `template`."""
    found = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key == "Fn::Sub":
                found.append(value if isinstance(value, str) else value[0])
            found += _sub_strings(value)
    elif isinstance(template, list):
        for item in template:
            found += _sub_strings(item)
    return found


def _patch_empty_change_set() -> None:
    """CreateChangeSet with nothing to change succeeds and gives a FAILED change set whose
    StatusReason says it "didn't contain changes", as AWS does (moto 5.2.5 rejects the call with
    UpdateStack's "No updates are to be performed." ValidationError)."""
    from moto.cloudformation.responses import CloudFormationResponse

    original_create = CloudFormationResponse.create_change_set
    original_validate = CloudFormationResponse._validate_different_update

    def create_change_set(self):
        self._backup_cfn_creating_change_set = True
        try:
            return original_create(self)
        finally:
            self._backup_cfn_creating_change_set = False

    def validate_different_update(self, incoming_params, stack_body, old_stack):
        if getattr(self, "_backup_cfn_creating_change_set", False):
            return None
        return original_validate(self, incoming_params, stack_body, old_stack)

    CloudFormationResponse.create_change_set = create_change_set
    CloudFormationResponse._validate_different_update = validate_different_update


def _patch_in_place_updates() -> None:
    """A modified resource whose moto model has no update method keeps its physical resource, as
    an in-place update does in AWS (moto 5.2.5 forgets it, so a later Ref/GetAtt fails)."""
    from moto.cloudformation import parsing

    original = parsing.parse_and_update_resource

    def parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name):
        try:
            updated = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as this resource's failure (see _roll_back)
            raise ResourceFailed(logical_id, resource_json.get("Type", ""), "update", exc) from exc
        if updated is None and logical_id in resources_map._parsed_resources:
            return resources_map._parsed_resources[logical_id]
        return updated

    parsing.parse_and_update_resource = parse_and_update_resource


def _patch_termination_protection(cfn_models) -> None:
    """UpdateTerminationProtection exists, and DeleteStack refuses a protected stack with AWS's
    ValidationError (moto 5.2.5 has no such action and deletes protected stacks)."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def update_termination_protection(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection", False)
        return ActionResult({"StackId": stack.stack_id})

    backend_class = cfn_models.CloudFormationBackend
    original_delete = backend_class.delete_stack

    def delete_stack(self, name_or_stack_id):
        for stack in self.stacks.values():
            if name_or_stack_id in (stack.name, stack.stack_id) and stack.enable_termination_protection:
                raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection "
                                              "is enabled")
        return original_delete(self, name_or_stack_id)

    CloudFormationResponse.update_termination_protection = update_termination_protection
    backend_class.delete_stack = delete_stack


def _patch_drift_detection() -> None:
    """Drift detection answers in AWS's shapes, honestly: the detection ends DETECTION_FAILED with a
    reason, since moto cannot compare resources with their templates (moto 5.2.5 answers HTTP 500)."""
    import uuid

    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow

    detections: dict[str, str] = {}

    def detect_stack_drift(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        detection_id = str(uuid.uuid4())
        detections[detection_id] = stack.stack_id
        return ActionResult({"StackDriftDetectionId": detection_id})

    def describe_stack_drift_detection_status(self):
        detection_id = self._get_param("StackDriftDetectionId")
        return ActionResult({
            "StackId": detections.get(detection_id, ""), "StackDriftDetectionId": detection_id,
            "StackDriftStatus": "UNKNOWN", "DetectionStatus": "DETECTION_FAILED",
            "DetectionStatusReason": "the local emulator cannot detect drift", "Timestamp": utcnow()})

    def describe_stack_resource_drifts(self):
        self.cloudformation_backend.get_stack(self._get_param("StackName"))
        return ActionResult({"StackResourceDrifts": []})

    CloudFormationResponse.detect_stack_drift = detect_stack_drift
    CloudFormationResponse.describe_stack_drift_detection_status = describe_stack_drift_detection_status
    CloudFormationResponse.describe_stack_resource_drifts = describe_stack_resource_drifts


def _patch_kms_key_properties() -> None:
    """AWS::KMS::Key accepts CloudFormation's Tags ([{Key, Value}]) and a KeyPolicy given as a JSON
    object, as AWS does (moto 5.2.5 fails on both: HTTP 500 on execute, a broken DescribeKey)."""
    from moto.kms.models import Key

    original = Key.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = dict(cloudformation_json["Properties"])
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        properties["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} if "Key" in tag else tag
            for tag in properties.get("Tags", [])
        ]
        return original(cls, resource_name, {**cloudformation_json, "Properties": properties},
                        account_id, region_name, **kwargs)

    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def serve(host: str, port: int) -> None:
    apply_patches()
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
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the emulator in the foreground")
    serve_parser.add_argument("--host", default=DEFAULT_HOST)
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
