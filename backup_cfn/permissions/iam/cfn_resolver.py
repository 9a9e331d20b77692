"""Resolve CloudFormation intrinsics in template fragments, and pull out every policy.

The conformance test evaluates the policies that are *committed* in the
templates, so those policies have to be turned from CloudFormation (with
``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` ...) into plain IAM JSON first.  That
needs the values CloudFormation would substitute at deploy time: pseudo
parameters, parameter values, and each resource's ``Ref``/``GetAtt`` values.
Real physical names are unknowable before deployment, so
:func:`default_attributes` derives them -- from the explicit name property
(``BucketName``, ``RoleName``, ``FunctionName`` ...) when the template sets
one, otherwise from a caller-supplied *namer* -- and builds the ARNs with the
formats AWS documents for each resource type.  Explicit ``attributes`` always
override the defaults (e.g. for parameters from another stack's outputs).

Anything that cannot be resolved raises :class:`UnresolvedError` naming the
path in the template, so a policy is never evaluated with a hole in it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .cfn_values import NO_VALUE, CfnError, UnresolvedError, comparable, default_attributes, scalar


#: ``(logical_id, resource_type) -> physical name`` for resources whose name the template leaves to CloudFormation.
Namer = Callable[[str, str], str]


def default_namer(stack_name: str) -> Namer:
    """``f"{stack}-{logical}".lower()`` -- stable, and valid for S3 bucket names."""

    def namer(logical_id: str, _resource_type: str) -> str:
        return f"{stack_name}-{logical_id}".lower()

    return namer


_URL_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}


@dataclass(frozen=True)
class Pseudo:
    """Values of the pseudo parameters (``AWS::AccountId`` ...)."""

    account_id: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    stack_name: str = "stack"
    url_suffix: str | None = None
    availability_zones: tuple[str, ...] = ()
    notification_arns: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        return self.url_suffix or _URL_SUFFIX.get(self.partition, "amazonaws.com")

    @property
    def stack_id(self) -> str:
        sid = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account_id}/{self.region}/{self.stack_name}")
        return f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/{sid}"

    @property
    def azs(self) -> list[str]:
        return list(self.availability_zones) or [f"{self.region}{c}" for c in "abc"]

    def values(self) -> dict[str, Any]:
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": self.suffix,
            "AWS::NotificationARNs": list(self.notification_arns),
        }


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves intrinsic functions in fragments of one template.

    Resource attributes are computed lazily (a name property may itself be a
    ``Fn::Sub`` over other values), with cycle detection.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        pseudo: Pseudo | None = None,
        parameters: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
        namer: Namer | None = None,
        imports: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.pseudo = pseudo or Pseudo()
        self.parameters = dict(parameters or {})
        self.overrides = {k: dict(v) for k, v in (attributes or {}).items()}
        self.namer = namer or default_namer(self.pseudo.stack_name)
        self.imports = dict(imports or {})
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self._conditions: dict[str, bool] = {}
        self._attrs: dict[str, dict[str, Any]] = {}
        self._computing: list[str] = []

    # -- public -------------------------------------------------------------

    def resolve(self, fragment: Any, path: str = "") -> Any:
        """Resolve every intrinsic in ``fragment``; ``AWS::NoValue`` items are dropped."""
        if isinstance(fragment, Mapping):
            if len(fragment) == 1:
                ((key, value),) = fragment.items()
                if key == "Ref" or key.startswith("Fn::"):
                    return self._intrinsic(key, value, path)
            out: dict[str, Any] = {}
            for k, v in fragment.items():
                r = self.resolve(v, f"{path}.{k}" if path else str(k))
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(fragment, list):
            items = (self.resolve(v, f"{path}[{i}]") for i, v in enumerate(fragment))
            return [r for r in items if r is not NO_VALUE]
        return fragment

    def condition(self, name: str) -> bool:
        """The value of a named template condition."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise UnresolvedError(f"unknown condition {name!r}")
            self._conditions[name] = self._eval_condition(conditions[name], f"Conditions.{name}")
        return self._conditions[name]

    def resource_exists(self, logical_id: str) -> bool:
        """False when the resource's ``Condition`` is false (it is not created)."""
        res = self.resources.get(logical_id)
        if res is None:
            return False
        cond = res.get("Condition")
        return True if cond is None else self.condition(cond)

    def attributes(self, logical_id: str) -> dict[str, Any]:
        """``Ref`` (under key ``"Ref"``) and ``GetAtt`` values of a resource."""
        if logical_id in self._attrs:
            return self._attrs[logical_id]
        if logical_id not in self.resources:
            if logical_id in self.overrides:
                return self.overrides[logical_id]
            raise UnresolvedError(f"unknown resource {logical_id!r}")
        if logical_id in self._computing:
            cycle = " -> ".join(self._computing + [logical_id])
            raise CfnError(f"circular reference while naming resources: {cycle}")
        self._computing.append(logical_id)
        try:
            attrs = default_attributes(logical_id, self.resources[logical_id], self)
        finally:
            self._computing.pop()
        attrs.update(self.overrides.get(logical_id, {}))
        self._attrs[logical_id] = attrs
        return attrs

    def ref(self, name: str, path: str = "") -> Any:
        pseudo = self.pseudo.values()
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self._parameter_value(name, self.parameters[name])
        params = self.template.get("Parameters", {})
        if name in params:
            if "Default" in params[name]:
                return self._parameter_value(name, params[name]["Default"])
            raise UnresolvedError(f"{path}: parameter {name!r} has no value and no Default")
        if name in self.resources or name in self.overrides:
            if name in self.resources and not self.resource_exists(name):
                raise UnresolvedError(f"{path}: Ref to {name!r}, whose Condition is false")
            attrs = self.attributes(name)
            if "Ref" not in attrs:
                raise UnresolvedError(f"{path}: no Ref value for {name!r}")
            return attrs["Ref"]
        raise UnresolvedError(f"{path}: Ref to unknown name {name!r}")

    def get_att(self, logical_id: str, attribute: str, path: str = "") -> Any:
        if logical_id in self.resources and not self.resource_exists(logical_id):
            raise UnresolvedError(f"{path}: GetAtt of {logical_id!r}, whose Condition is false")
        attrs = self.attributes(logical_id)
        if attribute not in attrs or attribute == "Ref":
            known = sorted(a for a in attrs if a != "Ref")
            raise UnresolvedError(f"{path}: no attribute {logical_id}.{attribute} (known: {known})")
        return attrs[attribute]

    # -- internals ----------------------------------------------------------

    def _parameter_value(self, name: str, value: Any) -> Any:
        ptype = self.template.get("Parameters", {}).get(name, {}).get("Type", "String")
        if isinstance(value, str) and (ptype == "CommaDelimitedList" or ptype.startswith("List<")):
            return [v.strip() for v in value.split(",")]
        return value

    def _intrinsic(self, fn: str, arg: Any, path: str) -> Any:
        here = f"{path}.{fn}" if path else fn
        if fn == "Ref":
            if not isinstance(arg, str):
                raise CfnError(f"{here}: Ref takes a name, got {arg!r}")
            return self.ref(arg, here)
        if fn == "Fn::GetAtt":
            if isinstance(arg, str):
                if "." not in arg:
                    raise CfnError(f"{here}: {arg!r} is not Logical.Attribute")
                logical, attr = arg.split(".", 1)
            elif isinstance(arg, list) and len(arg) == 2:
                logical = arg[0]
                attr = self.resolve(arg[1], here)
            else:
                raise CfnError(f"{here}: bad GetAtt argument {arg!r}")
            return self.get_att(logical, attr, here)
        if fn == "Fn::Sub":
            return self._sub(arg, here)
        if fn == "Fn::Join":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise CfnError(f"{here}: Fn::Join takes [delimiter, list]")
            delim = self.resolve(arg[0], here)
            items = self.resolve(arg[1], here)
            if not isinstance(items, list):
                raise CfnError(f"{here}: Fn::Join list resolved to {items!r}")
            return str(delim).join(scalar(v, here) for v in items)
        if fn == "Fn::Select":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise CfnError(f"{here}: Fn::Select takes [index, list]")
            index = int(self.resolve(arg[0], here))
            items = self.resolve(arg[1], here)
            if not isinstance(items, list) or not 0 <= index < len(items):
                raise UnresolvedError(f"{here}: index {index} out of range for {items!r}")
            return items[index]
        if fn == "Fn::Split":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise CfnError(f"{here}: Fn::Split takes [delimiter, string]")
            delim = self.resolve(arg[0], here)
            text = self.resolve(arg[1], here)
            return scalar(text, here).split(delim)
        if fn == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3):
                raise CfnError(f"{here}: Fn::If takes [condition, then, else]")
            chosen = arg[1] if self.condition(arg[0]) else arg[2]
            return self.resolve(chosen, here)
        if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._eval_condition({fn: arg}, here)
        if fn == "Fn::GetAZs":
            region = self.resolve(arg, here)
            if region not in ("", self.pseudo.region):
                return [f"{region}{c}" for c in "abc"]
            return self.pseudo.azs
        if fn == "Fn::Base64":
            return base64.b64encode(scalar(self.resolve(arg, here), here).encode()).decode()
        if fn == "Fn::FindInMap":
            if not (isinstance(arg, list) and len(arg) in (3, 4)):
                raise CfnError(f"{here}: Fn::FindInMap takes [map, key, key]")
            m, k1, k2 = (self.resolve(a, here) for a in arg[:3])
            try:
                return self.template["Mappings"][m][k1][k2]
            except KeyError:
                raise UnresolvedError(f"{here}: no mapping {m}.{k1}.{k2}") from None
        if fn == "Fn::ImportValue":
            name = self.resolve(arg, here)
            if name not in self.imports:
                raise UnresolvedError(f"{here}: no import value {name!r} (pass imports=...)")
            return self.imports[name]
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, here), separators=(",", ":"))
        if fn == "Fn::Length":
            value = self.resolve(arg, here)
            if not isinstance(value, list):
                raise CfnError(f"{here}: Fn::Length of a non-list")
            return len(value)
        raise CfnError(f"{here}: unsupported intrinsic {fn}")

    def _sub(self, arg: Any, here: str) -> str:
        variables: Mapping[str, Any]
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], Mapping):
            text, variables = arg[0], arg[1]
        else:
            raise CfnError(f"{here}: Fn::Sub takes a string or [string, {{vars}}]")

        def replace(m: re.Match[str]) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"  # ${!Literal} -> ${Literal}
            name = inner.strip()
            if name in variables:
                return scalar(self.resolve(variables[name], f"{here}.{name}"), here)
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return scalar(self.get_att(logical, attr, here), here)
            value = self.ref(name, here)
            if value is NO_VALUE:
                raise UnresolvedError(f"{here}: AWS::NoValue inside Fn::Sub")
            return scalar(value, here)

        return _SUB_VAR.sub(replace, text)

    def _eval_condition(self, expr: Any, path: str) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str) and expr.lower() in ("true", "false"):
            return expr.lower() == "true"
        if not (isinstance(expr, Mapping) and len(expr) == 1):
            raise CfnError(f"{path}: not a condition: {expr!r}")
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise CfnError(f"{path}: Fn::Equals takes two values")
            a, b = (self.resolve(v, path) for v in arg)
            return bool(comparable(a) == comparable(b))
        if fn == "Fn::Not":
            inner = arg[0] if isinstance(arg, list) and len(arg) == 1 else arg
            return not self._eval_condition(inner, path)
        if fn == "Fn::And":
            return all(self._eval_condition(c, path) for c in arg)
        if fn == "Fn::Or":
            return any(self._eval_condition(c, path) for c in arg)
        raise CfnError(f"{path}: {fn} is not a condition function")


def find_intrinsics(value: Any, path: str = "") -> list[str]:
    """Paths of any ``Ref``/``Fn::*`` left in ``value`` (for asserting full resolution)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            if k == "Ref" or (isinstance(k, str) and k.startswith("Fn::")):
                found.append(here)
            found.extend(find_intrinsics(v, here))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(find_intrinsics(v, f"{path}[{i}]"))
    return found
