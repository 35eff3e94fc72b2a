"""What ``sam build`` packages, built for this machine and cached: the artifact the local stack runs.

Three things, each made once and kept under ``.aws-sam/local/`` until its inputs change:

- **the SAM CLI** in its own virtual environment (``.sam-venv``, shared with ``.ci/sam-checks``): it pins
  its own boto3, which must not fight the versions the bridge is tested with;
- **the build**: ``sam build`` of ``template.yaml``, for this machine's architecture. The template
  deploys arm64; on an x86_64 machine ``sam build`` would fetch arm64 wheels, which an x86_64
  interpreter cannot load. So the build runs on a copy of the template whose architecture lines say
  the host's. Same requirements, same pinned versions, same files: native wheels are the one difference.
  Its key is a hash of the template and of every file ``sam build`` reads, so an edit rebuilds;
- **the runtime's own packages**: what the python3.13 Lambda runtime puts on the path besides the
  layers (the SDK, boto3 and botocore, at the version AWS documents for the runtime) and Lambda's
  Runtime Interface Client ``awslambdaric`` (the bootstrap of AWS's Python base images), installed
  with python3.13 into a folder of their own. Never the dev venv.

``python -m humanos_bridge_local.packaging sam`` prints the SAM CLI's path (installing it if needed);
``.ci/sam-checks`` uses it, so there is one place that knows how the SAM CLI is installed. The same goes
for checkov (``... packaging checkov``, in ``.checkov-venv``), and ``... packaging transform`` prints the
template as CloudFormation receives it after the SAM transform (what ``.ci/checkov`` scans and what the
infrastructure tests read for the policies SAM generates).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".aws-sam" / "local"
SAM_VENV = ROOT / ".sam-venv"
SAM_CLI_SPEC = os.environ.get("SAM_CLI_SPEC", "aws-sam-cli")
CHECKOV_VENV = ROOT / ".checkov-venv"
#: Pinned: each checkov release adds checks, and a new failed check must come with a template change
#: (or a justified skip), not with an unrelated CI run. Move the pin on purpose, then run .ci/checkov.
CHECKOV_SPEC = os.environ.get("CHECKOV_SPEC", "checkov==3.3.30")
#: The Lambda runtime the template declares; the interpreter the packaged functions run on.
RUNTIME = "python3.13"
#: What the python3.13 runtime has on its path besides the function and its layers. boto3/botocore at
#: the SDK version of AWS's "Runtime-included SDK versions" table for python3.13 (AWS updates it now and
#: then; move this pin with it). awslambdaric is the runtime interface client of AWS's base images.
RUNTIME_PACKAGES = ("boto3==1.40.4", "botocore==1.40.4", "awslambdaric==4.2.2")
#: Names in sam build's output we never hash as inputs (caches of the interpreter, of tools).
_IGNORED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_ARCHITECTURE_LINE = re.compile(r"^(\s*(?:Architectures|BuildArchitecture|CompatibleArchitectures)\s*:.*)$", re.M)

Say = Callable[[str], None]


def host_architecture() -> str:
    """Lambda's name for this machine's architecture."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    raise ConfigError(f"Lambda runs x86_64 or arm64 code; this machine is {machine}, which the local stack cannot run")


def python313() -> str:
    """Path of a real python3.13 interpreter (not a pyenv shim, which depends on PYENV_VERSION)."""
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        answer = subprocess.run(
            [pyenv, "which", RUNTIME],
            capture_output=True,
            text=True,
            env={**os.environ, "PYENV_VERSION": "3.13.0"},
            check=False,
        )
        candidates.append(answer.stdout.strip())
    candidates.append(shutil.which(RUNTIME) or "")
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; print(sys.executable)"]
        answer = subprocess.run(probe, capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            return answer.stdout.strip()
    raise ConfigError(
        f"the packaged functions run on {RUNTIME}, the Lambda runtime, and none was found; install it "
        "(pyenv install 3.13.0, or your system's python3.13 package) and retry"
    )


def sam_cli(say: Say = print) -> Path:
    """The SAM CLI in ``.sam-venv``, installed on first use (about a minute)."""
    return _tool_in_own_venv(SAM_VENV, "sam", SAM_CLI_SPEC, f"the SAM CLI ({SAM_CLI_SPEC})", say)


def checkov_cli(say: Say = print) -> Path:
    """checkov in ``.checkov-venv``, installed on first use: its many pinned dependencies stay out of ``.venv``."""
    return _tool_in_own_venv(CHECKOV_VENV, "checkov", CHECKOV_SPEC, CHECKOV_SPEC, say)


def _tool_in_own_venv(venv: Path, executable: str, spec: str, what: str, say: Say) -> Path:
    """``executable`` from ``spec``, pip-installed into ``venv`` once; a stamp names the version installed."""
    tool = venv / "bin" / executable
    stamp = venv / (".installed-" + re.sub(r"[^A-Za-z0-9._-]", "_", spec))
    if stamp.exists() and tool.exists():
        return tool
    say(f"installing {what} into {venv.name}/, once (about a minute) ...")
    if not (venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)], f"creating {venv.name}/")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, spec], f"pip install {spec}")
    for old in venv.glob(".installed-*"):  # a version bump reinstalls over the old one
        old.unlink()
    stamp.touch()
    return tool


#: Run by the SAM CLI's interpreter, which has the SAM translator (``sam validate`` uses the same one).
#: Local ``CodeUri``/``ContentUri`` folders become a placeholder S3 URI, as ``sam validate`` does; no AWS
#: call is made (the template names no managed policy, so the policy map stays empty).
_TRANSFORM = r"""
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicyNames:
    def load(self):
        return {}

path, parameters = sys.argv[1], json.loads(sys.argv[2])
with open(path, encoding="utf-8") as handle:
    template = yaml_parse(handle.read())
for body in template.get("Resources", {}).values():
    properties = body.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
            properties[key] = "s3://bucket/" + properties[key].strip("/")
# passthrough_metadata: a SAM resource's Metadata (checkov's inline skips) reaches what it becomes.
print(json.dumps(transform(template, parameters, NoManagedPolicyNames(), passthrough_metadata=True), indent=1))
"""


def sam_transform(
    template: Path = ROOT / "template.yaml", parameters: dict[str, str] | None = None, *, say: Say = print
) -> dict[str, Any]:
    """``template`` after the SAM transform: the CloudFormation that ``sam deploy`` submits, as a dict.

    ``parameters`` are passed to the translator (it resolves only what SAM itself needs, such as a
    function's event properties); everything else keeps its intrinsic functions.
    """
    python = sam_cli(say).parent / "python"
    done = subprocess.run(
        [str(python), "-c", _TRANSFORM, str(template), json.dumps(parameters or {})],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")},
    )
    if done.returncode != 0:
        raise ConfigError(f"the SAM transform of {template} failed:\n  " + "\n  ".join(done.stderr.splitlines()[-15:]))
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@dataclass(frozen=True)
class Build:
    """One ``sam build`` output: a folder per function and per built layer, and the built template."""

    root: Path
    architecture: str
    #: The template it was built from.
    source: Path

    def function_dir(self, logical_id: str) -> Path:
        return self.root / logical_id

    def layer_dirs(self, function: str) -> list[Path]:
        """The contents of the function's layers, in the order Lambda extracts them into ``/opt``.

        A layer with a build method is its build folder; one without is zipped as it is, so it is its
        source folder (the built template's relative path to it is not reliable with ``--base-dir``).
        """
        template = _parsed_template(self.source)
        resources = template.get("Resources", {})
        # As SAM merges lists: the Globals' layers first, then the function's own.
        shared = template.get("Globals", {}).get("Function", {}).get("Layers", [])
        layers = [*shared, *resources[function].get("Properties", {}).get("Layers", [])]
        found = []
        for layer in layers:
            name = layer.get("Ref") if isinstance(layer, dict) else None
            body = resources.get(name, {}) if name else {}
            if body.get("Type") != "AWS::Serverless::LayerVersion":
                raise ConfigError(f"{function} uses layer {layer!r}, which is not a layer of {self.source.name}")
            if body.get("Metadata", {}).get("BuildMethod"):
                found.append(self.root / str(name))
            else:
                found.append((self.source.parent / str(body["Properties"]["ContentUri"])).resolve())
        return found

    def assemble_opt(self, function: str, folder: Path) -> Path:
        """``folder`` made into the function's ``/opt``: its layers, extracted one over the other as Lambda does.

        Symbolic links, not copies: starting a stack costs nothing, and an edited mapping file is seen at once.
        """
        folder.mkdir(parents=True, exist_ok=True)
        for layer in self.layer_dirs(function):
            _link_tree(layer, folder)
        return folder


def _link_tree(source: Path, target: Path) -> None:
    """Link ``source``'s entries into ``target`` as Lambda extracts a layer over the ones before it: a folder both
    hold is merged (``python/`` of the library's layer and of the receiver's), anything else is the later one's."""
    for entry in source.iterdir():
        place = target / entry.name
        if entry.is_dir() and place.is_dir():
            if place.is_symlink():  # an earlier layer's folder, linked whole: becomes a folder of links to its entries
                earlier = place.resolve()
                place.unlink()
                place.mkdir()
                _link_tree(earlier, place)
            _link_tree(entry, place)
            continue
        if place.is_symlink() or place.is_file():
            place.unlink()
        elif place.is_dir():
            shutil.rmtree(place)
        place.symlink_to(entry, target_is_directory=entry.is_dir())


def _parsed_template(path: Path) -> dict[str, Any]:
    """``load_template`` once per file version: the stack asks for each function's layers at start-up."""
    stat = path.stat()
    return _parsed_template_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parsed_template_version(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    return load_template(path)


def ensure_build(template: Path = ROOT / "template.yaml", *, say: Say = print) -> Build:
    """``sam build`` of ``template`` for this machine, reused while its inputs are unchanged."""
    template = template.resolve()
    architecture = host_architecture()
    key = build_key(template, architecture)
    # One build folder per template, so a test's own template does not evict the project's build.
    slot = CACHE / f"build-{hashlib.sha256(str(template).encode()).hexdigest()[:10]}"
    root = slot / "build"
    key_file = slot / "build.key"
    slot.mkdir(parents=True, exist_ok=True)
    with _locked(slot / ".lock"):  # another stack or test run may be building the same slot
        if not (key_file.exists() and key_file.read_text() == key and (root / "template.yaml").exists()):
            _sam_build(template, architecture, slot, say)
            key_file.write_text(key)
    return Build(root, architecture, template)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sam_build(template: Path, architecture: str, slot: Path, say: Say) -> None:
    root = slot / "build"
    key_file = slot / "build.key"
    sam = sam_cli(say)
    say(f"sam build ({architecture}, inputs changed since the last build) ...")
    key_file.unlink(missing_ok=True)
    source = _template_for(template, architecture, slot)
    python_dir = str(Path(python313()).parent)
    _run(
        [
            str(sam),
            "build",
            "--template-file",
            str(source),
            "--base-dir",
            str(template.parent),
            "--build-dir",
            str(root),
        ],
        "sam build",
        env={
            **os.environ,
            "PATH": f"{python_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
            # layers/humanos/Makefile fetches wheels for this architecture instead of the template's.
            "LAYER_ARCHITECTURE": architecture,
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
        },
        cwd=template.parent,
    )


def _template_for(template: Path, architecture: str, folder: Path) -> Path:
    """``template`` itself, or a copy whose architecture lines name ``architecture``."""
    text = template.read_text(encoding="utf-8")
    other = "arm64" if architecture == "x86_64" else "x86_64"
    changed = _ARCHITECTURE_LINE.sub(lambda m: m.group(1).replace(other, architecture), text)
    if changed == text:
        return template
    copy = folder / f"template.{architecture}.yaml"
    copy.write_text(changed, encoding="utf-8")
    return copy


def build_key(template: Path, architecture: str) -> str:
    """A hash of everything ``sam build`` reads: the template and the code and layer folders it names."""
    digest = hashlib.sha256()
    digest.update(f"{architecture}\0{SAM_CLI_SPEC}\0".encode())
    digest.update(template.read_bytes())
    for folder in sorted(_built_folders(template)):
        for path in sorted(_files(folder)):
            digest.update(str(path).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _built_folders(template: Path) -> set[Path]:
    """``CodeUri`` of every function and ``ContentUri`` of every layer (sam build copies both)."""
    document = load_template(template)
    folders = set()
    for body in document.get("Resources", {}).values():
        properties = body.get("Properties", {})
        uri = properties.get("CodeUri") or properties.get("ContentUri")
        if isinstance(uri, str) and body.get("Type", "").startswith("AWS::Serverless::"):
            folders.add((template.parent / uri).resolve())
    return folders


def _files(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not _IGNORED_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def ensure_runtime_packages(*, say: Say = print) -> Path:
    """The runtime's own packages (boto3, botocore, awslambdaric) for python3.13, installed once."""
    target = CACHE / f"runtime-{RUNTIME}"
    stamp = target / ".installed"
    wanted = json.dumps(RUNTIME_PACKAGES)
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f".runtime-{RUNTIME}.lock"):
        if stamp.exists() and stamp.read_text() == wanted:
            return target
        say(f"installing the {RUNTIME} runtime's own packages ({', '.join(RUNTIME_PACKAGES)}), once ...")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        pip = [python313(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, "--target", str(target), *RUNTIME_PACKAGES], f"pip install the {RUNTIME} runtime's packages")
        stamp.write_text(wanted)
    return target


def _run(command: list[str], what: str, **kwargs: Any) -> None:
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-25:]
        raise ConfigError(f"{what} failed (exit {done.returncode}):\n  " + "\n  ".join(output))


def main(argv: list[str]) -> int:
    if argv == ["sam"]:
        print(sam_cli(lambda text: print(text, file=sys.stderr)))
        return 0
    if argv == ["checkov"]:
        print(checkov_cli(lambda text: print(text, file=sys.stderr)))
        return 0
    if argv == ["transform"]:
        print(json.dumps(sam_transform(say=lambda text: print(text, file=sys.stderr)), indent=1))
        return 0
    if argv == ["build"]:
        build = ensure_build()
        runtime = ensure_runtime_packages()
        print(f"build {build.root} ({build.architecture}); runtime packages {runtime}")
        return 0
    print("usage: python -m humanos_bridge_local.packaging sam|checkov|transform|build", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
