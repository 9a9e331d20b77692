"""The forecast's checks that read the account (read calls only; none writes): names a new
resource takes that exist already, buckets to be deleted or replaced that hold objects, what the
next prune deletes under a shorter retention, Lambda's unreserved concurrency, the warnings of
CloudFormation's own early validation on the change set, and whether an existing source bucket's
events reach EventBridge. A read that fails (a permission the
operator lacks) is a note saying what was not checked, never a failed review."""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from backup_cfn import contract
from backup_cfn.deploy.review.forecast_input import ForecastInput, new_names, property_at
from backup_cfn.deploy.review.model import BLOCKING, NOTE, WARNING, Finding
from backup_cfn.deploy.review.pruning import describe_change, forecast_prune, keeps_less
from backup_cfn.deploy.source_events import other_configurations, read_configuration
from backup_cfn.engine.retention import PERIOD_RULES, RetentionPolicy
from backup_cfn.errors import describe_aws_error

# Lambda keeps this much concurrency unreserved in every account; a reservation below it fails.
MINIMUM_UNRESERVED_CONCURRENCY = 100
NOT_FOUND = ("404", "NoSuchBucket", "NoSuchEntity", "ResourceNotFoundException", "NotFoundException",
             "TrailNotFoundException", "ResourceNotFound")


def _unchecked(logical_id: str, what: str, exc: Exception) -> Finding:
    return Finding("unchecked", logical_id, NOTE, f"could not check {what}: {describe_aws_error(exc) or exc}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- a new physical name that exists already ---------------------------------------------------------

def _holder(readers, resource_type: str, name: str) -> str | None:
    """Where a resource of that name exists already, or None. Raises what the read raised."""
    try:
        if resource_type == "AWS::S3::Bucket":
            readers("s3").head_bucket(Bucket=name)
            return "in this account"
        if resource_type == "AWS::IAM::Role":
            readers("iam").get_role(RoleName=name)
        elif resource_type == "AWS::Lambda::Function":
            readers("lambda").get_function(FunctionName=name)
        elif resource_type == "AWS::Logs::LogGroup":
            pages = readers("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
            if not any(group["logGroupName"] == name for page in pages for group in page.get("logGroups", [])):
                return None
        elif resource_type == "AWS::KMS::Alias":
            readers("kms").describe_key(KeyId=name)
        elif resource_type == "AWS::CloudTrail::Trail":
            readers("cloudtrail").get_trail(Name=name)
        elif resource_type == "AWS::CloudWatch::Dashboard":
            readers("cloudwatch").get_dashboard(DashboardName=name)
        return "in this account and region"
    except ClientError as exc:
        if _code(exc) in NOT_FOUND:
            return None
        if resource_type == "AWS::S3::Bucket" and _code(exc) in ("403", "AccessDenied", "Forbidden"):
            return "in another account (bucket names are global)"
        if resource_type == "AWS::S3::Bucket" and _code(exc) in ("301", "PermanentRedirect"):
            return "in another region"
        raise


def names_taken(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change, resource_type, name in new_names(inp):
        try:
            holder = _holder(inp.readers, resource_type, name)
        except (ClientError, BotoCoreError) as exc:
            findings.append(_unchecked(change.logical_id, f"whether {name!r} exists", exc))
            continue
        if holder:
            findings.append(Finding("name-taken", change.logical_id, BLOCKING, (
                f"a {resource_type} named {name!r} exists already {holder}, outside this change: creating "
                f"{change.logical_id} fails ('{name} already exists') and the stack rolls back; delete or "
                "import it, or rename")))
    return findings


# --- a bucket to be deleted or replaced that holds objects --------------------------------------------------

def _policy(inp: ForecastInput, change) -> str:
    """CloudFormation's PolicyAction, or (the emulator gives none) the deployed template's policy."""
    if change.policy_action:
        return change.policy_action
    old = (inp.old or {}).get(change.logical_id, {})
    policy = old.get("DeletionPolicy" if change.action == "Remove" else "UpdateReplacePolicy") or "Delete"
    return policy if change.action == "Remove" else f"ReplaceAnd{policy}"


def _physical_id(inp: ForecastInput, logical_id: str) -> str:
    """The deployed resource's physical ID (the emulator's change sets carry none)."""
    pages = inp.cloudformation.get_paginator("list_stack_resources").paginate(StackName=inp.change_set.stack_id)
    return next((r.get("PhysicalResourceId", "") for page in pages for r in page["StackResourceSummaries"]
                 if r["LogicalResourceId"] == logical_id), "")


def buckets_not_empty(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change in inp.changes_of("AWS::S3::Bucket", ("Modify", "Remove")):
        if change.action == "Modify" and not change.replaces:
            continue
        try:
            name = change.physical_id or _physical_id(inp, change.logical_id)
            page = inp.readers("s3").list_object_versions(Bucket=name, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            findings.append(_unchecked(change.logical_id, "whether the bucket is empty", exc))
            continue
        if not (page.get("Versions") or page.get("DeleteMarkers")):
            continue
        how = "removed" if change.action == "Remove" else "replaced"
        policy = _policy(inp, change)
        if policy in ("Delete", "ReplaceAndDelete"):
            findings.append(Finding("bucket-not-empty", change.logical_id, BLOCKING, (
                f"s3://{name} is to be {how} and deleted ({policy}) but holds objects: S3 deletes only empty "
                "buckets, so the deletion fails and the bucket stays behind; empty it first, or retain it")))
        else:
            findings.append(Finding("bucket-not-empty", change.logical_id, WARNING, (
                f"s3://{name} is to be {how} and is kept ({policy}) with its objects: it leaves the stack, "
                "still billed and no longer managed by it")))
    return findings


# --- a shorter retention: what the next prune deletes -------------------------------------------------------

def _retention_policy(properties: dict) -> RetentionPolicy | None:
    """The collector's rules as the pruner function's environment sets them; None when unreadable."""
    values = [property_at(properties, "Environment", "Variables", name) for name in (
        contract.ENV_RETENTION_DAYS, contract.ENV_KEEP_WEEKLY, contract.ENV_KEEP_MONTHLY, contract.ENV_KEEP_YEARLY)]
    if not str(values[0]).isdigit():
        return None
    return RetentionPolicy(int(values[0]), *(int(v) if str(v).isdigit() else 0 for v in values[1:]))


def retention_shortened(inp: ForecastInput) -> list[Finding]:
    findings = []
    for change in inp.changes_of("AWS::Lambda::Function", ("Modify",)):
        new_properties = inp.new_properties(change.logical_id)
        if new_properties.get("Handler") != contract.HANDLER_PRUNER:
            continue
        old, new = _retention_policy(inp.old_properties(change.logical_id)), _retention_policy(new_properties)
        if old is None or new is None or not keeps_less(old, new):
            continue
        bucket = inp.outputs.get(contract.OUTPUT_BACKUP_BUCKET, "")
        try:
            prune = forecast_prune(inp.readers("s3"), bucket, old=old, new=new, now=inp.now)
        except (ClientError, BotoCoreError) as exc:
            findings.append(Finding("retention-shortened", change.logical_id, BLOCKING, (
                f"{describe_change(old, new)}: the next prune deletes every snapshot the new rules no longer keep "
                f"(could not count them: {describe_aws_error(exc) or exc})")))
            continue
        findings.append(Finding("retention-shortened", change.logical_id, BLOCKING if prune.expired else WARNING,
                                prune.summary(old, new, bucket), data={
                                    "retention_days_before": old.retention_days,
                                    "retention_days_after": new.retention_days,
                                    **{f"keep_{rule}_before": old.periods(rule) for rule in PERIOD_RULES},
                                    **{f"keep_{rule}_after": new.periods(rule) for rule in PERIOD_RULES},
                                    "bucket": bucket, **prune.figures()}))
    return findings


# --- Lambda's unreserved concurrency ------------------------------------------------------------------------

def lambda_concurrency(inp: ForecastInput) -> list[Finding]:
    added: dict[str, int] = {}
    for change in inp.changes_of("AWS::Lambda::Function", ("Add", "Modify")):
        new = int(inp.new_properties(change.logical_id).get("ReservedConcurrentExecutions") or 0)
        old = int(inp.old_properties(change.logical_id).get("ReservedConcurrentExecutions") or 0) \
            if change.action == "Modify" else 0
        if new > old:
            added[change.logical_id] = new - old
    if not added:
        return []
    first = next(iter(added))
    try:
        limits = inp.readers("lambda").get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as exc:
        return [_unchecked(first, "Lambda's unreserved concurrency", exc)]
    unreserved, needed = int(limits.get("UnreservedConcurrentExecutions", 0)), sum(added.values())
    if unreserved - needed >= MINIMUM_UNRESERVED_CONCURRENCY:
        return []
    return [Finding("lambda-concurrency", first, BLOCKING, (
        f"reserving {needed} more concurrent execution(s) ({', '.join(f'{k} {v}' for k, v in added.items())}) "
        f"leaves {unreserved - needed} unreserved of the account's {limits.get('ConcurrentExecutions')}, below "
        f"Lambda's minimum of {MINIMUM_UNRESERVED_CONCURRENCY}: AWS refuses with 'Specified "
        "ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its "
        "minimum value of [100].' Ask for a higher limit (Service Quotas) first"))]


# --- CloudFormation's early validation ------------------------------------------------------------------------

def _failed_validations(cloudformation, change_set_id: str):
    token = None
    while True:
        page = cloudformation.describe_events(ChangeSetName=change_set_id, **({"NextToken": token} if token else {}))
        for event in page.get("OperationEvents", []):
            if event.get("ValidationStatus") == "FAILED":
                yield event
        token = page.get("NextToken")
        if not token:
            return


def _validation_text(event: dict) -> str:
    where = f" at {event['ValidationPath']}" if event.get("ValidationPath") else ""
    return (f"{event.get('LogicalResourceId', '')}: CloudFormation's {event.get('ValidationName', 'validation')}: "
            f"{event.get('ValidationStatusReason', '')}{where}")


def validation_failures(cloudformation, change_set_id: str) -> list[str]:
    """Why a change set FAILED early validation, one line per finding ([] when unreadable)."""
    try:
        return [_validation_text(event) for event in _failed_validations(cloudformation, change_set_id)]
    except (ClientError, BotoCoreError):
        return []


def aws_validation(inp: ForecastInput) -> list[Finding]:
    """What CloudFormation's own pre-deployment validation said of this change set (its WARN-mode
    findings: a FAIL-mode one fails the change set itself)."""
    try:
        return [Finding("aws-validation", event.get("LogicalResourceId") or inp.stack_name,
                        BLOCKING if event.get("ValidationFailureMode") == "FAIL" else WARNING,
                        _validation_text(event).split(": ", 1)[1])
                for event in _failed_validations(inp.cloudformation, inp.change_set.id)]
    except (ClientError, BotoCoreError) as exc:
        return [_unchecked(inp.stack_name, "CloudFormation's early validation of the change set", exc)]


# --- an existing source bucket's events ------------------------------------------------------------

def source_events(inp: ForecastInput) -> list[Finding]:
    """A source bucket the stack does not own (the capture rule names it, no SourceBucket resource):
    whether the deploy will turn its EventBridge notifications on, and what it keeps."""
    rule = inp.new.get("SourceChangeRule")
    if rule is None or "SourceBucket" in inp.new:
        return []
    names = property_at(rule.get("Properties", {}), "EventPattern", "detail", "bucket", "name") or []
    if not names or not isinstance(names[0], str):
        return []
    bucket = names[0]
    try:
        config = read_configuration(inp.readers("s3"), bucket)
    except (ClientError, BotoCoreError) as exc:
        return [_unchecked(bucket, f"the notification configuration of source bucket {bucket}", exc)]
    kept = other_configurations(config)
    others = f", keeping its {kept} topic, queue and function configuration(s) as they are" if kept else ""
    if "EventBridgeConfiguration" in config:
        return [Finding("source-events", bucket, NOTE, f"source bucket {bucket} already sends its events to "
                                                      f"EventBridge: continuous protection captures its changes{others}")]
    return [Finding("source-events", bucket, WARNING, (
        f"source bucket {bucket} does not send its events to EventBridge: once this change set executes, deploy turns "
        f"them on (PutBucketNotificationConfiguration with EventBridgeConfiguration){others}; until then only the "
        "nightly run protects its changes"))]


READING_CHECKS = (names_taken, buckets_not_empty, retention_shortened, lambda_concurrency, aws_validation,
                  source_events)
