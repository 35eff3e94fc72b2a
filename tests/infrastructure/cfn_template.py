"""Read template.yaml the way CloudFormation does, for tests that check its wiring.

The loader (``humanos_bridge_local.cfn``, shared with the local stack, which builds its resources from the
same template) turns CloudFormation's short tags into their long forms (``{"Ref": ...}``,
``{"Fn::GetAtt": [...]}``), so tests compare against one shape whichever form the template uses.
``Template`` adds what SAM does before CloudFormation sees a function: Globals merged into each
function's properties.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanos_bridge_local.cfn import load_template_text

#: CloudFormation pseudo parameters (``!Ref AWS::Region``); never declared in the template.
PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)

#: ``${Name}`` or ``${Resource.Attribute}`` inside ``Fn::Sub``; ``${!Literal}`` is an escape, not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:]+)(?:\.[A-Za-z0-9_.]+)?\}")

#: A wildcard resource written as a line of its own: ``Resource: "*"`` or a list item ``- "*"``.
_WILDCARD_LINE = re.compile(r"""^\s*(?:-\s*)?(?:Resource:\s*)?(?:"\*"|'\*'|\*)\s*(?:#.*)?$""")
_WILDCARD_COMMENT = re.compile(r"^\s*#\s*wildcard:\s*\S")


def references(node: Any) -> set[str]:
    """Names of parameters, resources and pseudo parameters that ``node`` refers to, at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        elif set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).partition(".")[0])
        elif set(node) == {"Fn::Sub"}:
            found |= _sub_references(node["Fn::Sub"])
        else:
            for value in node.values():
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def _sub_references(argument: Any) -> set[str]:
    if isinstance(argument, str):
        return set(_SUB_VARIABLE.findall(argument))
    text, variables = argument
    local = set(variables)
    return {name for name in _SUB_VARIABLE.findall(text) if name not in local} | references(variables)


def conditions_used(node: Any) -> set[str]:
    """Names of conditions used by ``Fn::If``, ``Condition:`` keys and ``!Condition`` at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::If":
                found.add(value[0])
            if key == "Condition" and isinstance(value, str):
                found.add(value)
            found |= conditions_used(value)
    elif isinstance(node, list):
        for item in node:
            found |= conditions_used(item)
    return found


@dataclass(frozen=True)
class WildcardLine:
    """A ``Resource: "*"`` line of the template source and whether a ``# wildcard:`` comment explains it."""

    line_number: int
    text: str
    explained: bool


def wildcard_lines(text: str) -> list[WildcardLine]:
    """Every line granting ``"*"`` as a resource, with whether the line right above is ``# wildcard: <why>``."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if _WILDCARD_LINE.match(line):
            above = lines[index - 1] if index > 0 else ""
            found.append(WildcardLine(index + 1, line.strip(), bool(_WILDCARD_COMMENT.match(above))))
    return found


def policy_statements(policies: Any) -> Iterator[dict[str, Any]]:
    """Inline statements of a SAM ``Policies`` list (both branches of an ``Fn::If``), or of a policy document."""
    items = policies if isinstance(policies, list) else [policies]
    for item in items:
        if not isinstance(item, dict):
            continue  # a managed policy name or ARN
        if "Fn::If" in item:
            yield from policy_statements(item["Fn::If"][1:])
        elif "Statement" in item:
            statements = item["Statement"]
            yield from statements if isinstance(statements, list) else [statements]


def policy_templates(policies: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(template name, arguments)`` for each SAM policy template in a ``Policies`` list."""
    for item in policies if isinstance(policies, list) else [policies]:
        if isinstance(item, dict) and "Fn::If" in item:
            yield from policy_templates(item["Fn::If"][1:])
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)).endswith("Policy"):
            name, arguments = next(iter(item.items()))
            yield name, arguments


def evaluate_rules(document: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """The ``AssertDescription`` of every template Rule assertion that fails for these parameter values.

    Parameters not in ``overrides`` take their defaults, as with ``sam deploy`` and no override. Only the
    rule functions CloudFormation offers and this template uses are known (Ref, Equals, Not, And, Or, Contains).
    """
    values = {name: str(spec.get("Default", "")) for name, spec in document.get("Parameters", {}).items()}
    values.update(overrides)
    failed = []
    for rule in document.get("Rules", {}).values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values):
            continue
        for assertion in rule["Assertions"]:
            if not _rule_value(assertion["Assert"], values):
                failed.append(str(assertion.get("AssertDescription", assertion["Assert"])))
    return failed


def _rule_value(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rule_value(item, values) for item in node]
    if not (isinstance(node, dict) and len(node) == 1):
        return node
    ((key, argument),) = node.items()
    if key == "Ref":
        return values[argument]
    if key == "Fn::Equals":
        left, right = (_rule_value(item, values) for item in argument)
        return str(left) == str(right)
    if key == "Fn::Not":
        return not _rule_value(argument[0], values)
    if key == "Fn::And":
        return all(_rule_value(item, values) for item in argument)
    if key == "Fn::Or":
        return any(_rule_value(item, values) for item in argument)
    if key == "Fn::Contains":
        items, value = argument
        return str(_rule_value(value, values)) in [str(item) for item in _rule_value(items, values)]
    raise ValueError(f"rule function {key} is not evaluated by these tests; add it to cfn_template._rule_value")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Template:
    """A parsed SAM template with the views the infrastructure tests need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.document = load_template_text(self.text)
        self.parameters: dict[str, dict[str, Any]] = self.document.get("Parameters", {})
        self.resources: dict[str, dict[str, Any]] = self.document.get("Resources", {})
        self.conditions: dict[str, Any] = self.document.get("Conditions", {})
        self.outputs: dict[str, dict[str, Any]] = self.document.get("Outputs", {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one type, by logical id."""
        return {name: body for name, body in self.resources.items() if body["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))

    def function(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with ``Globals.Function`` merged in, as SAM merges them.

        Scalars: the function wins. Maps (environment variables): merged, the function wins per key.
        Lists (layers): the globals' entries first, then the function's.
        """
        merged = copy.deepcopy(self.document.get("Globals", {}).get("Function", {}))
        for key, value in self.properties(logical_id).items():
            if key == "Environment":
                variables = merged.setdefault("Environment", {}).setdefault("Variables", {})
                variables.update(value.get("Variables", {}))
            elif isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value
        return merged

    def environment(self, logical_id: str) -> dict[str, Any]:
        return dict(self.function(logical_id).get("Environment", {}).get("Variables", {}))

    def resolve_number(self, value: Any) -> int:
        """A literal number, or the default of the parameter that ``!Ref`` names."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return int(self.parameters[value["Ref"]]["Default"])
        return int(value)

    def known_names(self) -> set[str]:
        return set(self.parameters) | set(self.resources) | PSEUDO_PARAMETERS
