"""Reading template.yaml the way CloudFormation does: short tags, and the intrinsic functions we use.

PyYAML's safe loader refuses CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...). The loader
here turns each into its long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``), so every reader sees one
shape whichever form the template uses. ``Intrinsics`` evaluates the handful of intrinsic functions
the template uses (Ref, GetAtt, Sub, If, Equals, Not, And, Or, Join, Select, Condition) against values
the caller supplies, so the local stack builds its resources from the template's own definitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from humanos_bridge.core.errors import ConfigError

#: ``${Name}`` or ``${Resource.Attribute}`` inside ``Fn::Sub``; ``${!Literal}`` is an escape, not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:]+)(?:\.([A-Za-z0-9_.]+))?\}")
#: Returned for ``!Ref AWS::NoValue``: the caller drops the property or list item.
NO_VALUE = object()


#: libyaml's parser when PyYAML has it: the same safe construction, ten times faster (the local stack reads
#: template.yaml once per function at each start-up, and every millisecond there is start-up time).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CloudFormationLoader(_SafeLoader):
    """Safe loader that also understands CloudFormation's short-form intrinsic functions."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "Resource.Attribute" is shorthand for ["Resource", "Attribute"].
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template_text(text: str) -> dict[str, Any]:
    """Parse CloudFormation/SAM YAML, short tags included, into plain dicts and lists."""
    document = yaml.load(text, Loader=_CloudFormationLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(document, dict):
        raise ValueError("template is not a YAML mapping")
    return document


def load_template(path: Path) -> dict[str, Any]:
    """``load_template_text`` of a file; ConfigError when it cannot be read or parsed."""
    try:
        return load_template_text(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read template {path}: {exc.strerror}; run from the repository root") from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"template {path} is not valid CloudFormation YAML: {exc}") from exc


class Intrinsics:
    """Evaluates intrinsic functions against parameter values, resource attributes and conditions.

    Parameters
    ----------
    parameters
        Value of each parameter (defaults already applied), by name. Pseudo parameters go here too.
    conditions
        The template's ``Conditions`` section (evaluated on demand).
    ref
        ``!Ref <resource>``: the resource's physical id (queue URL, table name, secret ARN).
    get_att
        ``!GetAtt <resource>.<attribute>``.
    """

    def __init__(
        self,
        parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self.parameters = parameters
        self.conditions = conditions
        self._ref = ref
        self._get_att = get_att

    def value(self, node: Any) -> Any:
        """``node`` with every intrinsic function replaced by its value."""
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            function = self._FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        values = {key: self.value(item) for key, item in node.items()}
        return {key: item for key, item in values.items() if item is not NO_VALUE}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise ConfigError(f"template uses condition {name!r} but does not declare it under Conditions")
        return bool(self.value(self.conditions[name]))

    # -- the functions ------------------------------------------------------------------------------

    def _fn_ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        return self._ref(name)

    def _fn_get_att(self, argument: Any) -> Any:
        resource, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
        return self._get_att(str(resource), str(attribute))

    def _fn_sub(self, argument: Any) -> str:
        text, local = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        variables = {name: self.value(value) for name, value in local.items()}

        def replace(match: re.Match[str]) -> str:
            name, attribute = match.group(1), match.group(2)
            if attribute:
                return str(self._get_att(name, attribute))
            if name in variables:
                return str(variables[name])
            return str(self._fn_ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def _fn_if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.value(when_true if self.condition(name) else when_false)

    def _fn_equals(self, argument: list[Any]) -> bool:
        left, right = (self.value(item) for item in argument)
        return str(left) == str(right)

    def _fn_not(self, argument: list[Any]) -> bool:
        return not self.value(argument[0])

    def _fn_and(self, argument: list[Any]) -> bool:
        return all(self.value(item) for item in argument)

    def _fn_or(self, argument: list[Any]) -> bool:
        return any(self.value(item) for item in argument)

    def _fn_join(self, argument: list[Any]) -> str:
        separator, items = argument
        return str(separator).join(str(item) for item in self.value(items))

    def _fn_select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.value(items)[int(self.value(index))]

    def _fn_condition(self, name: str) -> bool:
        return self.condition(name)

    _FUNCTIONS: dict[str, Callable[[Intrinsics, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Condition": _fn_condition,
    }
