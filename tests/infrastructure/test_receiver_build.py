"""The receiver as ``sam build`` packages it: it imports and decrypts on python3.13 with only the build on its path,
and its own layer, as ``sam deploy`` uploads it, holds ``cryptography``'s aarch64 wheel, not this machine's.

``cryptography`` is the only package with native code (a Rust extension, and cffi's), in a layer only the receiver
has (``ReceiverLayer``): a wheel for the wrong architecture installs fine and fails at import in Lambda, so the files
themselves are checked, and the other functions' ``/opt`` must not hold it at all.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from humanos_bridge_local import packaging
from tests.support.packaged import LIST_STRAYS, function_spec, run_packaged, unresolved_imports

ROOT = Path(__file__).resolve().parents[2]
RECEIVER = "ReceiverFunction"
#: ELF's e_machine for 64-bit ARM (``EM_AARCH64``).
EM_AARCH64 = 183

#: Imports the handler in the packaged layout, decrypts what the layer encrypts, lists modules from elsewhere.
_IMPORT_AND_DECRYPT = (
    r"""
import base64, json
import app
from humanos_bridge.receive import decryption
secret = base64.b64encode(b"k" * 32).decode()
envelope = decryption.parse_envelope(decryption.encrypt_envelope(b'{"eventType":"test"}', secret, "salt"))
plaintext = decryption.decrypt(envelope, secret, "salt").decode()
"""
    + LIST_STRAYS
    + 'print(json.dumps({"handler": callable(app.lambda_handler), "plaintext": plaintext, "strays": strays}))\n'
)


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaged-receiver") / "opt"


def test_the_receiver_imports_and_decrypts_from_the_build_alone(opt: Path) -> None:
    """With Lambda's variables and nothing on the path but the build, /opt/python and the runtime's packages, the
    handler imports and cryptography's native code (built for this machine) decrypts."""
    spec = function_spec(RECEIVER, opt, environment={"POWERTOOLS_SERVICE_NAME": "humanos-bridge"}, layers_of=RECEIVER)
    allowed = [str(spec.code_dir), str(spec.opt_dir / "python"), str(spec.runtime_dir)]

    done = run_packaged(spec, _IMPORT_AND_DECRYPT, *allowed)

    assert done.returncode == 0, f"{RECEIVER} does not run as deployed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"handler": True, "plaintext": '{"eventType":"test"}', "strays": []}


def test_every_import_of_the_receiver_resolves_in_the_package(opt: Path) -> None:
    spec = function_spec(RECEIVER, opt, layers_of=RECEIVER)
    missing = unresolved_imports(spec, spec.code_dir, spec.opt_dir / "python" / "humanos_bridge")
    assert missing == [], "\n".join(f"{m['file']}:{m['line']}: {m['module']} ({m['problem']})" for m in missing)


@pytest.fixture(scope="module")
def arm64_layer() -> Path:
    """``sam build ReceiverLayer`` as ``sam deploy`` builds it (arm64, the template as written), cached under
    .aws-sam/local/ until the template or the layers' files change."""
    template = ROOT / "template.yaml"
    slot = packaging.CACHE / "layer-arm64"
    root, key_file = slot / "build", slot / "build.key"
    key = packaging.build_key(template, "arm64")
    layer = root / "ReceiverLayer" / "python"
    if key_file.exists() and key_file.read_text() == key and layer.is_dir():
        return layer
    slot.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    python_dir = str(Path(packaging.python313()).parent)
    done = subprocess.run(
        [*_sam_build(), "ReceiverLayer", "--template-file", str(template), "--build-dir", str(root)],
        cwd=ROOT,
        env={
            **os.environ,
            "PATH": f"{python_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
            "LAYER_ARCHITECTURE": "arm64",
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"sam build ReceiverLayer failed:\n{(done.stdout + done.stderr)[-3000:]}"
    key_file.write_text(key)
    return layer


def _sam_build() -> list[str]:
    return [str(packaging.sam_cli(lambda text: None)), "build"]


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path.name} is not an ELF shared object"
    return int.from_bytes(header[18:20], "little")


def test_the_arm64_layer_holds_cryptographys_aarch64_wheel(arm64_layer: Path) -> None:
    """cryptography's wheel tag is manylinux aarch64, and its Rust extension and cffi's backend are aarch64 code."""
    [info] = list(arm64_layer.glob("cryptography-*.dist-info"))
    tags = [
        line.split(":", 1)[1].strip() for line in (info / "WHEEL").read_text().splitlines() if line.startswith("Tag:")
    ]
    assert tags and all("manylinux" in tag and tag.endswith("_aarch64") for tag in tags), tags
    rust = arm64_layer / "cryptography" / "hazmat" / "bindings" / "_rust.abi3.so"
    assert _elf_machine(rust) == EM_AARCH64
    [cffi_backend] = list(arm64_layer.glob("_cffi_backend.cpython-313-*.so"))
    assert "aarch64" in cffi_backend.name and _elf_machine(cffi_backend) == EM_AARCH64
    # cryptography and what it needs, nothing of ours: the library is the shared layer's.
    assert not (arm64_layer / "humanos_bridge").exists()


_LOADS_CRYPTOGRAPHY = r"""
import json, sys
import app
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"cryptography", "cffi", "humanos_bridge"})))
"""


@pytest.mark.parametrize("function", ["IngestFunction", "DispatcherFunction"])
def test_the_other_functions_never_load_cryptography_nor_carry_it(function: str, opt: Path) -> None:
    """Only the receiver imports cryptography, and only its /opt holds it: the other functions' layers are pure
    Python (no native code for a scanner to flag, 17 MB less to unpack)."""
    spec = function_spec(function, opt / ".." / f"opt-{function}", layers_of=function)
    done = run_packaged(spec, _LOADS_CRYPTOGRAPHY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["humanos_bridge"]
    python = spec.opt_dir / "python"
    assert (python / "humanos_bridge").is_dir()
    assert not (python / "cryptography").exists() and not list(python.glob("_cffi_backend*.so"))
