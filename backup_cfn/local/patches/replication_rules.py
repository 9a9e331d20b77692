"""S3 replication rules as AWS applies them: which rule, and so which destination, an object version
or a delete marker goes to (the emulator's replication, docs/emulator.md). Plain data, no moto.

A bucket's configuration is read once, when it is put (`parse`), from the shape moto stores
(PutBucketReplication's XML, as xmltodict reads it); CloudFormation's shape is converted to that
one (`from_cloudformation`), and GetBucketReplication answers in the API's shape (`to_api`).

AWS's rules, from "Replication configuration" (replication-add-config.html) and "What does Amazon
S3 replicate?" (replication-what-is-isnot-replicated.html) in the Amazon S3 User Guide:
- a rule applies only when its Status is Enabled and its Filter matches: a key prefix, tags, or
  both under And (all must match); an empty Filter matches every object;
- "Amazon S3 attempts to replicate objects according to all replication rules. However, if there
  are two or more rules with the same destination bucket, then objects are replicated according
  to the rule with the highest priority. The higher the number, the higher the priority.";
- objects encrypted with SSE-KMS are replicated only by rules that opt in with
  SourceSelectionCriteria/SseKmsEncryptedObjects (replication-config-for-kms-objects.html);
- a rule with a Filter is the V2 schema: it replicates delete markers only with
  DeleteMarkerReplication Enabled, and never for tag-based rules (delete-marker-replication.html);
  a V1 rule (Prefix outside a Filter) replicates the delete markers user actions create.
"""
from __future__ import annotations

from dataclasses import dataclass

ENABLED = "Enabled"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


@dataclass(frozen=True)
class Destination:
    bucket: str  # the bucket's name, from the rule's bucket ARN
    account: str | None  # the Account element: who must own the destination bucket
    owner_override: bool  # AccessControlTranslation Owner=Destination
    replica_kms_key_id: str | None  # EncryptionConfiguration/ReplicaKmsKeyID
    storage_class: str | None


@dataclass(frozen=True)
class Rule:
    id: str
    priority: int
    enabled: bool
    prefix: str
    tags: tuple[tuple[str, str], ...]
    delete_markers: bool  # whether this rule replicates delete markers
    sse_kms: bool  # SourceSelectionCriteria/SseKmsEncryptedObjects Enabled
    replica_modifications: bool  # SourceSelectionCriteria/ReplicaModifications Enabled
    destination: Destination

    def matches(self, key_name: str, tags: dict[str, str]) -> bool:
        return key_name.startswith(self.prefix) and all(tags.get(k) == v for k, v in self.tags)


def parse(stored: dict) -> tuple[Rule, ...]:
    """The rules of a configuration in moto's stored shape ({"Role", "Rule": [...]})."""
    rules = stored.get("Rule") or []
    return tuple(_rule(rule, index) for index, rule in enumerate(rules if isinstance(rules, list) else [rules]))


def _rule(rule: dict, index: int) -> Rule:
    v2 = "Filter" in rule
    prefix, tags = (_filter(rule.get("Filter") or {}) if v2 else (rule.get("Prefix") or "", ()))
    destination = rule.get("Destination") or {}
    criteria = rule.get("SourceSelectionCriteria") or {}
    translation = destination.get("AccessControlTranslation") or {}
    encryption = destination.get("EncryptionConfiguration") or {}
    return Rule(
        id=str(rule.get("ID") or index),
        priority=int(rule.get("Priority") or 0),
        enabled=rule.get("Status") == ENABLED,
        prefix=prefix,
        tags=tags,
        delete_markers=_status(rule.get("DeleteMarkerReplication")) if v2 else True,
        sse_kms=_status(criteria.get("SseKmsEncryptedObjects")),
        replica_modifications=_status(criteria.get("ReplicaModifications")),
        destination=Destination(
            bucket=bucket_name(destination.get("Bucket") or ""),
            account=destination.get("Account"),
            owner_override=translation.get("Owner") == "Destination",
            replica_kms_key_id=encryption.get("ReplicaKmsKeyID"),
            storage_class=destination.get("StorageClass"),
        ),
    )


def _filter(element: dict) -> tuple[str, tuple[tuple[str, str], ...]]:
    both = element.get("And") or {}
    prefix = element.get("Prefix") or both.get("Prefix") or ""
    tags = _as_list(element.get("Tag")) + _as_list(both.get("Tag"))
    return prefix, tuple((tag["Key"], tag.get("Value") or "") for tag in tags)


def _status(element) -> bool:
    return isinstance(element, dict) and element.get("Status") == ENABLED


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def bucket_name(arn_or_name: str) -> str:
    return arn_or_name.split(":::", 1)[1] if ":::" in arn_or_name else arn_or_name


def needs_tags(rules: tuple[Rule, ...]) -> bool:
    return any(rule.tags for rule in rules)


def for_object(rules: tuple[Rule, ...], key_name: str, tags: dict[str, str], kms_encrypted: bool) -> list[Rule]:
    """The rule that replicates a new object version to each destination (none: not replicated)."""
    return _best_per_destination(rule for rule in rules if rule.enabled and rule.matches(key_name, tags)
                                 and (rule.sse_kms or not kms_encrypted))


def for_delete_marker(rules: tuple[Rule, ...], key_name: str) -> list[Rule]:
    """The rules whose destinations get a copy of a delete marker just added to `key_name`. A delete
    marker has no tags, so tag-based rules never match it."""
    chosen = _best_per_destination(rule for rule in rules if rule.enabled and not rule.tags
                                   and key_name.startswith(rule.prefix))
    return [rule for rule in chosen if rule.delete_markers]


def for_replica_modification(rules: tuple[Rule, ...], key_name: str, tags: dict[str, str],
                             kms_encrypted: bool) -> list[Rule]:
    """The rules that sync a replica's metadata change back (replica modification sync)."""
    return [rule for rule in for_object(rules, key_name, tags, kms_encrypted) if rule.replica_modifications]


def _best_per_destination(rules) -> list[Rule]:
    best: dict[str, Rule] = {}
    for rule in rules:
        current = best.get(rule.destination.bucket)
        if current is None or rule.priority > current.priority:
            best[rule.destination.bucket] = rule
    return list(best.values())


# CloudFormation's AWS::S3::Bucket ReplicationConfiguration names a few elements differently from
# the PutBucketReplication XML that moto stores.
_CLOUDFORMATION_NAMES = {"Rules": "Rule", "Id": "ID", "TagFilter": "Tag", "TagFilters": "Tag"}


def from_cloudformation(configuration: dict) -> dict:
    """A template's ReplicationConfiguration in the shape moto stores a PutBucketReplication in."""
    if isinstance(configuration, dict):
        return {_CLOUDFORMATION_NAMES.get(name, name): from_cloudformation(value)
                for name, value in configuration.items()}
    if isinstance(configuration, list):
        return [from_cloudformation(value) for value in configuration]
    return str(configuration) if isinstance(configuration, (int, bool)) else configuration


_INTEGERS = {"Priority", "Minutes"}


def to_api(stored: dict) -> dict:
    """GetBucketReplication's ReplicationConfiguration (botocore's output shape) for a stored one."""
    rules = stored.get("Rule") or []
    return {"Role": stored.get("Role"),
            "Rules": [_api_element(rule) for rule in (rules if isinstance(rules, list) else [rules])]}


def _api_element(element):
    if not isinstance(element, dict):
        return element
    shaped = {}
    for name, value in element.items():
        if name == "And" and isinstance(value, dict):
            value = {("Tags" if k == "Tag" else k): (_as_list(v) if k == "Tag" else v) for k, v in value.items()}
        elif name in _INTEGERS and value is not None:
            value = int(value)
        elif name == "Prefix" and value is None:
            value = ""
        elif name == "Filter" and value is None:
            value = {}
        shaped[name] = _api_element(value)
    return shaped
