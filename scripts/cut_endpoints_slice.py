"""Write ``humanos_bridge/aws_endpoints.json``: botocore's ``endpoints.json`` cut down to the bridge's services.

Run it with the botocore of the python3.13 Lambda runtime on the path (the version pinned in
``humanos_bridge_local.packaging.RUNTIME_PACKAGES``), whenever that pin or ``aws_session.SLICED_SERVICES`` changes:

    PYTHONPATH=.aws-sam/local/runtime-python3.13:layers/humanos python3.13 scripts/cut_endpoints_slice.py

``tests/unit/test_aws_session.py`` fails when the slice no longer resolves every region of every partition
to the endpoint the full file gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore
from botocore.loaders import create_loader

from humanos_bridge import aws_session


def main() -> None:
    full = create_loader().load_data("endpoints")
    sliced = aws_session.slice_endpoints(full, aws_session.SLICED_SERVICES)
    sliced["botocoreVersion"] = botocore.__version__
    target = Path(aws_session.__file__).with_name(aws_session.ENDPOINTS_SLICE)
    target.write_text(json.dumps(sliced, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size:,} bytes) from botocore {botocore.__version__}")


if __name__ == "__main__":
    main()
