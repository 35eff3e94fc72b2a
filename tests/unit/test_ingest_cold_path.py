"""An ingest container that only queues never loads the synchronous route's Humanos sender.

Its imports (the exactly-once sender, the Humanos client, Powertools' idempotency utility) and clients are
cold-start time (``make bench``, footprint): the service builds them on the first ``POST /requests``.
Checked in a fresh interpreter, since this test session has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_BUILD_THEN_SEND = r"""
import json, sys
from humanos_bridge import wiring
from humanos_bridge.settings import Settings

LAZY = ("humanos_bridge.core.exactly_once", "humanos_bridge.core.client",
        "aws_lambda_powertools.utilities.idempotency")
settings = Settings(
    mapping_file=sys.argv[1], request_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/q",
    dead_letter_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    sender_secret_id="senders", humanos_secret_id="humanos", idempotency_table="idempotency",
    humanos_base_url="https://humanos.example",
)
service = wiring.ingest_service(settings)
built = [name for name in LAZY if name in sys.modules]
sender = service._synchronous_sender()
after = [name for name in LAZY if name in sys.modules]
limited = sender.client.creation_limiter is not None
same = service._synchronous_sender() is sender
print(json.dumps({"at_build": built, "after": after, "same": same, "limited": limited}))
"""


def test_the_synchronous_sender_is_built_by_the_first_request_not_at_cold_start() -> None:
    environment = {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD_THEN_SEND, str(ROOT / "mappings" / "bridge.json")],
        capture_output=True,
        text=True,
        env={**environment, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["at_build"] == []
    assert len(report["after"]) == 3
    assert report["same"] and report["limited"]
