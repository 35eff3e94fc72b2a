"""What ``sam build`` packages runs on its own: python3.13, the build folder, the layers, the runtime's packages.

The dev venv holds every package the tests and tools need; a deployed function has only what the
build ships plus boto3/botocore from the runtime. These tests start fresh python3.13 processes with
exactly that path and Lambda's reserved variables, so a package missing from the layer (as the X-Ray
SDK once was: every deployment crashed at import) fails here, not in AWS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.packaged import LIST_STRAYS, function_spec, run_packaged, unresolved_imports

FUNCTIONS = ("IngestFunction", "DispatcherFunction")

#: Imports the handler module in the packaged layout, then lists every module it loaded from outside it.
_IMPORT_HANDLER = (
    "import json\nimport app\n"
    + LIST_STRAYS
    + 'print(json.dumps({"handler": callable(getattr(app, "lambda_handler", None)), "strays": strays}))\n'
)


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The functions' /opt: their layers, as Lambda extracts them."""
    return tmp_path_factory.mktemp("packaged") / "opt"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_from_the_build_alone_with_lambdas_variables(function: str, opt: Path) -> None:
    """Given Lambda's reserved variables (the ones that switch Powertools into its Lambda mode), the handler
    module imports with nothing on the path but the build folder, /opt/python and the runtime's packages."""
    spec = function_spec(function, opt, environment={"POWERTOOLS_SERVICE_NAME": "humanos-bridge"})
    trace = {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
    allowed = [str(spec.code_dir), str(spec.opt_dir / "python"), str(spec.runtime_dir)]

    done = run_packaged(spec, _IMPORT_HANDLER, *allowed, extra=trace)

    assert done.returncode == 0, f"{function} does not import as deployed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"handler": True, "strays": []}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_import_in_our_code_resolves_in_the_package(function: str, opt: Path) -> None:
    """Every import in the handler and in humanos_bridge (lazy ones inside functions included) names a module
    that the build, the layers or the python3.13 runtime provides."""
    spec = function_spec(function, opt)
    library = spec.opt_dir / "python" / "humanos_bridge"
    # humanos_bridge.receive is the receiver's (its cryptography is in the receiver's own layer):
    # test_receiver_build scans it there, and checks that these functions never import it.
    scanned = [path for path in library.iterdir() if path.name != "receive"]

    missing = unresolved_imports(spec, spec.code_dir, *scanned)

    assert missing == [], (
        "imports that a deployed function cannot satisfy (add the package to the layer):\n"
        + "\n".join(f"  {m['file']}:{m['line']}: {m['module']} ({m['problem']})" for m in missing)
    )


def test_the_import_scan_finds_a_package_missing_from_the_layer(tmp_path: Path, opt: Path) -> None:
    """The scan catches what crashed the deployments: a module the layer does not ship, imported lazily
    inside a function as Powertools' Tracer did, or at the top; type-only imports do not count."""
    code = tmp_path / "function"
    code.mkdir()
    (code / "app.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import boto3\n"
        "import aws_lambda_powertools\n"
        "if TYPE_CHECKING:\n"
        "    import mypy_boto3_sqs\n"
        "def patch():\n"
        "    from aws_xray_sdk.core import xray_recorder\n"
        "import moto\n",
        encoding="utf-8",
    )
    spec = function_spec("Scanned", opt, code_dir=code)

    missing = unresolved_imports(spec, code)

    assert sorted((m["line"], m["module"]) for m in missing) == [(7, "aws_xray_sdk.core"), (8, "moto")]


#: Under the runtime's botocore: the session's loader hands out the layer's slice of endpoints.json, and it
#: resolves every region of every partition (plus one no file lists) exactly as botocore's full file does.
_COMPARE_ENDPOINTS = r"""
import json, os, sys
from botocore.loaders import Loader
from botocore.regions import EndpointResolver
from humanos_bridge.aws_session import SLICED_SERVICES as SERVICES, lambda_session
session = lambda_session(SERVICES)
loader = session._session.get_component("data_loader")
sliced, _ = loader.load_data_with_path("endpoints")
full = Loader().load_data("endpoints")
resolvers = EndpointResolver(full, True), EndpointResolver(sliced, True)
def answer(resolver, *args):
    try:
        return resolver.construct_endpoint(*args)
    except Exception as error:  # an unsupported variant: both must refuse it alike
        return f"{type(error).__name__}: {error}"
differences, checked = [], 0
for partition in full["partitions"]:
    name = partition["partition"]
    for region in [*partition["regions"], {"aws": "eu-future-9", "aws-cn": "cn-future-9"}.get(name, "us-gov-future-9")]:
        for service in SERVICES:
            for fips in (False, True):
                for dualstack in (False, True):
                    answers = [answer(r, service, region, name, dualstack, fips) for r in resolvers]
                    checked += 1
                    if answers[0] != answers[1]:
                        differences.append([service, region, fips, dualstack])
print(json.dumps({"slice": sliced.get("services"), "checked": checked, "differences": differences[:5]}))
"""


def test_the_layers_endpoints_slice_resolves_as_the_runtimes_botocore(opt: Path) -> None:
    """The slice (``aws_session``: 17 ms of the first client's cold start) changes no endpoint."""
    spec = function_spec("DispatcherFunction", opt, environment={"AWS_DEFAULT_REGION": "eu-west-1"})

    done = run_packaged(spec, _COMPARE_ENDPOINTS)

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["slice"] is not None, "the runtime's botocore got its full endpoints.json: re-cut the slice"
    assert report["differences"] == [] and report["checked"] > 400


#: Under the runtime's botocore: each API model the session's loader hands out is the layer's slice, and equals
#: botocore's own model with its documentation strings left out; each client then has every operation, and each
#: operation the same input and output members, as a client built from botocore's full model.
_COMPARE_MODELS = r"""
import json
import botocore.session
from botocore.loaders import Loader
from botocore.model import ServiceModel
from humanos_bridge.aws_session import SLICED_SERVICES as SERVICES, lambda_session, without_documentation
session = lambda_session(SERVICES)
loader = session._session.get_component("data_loader")
report = {}
def members(shape):
    return sorted(getattr(shape, "members", {})) if shape is not None else None
for service in SERVICES:
    served, full = loader.load_service_model(service, "service-2"), Loader().load_service_model(service, "service-2")
    documented = json.dumps(full).count('"documentation"')
    ours, theirs = ServiceModel(served, service), ServiceModel(full, service)
    operations = [
        name for name in theirs.operation_names
        if members(ours.operation_model(name).input_shape) != members(theirs.operation_model(name).input_shape)
        or members(ours.operation_model(name).output_shape) != members(theirs.operation_model(name).output_shape)
    ]
    report[service] = {
        "sliced": '"documentation"' not in json.dumps(served) and documented > 0,
        "equal_without_documentation": served == without_documentation(full),
        "operations": ours.operation_names == theirs.operation_names,
        "differing_operations": operations,
        "client": sorted(session.client(service, region_name="eu-west-1").meta.method_to_api_mapping.values())
        == sorted(theirs.operation_names),
    }
print(json.dumps(report))
"""


def test_the_layers_api_models_are_botocores_own_without_documentation(opt: Path) -> None:
    """The models' slice (``aws_session``: 4.5 ms of three clients' cold start) changes nothing a client does."""
    spec = function_spec("DispatcherFunction", opt, environment={"AWS_DEFAULT_REGION": "eu-west-1"})

    done = run_packaged(spec, _COMPARE_MODELS)

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "sliced": True,
        "equal_without_documentation": True,
        "operations": True,
        "differing_operations": [],
        "client": True,
    }
    assert report == {service: expected for service in ("dynamodb", "events", "secretsmanager", "sqs")}, (
        "re-cut the slice: see scripts/cut_botocore_slice.py"
    )
