"""The functions as ``sam build`` packages them, for tests that run them the way Lambda does.

``packaged()`` gives the cached build, the python3.13 runtime's own packages and the interpreter;
``function_spec()`` a ``FunctionSpec`` for a build folder (or any folder holding an ``app.py``) with the
project's layers as its ``/opt``; ``unresolved_imports()`` every import in some code that does not
resolve with only the packaged folders on the path.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

from humanos_bridge_local import packaging
from humanos_bridge_local.runtime_api import FunctionSpec


class Packaged(NamedTuple):
    build: packaging.Build
    runtime_dir: Path
    python: str


@functools.cache
def packaged() -> Packaged:
    """The project's build and runtime packages (built once, reused while the sources are unchanged)."""
    return Packaged(packaging.ensure_build(), packaging.ensure_runtime_packages(), packaging.python313())


#: Script lines setting ``strays``: the modules loaded from outside the folders given as arguments (and the standard
#: library). /opt's folders may be links into each layer's build, as the stack merges them (``assemble_opt``):
#: the folders and files linked from a given folder count as inside it.
LIST_STRAYS = r"""
import os, sys, sysconfig
def _roots(given):
    for path in given:
        yield os.path.realpath(path)
        if os.path.isdir(path):
            yield from (os.path.realpath(os.path.join(path, entry)) for entry in os.listdir(path))
allowed = [*_roots(sys.argv[1:]), os.path.realpath(sysconfig.get_paths()["stdlib"])]
def _inside(path):
    return any(path == root or path.startswith(root + os.sep) for root in allowed)
strays = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not _inside(os.path.realpath(module.__file__))
)
"""


def function_spec(
    name: str,
    opt_dir: Path,
    *,
    code_dir: Path | None = None,
    timeout_seconds: float = 3.0,
    environment: dict[str, str] | None = None,
    layers_of: str = "IngestFunction",
) -> FunctionSpec:
    """A function of the build (or the code in ``code_dir``) with the layers of ``layers_of`` in ``opt_dir``."""
    build, runtime_dir, python = packaged()
    if not opt_dir.exists():
        build.assemble_opt(layers_of, opt_dir)
    return FunctionSpec(
        name=name,
        handler="app.lambda_handler",
        code_dir=code_dir or build.function_dir(name),
        opt_dir=opt_dir,
        runtime_dir=runtime_dir,
        python=python,
        timeout_seconds=timeout_seconds,
        memory_mb=256,
        environment=environment or {},
    )


#: Runs under python3.13 with only the packaged folders on its path: lists the imports that do not resolve.
_SCAN = r"""
import ast, importlib.util, json, pathlib, sys

def guarded(node):
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")

def imports(tree):
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and guarded(node):
            pending.extend(node.orelse)  # type-only imports never run
            continue
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, [node.module]
        pending.extend(ast.iter_child_nodes(node))

missing = []
for root in sys.argv[1:]:
    root = pathlib.Path(root)
    for path in sorted([root] if root.is_file() else root.rglob("*.py")):
        for line, names in imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for name in names:
                try:
                    found = importlib.util.find_spec(name) is not None
                    problem = "not found"
                except Exception as exc:  # a parent package that fails to import
                    found, problem = False, f"{type(exc).__name__}: {exc}"
                if not found:
                    missing.append({"file": str(path), "line": line, "module": name, "problem": problem})
print(json.dumps(sorted(missing, key=lambda m: (m["file"], m["line"]))))
"""


def unresolved_imports(spec: FunctionSpec, *code: Path) -> list[dict[str, Any]]:
    """Imports in ``code`` (files or folders) that python3.13 cannot resolve from ``spec``'s packaged path.

    Every import counts, also those inside functions (a lazy import fails on the request that needs it),
    except those under ``if TYPE_CHECKING:``.
    """
    done = run_packaged(spec, _SCAN, *map(str, code))
    if done.returncode != 0:
        raise AssertionError(f"the import scan failed:\n{done.stderr}")
    return list(json.loads(done.stdout))


def run_packaged(
    spec: FunctionSpec, script: str, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh python3.13 as Lambda starts the function: its folder, path and variables only."""
    environment = {**spec.process_environment("127.0.0.1:9", "check"), **(extra or {})}
    return subprocess.run(
        [spec.python, "-S", "-c", script, *args],
        cwd=spec.code_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
