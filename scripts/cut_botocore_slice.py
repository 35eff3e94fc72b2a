"""Write the layer's slice of botocore's data (``humanos_bridge/aws_endpoints.json``, ``humanos_bridge/aws_models/``).

``aws_endpoints.json`` is botocore's ``endpoints.json`` cut down to the bridge's services, and names the botocore
version and each model's API version; ``aws_models/<service>.json`` is each service's API model without its
documentation strings. Run it with the botocore of the python3.13 Lambda runtime on the path (the version pinned in
``humanos_bridge_local.packaging.RUNTIME_PACKAGES``), whenever that pin or ``aws_session.SLICED_SERVICES`` changes:

    PYTHONPATH=.aws-sam/local/runtime-python3.13:layers/humanos python3.13 scripts/cut_botocore_slice.py

``tests/unit/test_aws_session.py`` fails when the slice was cut from another botocore than the pinned one, and
``tests/infrastructure/test_packaged_build.py`` when, under that botocore, it resolves an endpoint or reads a
model differently from botocore's own files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import botocore
from botocore.loaders import create_loader

from humanos_bridge import aws_session


def main() -> None:
    loader = create_loader()
    here = Path(aws_session.__file__).parent
    models = here / aws_session.MODELS_SLICE
    shutil.rmtree(models, ignore_errors=True)
    models.mkdir()
    versions = {}
    for service in aws_session.SLICED_SERVICES:
        versions[service] = loader.determine_latest_version(service, "service-2")
        model = loader.load_data(f"{service}/{versions[service]}/service-2")  # the file alone, without its extras
        _write(models / f"{service}.json", aws_session.without_documentation(model))
    sliced = aws_session.slice_endpoints(loader.load_data("endpoints"), aws_session.SLICED_SERVICES)
    sliced["botocoreVersion"] = botocore.__version__
    sliced["models"] = versions
    _write(here / aws_session.ENDPOINTS_SLICE, sliced)
    size = sum(path.stat().st_size for path in [here / aws_session.ENDPOINTS_SLICE, *models.iterdir()])
    written = f"{aws_session.ENDPOINTS_SLICE} and {len(versions)} models ({size:,} bytes)"
    print(f"wrote {written} from botocore {botocore.__version__}")


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
