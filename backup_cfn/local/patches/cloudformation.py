"""CloudFormation in the emulator behaves as AWS does where a deploy depends on it: change sets
(execution, empty ones, parameter changes), per-resource events and failures, in-place updates,
termination protection and an honest drift API. Each function is one patch, listed with the AWS
behaviour it restores in docs/emulator.md and driven through the API in tests/local/test_emulator_patches.py."""
from __future__ import annotations


def patch_change_set_execution(cfn_models) -> None:
    """After ExecuteChangeSet the stack has its template's Outputs and Exports, parameters and
    tags, as after CreateStack/UpdateStack (moto 5.2.5 leaves them at the empty REVIEW stack's).
    The executed change set stays, with ExecutionStatus EXECUTE_COMPLETE, and the stack's *other*
    change sets are deleted: "When you execute a change set, CloudFormation deletes all other change
    sets associated with the stack because they aren't valid for the updated stack" (ExecuteChangeSet,
    AWS CloudFormation API Reference). ListChangeSets lists only the named stack's change sets (moto
    lists every stack's). A CREATE change set for a stack in REVIEW_IN_PROGRESS is attached to it
    (moto creates a second stack of the same name)."""
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
        _delete_other_change_sets(self, stack, change_set)

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


def _delete_other_change_sets(backend, stack, executed) -> None:
    for change_set_id in [i for i, c in backend.change_sets.items() if c.stack_id == stack.stack_id and c is not executed]:
        del backend.change_sets[change_set_id]


class ResourceFailed(Exception):
    """A resource moto could not create or update, named as CloudFormation names it in its events."""

    def __init__(self, logical_id: str, resource_type: str, action: str, cause: BaseException):
        super().__init__(getattr(cause, "message", None) or str(cause) or type(cause).__name__)
        self.logical_id, self.resource_type, self.action = logical_id, resource_type, action


def _roll_back(cfn_models, backend, stack, change_set, failure: Exception) -> None:
    """The stack events and status AWS shows when a resource fails: the resource's *_FAILED event,
    then ROLLBACK_* (a CREATE) or UPDATE_ROLLBACK_* (an UPDATE). The executed change set stays,
    EXECUTE_FAILED; the stack's other change sets are deleted, as on any execution."""
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
        except Exception as exc:  # noqa: BLE001 - what the rollback cannot delete fails it, as on AWS
            _rollback_failed(cfn_models, stack, exc)
        else:
            stack._add_stack_event("ROLLBACK_COMPLETE")
            stack.status = "ROLLBACK_COMPLETE"
    else:
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=summary)
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    change_set.execution_status = "EXECUTE_FAILED"
    _delete_other_change_sets(backend, stack, change_set)


def _rollback_failed(cfn_models, stack, failure: Exception) -> None:
    """A resource the rollback could not delete (a DynamoDB table with deletion protection): its
    DELETE_FAILED event, and the stack ROLLBACK_FAILED ("The following resource(s) failed to delete:
    [X]."), where AWS leaves it: it can only be deleted, retaining what cannot go."""
    resource_map = stack.resource_map
    left = sorted(logical_id for logical_id, value in resource_map._resource_json_map.items()
                  if value.get("DeletionPolicy") != "Retain" and not isinstance(
                      resource_map._parsed_resources.get(logical_id, ""), (str, type(None))))
    reason = getattr(failure, "message", None) or str(failure) or type(failure).__name__
    for logical_id in left:
        stack.events.append(cfn_models.Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
            physical_resource_id=getattr(resource_map._parsed_resources[logical_id], "physical_resource_id", "") or "",
            resource_type=resource_map._resource_json_map[logical_id].get("Type", ""),
            resource_status="DELETE_FAILED", resource_status_reason=reason, resource_properties=None))
    stack._add_stack_event("ROLLBACK_FAILED",
                           resource_status_reason=f"The following resource(s) failed to delete: [{', '.join(left)}]. ")
    stack.status = "ROLLBACK_FAILED"


def patch_resource_failures(cfn_models) -> None:
    """A resource that moto cannot create or update fails *that resource* (ResourceFailed, with its
    logical ID), so ExecuteChangeSet reports it through the stack (see _roll_back) as AWS does,
    instead of answering HTTP 500 and leaving the stack in REVIEW_IN_PROGRESS. CreateStack and
    UpdateStack, which moto runs synchronously, answer with the resource's own error as stock moto
    does (a missing export or a bad Fn::GetAtt: 400 ValidationError, as AWS). DeletionPolicy
    RetainExceptOnCreate is honoured (moto deletes such resources with the stack)."""
    from moto.cloudformation import parsing

    backend_class = cfn_models.CloudFormationBackend
    for name in ("create_stack", "update_stack"):
        setattr(backend_class, name, _answering_with_the_cause(getattr(backend_class, name)))

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


def _answering_with_the_cause(original):
    """ResourceFailed is for ExecuteChangeSet's rollback alone: elsewhere the resource's own error
    (a moto ValidationError answers 400) reaches the client, as without the patch."""
    def call(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except ResourceFailed as failure:
            raise (failure.__cause__ or failure) from None
    return call


def patch_resource_events(cfn_models) -> None:
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


def patch_parameter_changes(cfn_models) -> None:
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
    original_diff = parsing.ResourceMap.build_resource_diff

    def build_resource_diff(self, other_template, parameters=None):
        """A resource whose Fn::If (or Condition) depends on a changed parameter is modified too."""
        by_action = original_diff(self, other_template, parameters)
        if not parameters:
            return by_action
        changed = {p for p in parameters if self.input_parameters.get(p) != parameters[p]}
        conditions = other_template.get("Conditions", {})
        for name, resource in other_template["Resources"].items():
            if name in self._resource_json_map and name not in by_action["Modify"] and \
                    changed & _condition_parameters(_conditions_used(resource), conditions):
                by_action["Modify"].append(name)
        return by_action

    parsing.ResourceMap.build_resource_diff = build_resource_diff


def _conditions_used(fragment) -> set[str]:
    """Condition names a resource (or a condition) uses: Fn::If's first argument, Condition keys."""
    found = set()
    if isinstance(fragment, dict):
        for key, value in fragment.items():
            if key == "Fn::If" and isinstance(value, list) and value:
                found.add(value[0])
            elif key == "Condition" and isinstance(value, str):
                found.add(value)
            found |= _conditions_used(value)
    elif isinstance(fragment, list):
        for item in fragment:
            found |= _conditions_used(item)
    return found


def _condition_parameters(names: set[str], conditions: dict) -> set[str]:
    """The parameters the named conditions read, through the conditions they use in turn."""
    from moto.cloudformation import parsing

    seen, params, todo = set(), set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in conditions:
            continue
        seen.add(name)
        params |= set(parsing.get_references_from_template(conditions[name]))
        todo += _conditions_used(conditions[name])
    return params


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


def patch_empty_change_set() -> None:
    """CreateChangeSet with nothing to change succeeds and gives a FAILED change set whose
    StatusReason says it "didn't contain changes", as AWS does (moto 5.2.5 rejects the call with
    UpdateStack's "No updates are to be performed." ValidationError). AWS's side: DescribeChangeSet's
    StatusReason (CloudFormation API Reference), the AWS CLI's `cloudformation deploy
    --no-fail-on-empty-changeset`, and what tools see on AWS (ansible-collections/amazon.aws#507).
    moto's own test of the refusal fails with it, on purpose (moto_suite.INTENDED)."""
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


def patch_in_place_updates() -> None:
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


def patch_termination_protection(cfn_models) -> None:
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


def patch_drift_detection() -> None:
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


def patch_change_set_validation_events() -> None:
    """DescribeEvents for a change set answers in AWS's shape: the operation's events, of which
    none is an early-validation finding, since moto runs no pre-deployment validation (moto 5.2.5
    answers HTTP 500, "The describe_events action has not been implemented")."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def describe_events(self):
        change_set = self._get_param("ChangeSetName")
        if change_set:
            self.cloudformation_backend.describe_change_set(change_set)
        return ActionResult({"OperationEvents": []})

    CloudFormationResponse.describe_events = describe_events
