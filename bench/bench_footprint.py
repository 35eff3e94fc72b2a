"""What a Lambda container of each function holds: import and build time (its cold start) and memory.

Each function runs in a fresh interpreter, as in a new container: import ``app.py`` (Powertools,
boto3, urllib3, the layer), build its services from the environment the template sets (mapping
parsed and compiled, clients created: no network), then report the time and the peak resident
memory. These figures size ``MemorySize`` and show what a cold start costs before the first call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5

_CHILD = """
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
imported = time.perf_counter()
getattr(app, sys.argv[2])()
built = time.perf_counter()
# VmHWM, not ru_maxrss: the latter also counts the forked parent's pages from before exec.
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"import_ms": (imported - started) * 1000, "build_ms": (built - imported) * 1000,
                  "peak_rss_mb": peak_kb / 1024}))
"""

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "humanos-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "HumanosBridge",
    "MAPPING_FILE": str(ROOT / "mappings" / "bridge.json"),
    "HUMANOS_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:humanos",
    "SENDER_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:senders",
    "IDEMPOTENCY_TABLE": "idempotency",
    "REQUEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/requests",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters",
}


def _measure(function: str, builder: str) -> dict[str, float]:
    env = {**os.environ, **ENVIRONMENT}
    samples = []
    for _ in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ROOT / "functions" / function / "app.py"), builder],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: round(sorted(s[key] for s in samples)[RUNS // 2], 1) for key in samples[0]}


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {"note": f"fresh interpreter per run, median of {RUNS}; Python {sys.version.split()[0]}"}
    for function, builder in (("dispatcher", "dispatcher"), ("ingest", "service")):
        for key, value in _measure(function, builder).items():
            figures[f"{function}_{key}"] = value
    return figures
