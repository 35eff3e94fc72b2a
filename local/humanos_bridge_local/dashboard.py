"""The bridge's CloudWatch dashboard as template.yaml declares it, and the metric names the code emits.

The template's ``AWS::CloudWatch::Dashboard`` body is JSON inside ``!Sub``. ``dashboard_body`` fills its
``${...}`` variables (a parameter's default or override, a resource's logical id) and parses it;
``widgets`` turns each metric widget into the queries it draws. ``emitted_metrics`` finds the names of
the bridge's own metrics in the code (every ``add_metric``/``single_metric`` call, read from the source
with ``ast``), so the infrastructure tests can check that the dashboard reads nothing the code does not
write, ``scripts/render_dashboard.py`` can draw the very same widgets from a local run, and
``humanos-bridge status --stack`` can read them from CloudWatch. ``variables`` names what the body reads,
so that a reader filling it from a deployed stack can tell which names the stack lacks.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humanos_bridge.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
#: Where the bridge's metrics are written: the layer and the handlers.
CODE_ROOTS = (ROOT / "layers" / "humanos" / "humanos_bridge", ROOT / "functions")
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:]+)(?:\.([A-Za-z0-9_.]+))?\}")


@dataclass(frozen=True)
class Query:
    """One line of a widget: a metric (namespace, name, dimensions, statistic) or a math expression."""

    id: str
    label: str
    namespace: str = ""
    name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"
    visible: bool = True
    expression: str = ""


@dataclass(frozen=True)
class Widget:
    """A metric widget: its place on the 24-column grid, its title and what it draws."""

    title: str
    x: int
    y: int
    width: int
    height: int
    period: int
    queries: list[Query]
    #: ``(label, value)`` of each horizontal annotation (alarm thresholds, limits).
    annotations: list[tuple[str, float]] = field(default_factory=list)
    y_range: tuple[float | None, float | None] = (None, None)


def dashboard_resource(document: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(logical id, resource)`` of the template's one ``AWS::CloudWatch::Dashboard``."""
    found = [(name, body) for name, body in document.get("Resources", {}).items() if body.get("Type") == _TYPE]
    if len(found) != 1:
        raise ConfigError(f"the template should declare one {_TYPE}, not {len(found)}")
    return found[0]


_TYPE = "AWS::CloudWatch::Dashboard"


def dashboard_body(document: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dashboard's JSON body with its ``${...}`` variables filled in, parsed.

    A variable takes its value from ``values`` (``"Name"`` or ``"Resource.Attribute"``), else a parameter's
    default, else the logical id it names (a stand-in for the physical name CloudFormation would give).
    """
    text = _body_text(document)
    parameters = document.get("Parameters", {})
    given = dict(values or {})

    def fill(match: re.Match[str]) -> str:
        name, attribute = match.group(1), match.group(2)
        key = f"{name}.{attribute}" if attribute else name
        if key in given:
            return str(given[key])
        if name in parameters and not attribute:
            return str(parameters[name].get("Default", ""))
        if name == "AWS::Region":
            return "eu-west-1"
        return name

    try:
        parsed: dict[str, Any] = json.loads(_SUB_VARIABLE.sub(fill, text).replace("${!", "${"))
    except ValueError as exc:
        raise ConfigError(f"the dashboard's body is not valid JSON once filled in: {exc}") from exc
    return parsed


def variables(document: Mapping[str, Any]) -> set[str]:
    """The ``${...}`` variables the dashboard's body reads: ``"Name"`` or ``"Resource.Attribute"``."""
    return {
        f"{match.group(1)}.{match.group(2)}" if match.group(2) else match.group(1)
        for match in _SUB_VARIABLE.finditer(_body_text(document))
    }


def _body_text(document: Mapping[str, Any]) -> str:
    _, resource = dashboard_resource(document)
    body = resource["Properties"]["DashboardBody"]
    if isinstance(body, dict) and set(body) == {"Fn::Sub"}:
        return str(body["Fn::Sub"] if isinstance(body["Fn::Sub"], str) else body["Fn::Sub"][0])
    if isinstance(body, str):
        return body
    raise ConfigError("DashboardBody should be JSON text, plain or in !Sub")


def widgets(body: Mapping[str, Any]) -> list[Widget]:
    """The metric widgets of a parsed dashboard body, in the order they are declared."""
    found = []
    for raw in body.get("widgets", []):
        if raw.get("type") != "metric":
            continue
        properties = raw["properties"]
        default_stat = str(properties.get("stat", "Average"))
        queries = [_query(index, item, default_stat) for index, item in enumerate(properties["metrics"])]
        annotations = [
            (str(note.get("label", "")), float(note["value"]))
            for note in properties.get("annotations", {}).get("horizontal", [])
        ]
        left = properties.get("yAxis", {}).get("left", {})
        found.append(
            Widget(
                title=str(properties["title"]),
                x=int(raw["x"]),
                y=int(raw["y"]),
                width=int(raw["width"]),
                height=int(raw["height"]),
                period=int(properties.get("period", 300)),
                queries=queries,
                annotations=annotations,
                y_range=(left.get("min"), left.get("max")),
            )
        )
    return found


def _query(index: int, item: Any, default_stat: str) -> Query:
    if isinstance(item, list) and item and isinstance(item[0], dict) and "expression" in item[0]:
        item = item[0]
    if isinstance(item, dict):
        if "expression" not in item:
            raise ConfigError(f"dashboard metric {item!r}: an object must be an expression")
        return Query(
            id=str(item.get("id", f"e{index}")),
            label=str(item.get("label", item["expression"])),
            expression=str(item["expression"]),
            visible=bool(item.get("visible", True)),
        )
    options = item[-1] if item and isinstance(item[-1], dict) else {}
    names = item[:-1] if options else item
    if len(names) < 2 or len(names) % 2:
        raise ConfigError(f"dashboard metric {item!r}: namespace, name, then dimension name/value pairs")
    namespace, name, *pairs = (str(part) for part in names)
    return Query(
        id=str(options.get("id", f"m{index}")),
        label=str(options.get("label", name)),
        namespace=namespace,
        name=name,
        dimensions=tuple(zip(pairs[::2], pairs[1::2], strict=True)),
        stat=str(options.get("stat", default_stat)),
        visible=bool(options.get("visible", True)),
    )


def emitted_metrics(roots: Iterable[Path] = CODE_ROOTS) -> set[str]:
    """Names of the metrics the code emits: every call with ``name=`` and ``unit=`` keywords (Powertools'
    ``add_metric``, an alias of it, ``single_metric``). A name held in a variable counts every string
    assigned to that variable in the same function (``name = "EventsRejected" if ... else "EventsFailed"``).
    """
    found: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            found |= _names_in(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def _names_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    scopes = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in scopes or [tree]:
        for call in (node for node in ast.walk(scope) if isinstance(node, ast.Call)):
            keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
            if "name" not in keywords or "unit" not in keywords:
                continue
            value = keywords["name"]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(value.value)
            elif isinstance(value, ast.Name):
                found |= _strings_assigned(scope, value.id)
    return found


def _strings_assigned(scope: ast.AST, variable: str) -> set[str]:
    strings: set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == variable for target in node.targets
        ):
            strings |= {
                item.value
                for item in ast.walk(node.value)
                if isinstance(item, ast.Constant) and isinstance(item.value, str)
            }
    return strings
