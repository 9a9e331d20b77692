"""A template's resources with what an offline reader can resolve resolved: parameters, pseudo
parameters, conditions, mappings, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If. What only
exists once deployed (a Ref to a resource, a Fn::GetAtt) stays, shown as {Ref: X} or, inside a
string, as ${X.Attr}: both sides of a diff keep the same token, so only real changes differ."""
from __future__ import annotations

import re
from dataclasses import dataclass

NO_VALUE = object()   # AWS::NoValue: the key or element is dropped
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def pseudo_parameters(stack_id: str, stack_name: str) -> dict[str, str]:
    """AWS::Region, AccountId, Partition, StackName, StackId, URLSuffix, from the stack's ARN
    (arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/UUID): no call needed."""
    parts = stack_id.split(":")
    partition, region, account = (parts[1], parts[3], parts[4]) if len(parts) > 5 else ("aws", "", "")
    return {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition,
            "AWS::StackName": stack_name, "AWS::StackId": stack_id,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"}


@dataclass(frozen=True)
class Resolver:
    template: dict
    parameters: dict[str, str]
    pseudo: dict[str, str]

    def parameter_values(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for name, declared in self.template.get("Parameters", {}).items():
            value = self.parameters.get(name, declared.get("Default"))
            if value is None:
                continue
            if declared.get("NoEcho"):
                value = "****"
            elif str(declared.get("Type", "")).startswith("CommaDelimitedList") or \
                    str(declared.get("Type", "")).startswith("List<"):
                value = [v.strip() for v in str(value).split(",")]
            values[name] = value
        return values

    def resources(self) -> dict[str, dict]:
        """Every resource whose Condition holds (or is unknown), its Properties resolved."""
        parameters = self.parameter_values()
        resolved = {}
        for logical_id, resource in self.template.get("Resources", {}).items():
            if resource.get("Condition") and self.condition(resource["Condition"], parameters) is False:
                continue
            properties = self.resolve(resource.get("Properties", {}), parameters)
            resolved[logical_id] = {"Type": resource.get("Type", ""), "Properties": properties,
                                    "Raw": resource.get("Properties", {}),
                                    "DeletionPolicy": resource.get("DeletionPolicy"),
                                    "UpdateReplacePolicy": resource.get("UpdateReplacePolicy")}
        return resolved

    # -- the intrinsic functions ---------------------------------------------------------------

    def resolve(self, value, parameters: dict | None = None):
        parameters = self.parameter_values() if parameters is None else parameters
        if isinstance(value, list):
            items = [self.resolve(item, parameters) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                return self._ref(argument, parameters)
            if function.startswith("Fn::"):
                return self._function(function, argument, parameters)
        items = {key: self.resolve(item, parameters) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not NO_VALUE}

    def _ref(self, name, parameters: dict):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in parameters:
            return parameters[name]
        if name in self.pseudo and self.pseudo[name]:
            return self.pseudo[name]
        return {"Ref": name}

    def _function(self, function: str, argument, parameters: dict):
        if function == "Fn::GetAtt":
            return {"Fn::GetAtt": argument.split(".", 1) if isinstance(argument, str) else argument}
        if function == "Fn::Sub":
            return self._sub(argument, parameters)
        resolved = self.resolve(argument, parameters)
        if function == "Fn::Join" and isinstance(resolved, list) and len(resolved) == 2 \
                and isinstance(resolved[1], list):
            return _join(resolved[0], resolved[1])
        if function == "Fn::Select" and isinstance(resolved, list) and len(resolved) == 2 \
                and isinstance(resolved[1], list) and str(resolved[0]).isdigit() \
                and int(resolved[0]) < len(resolved[1]):
            return resolved[1][int(resolved[0])]
        if function == "Fn::Split" and isinstance(resolved, list) and len(resolved) == 2 \
                and all(isinstance(part, str) for part in resolved):
            return resolved[1].split(resolved[0])
        if function == "Fn::FindInMap" and isinstance(resolved, list) and all(isinstance(p, str) for p in resolved):
            found = self.template.get("Mappings", {}).get(resolved[0], {}).get(resolved[1], {})
            if resolved[2] in found:
                return found[resolved[2]]
        if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            holds = self.condition(argument[0], parameters)
            if holds is not None:
                return self.resolve(argument[1] if holds else argument[2], parameters)
        return {function: resolved}

    def _sub(self, argument, parameters: dict):
        text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})
        values = {name: self.resolve(value, parameters) for name, value in variables.items()}
        unresolved = False

        def replace(match: re.Match) -> str:
            nonlocal unresolved
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = values[name] if name in values else self._ref(name, parameters) if "." not in name else None
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return str(value)
            unresolved = True
            return "${" + _token(value, name) + "}"

        result = _PLACEHOLDER.sub(replace, text)
        return {"Fn::Sub": result} if unresolved else result

    def condition(self, name_or_expression, parameters: dict):
        """True, False, or None when it cannot be known offline."""
        expression = name_or_expression
        if isinstance(name_or_expression, str):
            expression = self.template.get("Conditions", {}).get(name_or_expression)
            if expression is None:
                return None
        if not isinstance(expression, dict) or len(expression) != 1:
            return None
        (function, argument), = expression.items()
        if function == "Condition":
            return self.condition(argument, parameters)
        if function == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
            left, right = (self.resolve(a, parameters) for a in argument)
            if isinstance(left, dict) or isinstance(right, dict):
                return None
            return str(left) == str(right)
        if function == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
            inner = self.condition(argument[0], parameters)
            return None if inner is None else not inner
        if function in ("Fn::And", "Fn::Or") and isinstance(argument, list):
            values = [self.condition(a, parameters) for a in argument]
            if function == "Fn::And":
                return False if False in values else None if None in values else True
            return True if True in values else None if None in values else False
        return None


def _token(value, name: str) -> str:
    """How an unresolved reference reads inside a string."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    return name


def _join(delimiter, parts: list):
    if all(isinstance(part, str) for part in parts) and isinstance(delimiter, str):
        return delimiter.join(parts)
    if not isinstance(delimiter, str) or not all(
            isinstance(p, str) or (isinstance(p, dict) and {"Ref", "Fn::GetAtt", "Fn::Sub"} & set(p)) for p in parts):
        return {"Fn::Join": [delimiter, parts]}
    text = delimiter.join(p if isinstance(p, str) else (p["Fn::Sub"] if "Fn::Sub" in p else "${" + _token(p, "?") + "}")
                          for p in parts)
    return {"Fn::Sub": text}
