"""humanos_bridge: turn business events into signed Humanos requests, and Humanos's answers back into events.

This package is the Lambda layer. Three flows, each a subpackage, over one shared core:

- ``ingest``: an HTTP webhook from a business system is verified, mapped (a dry run) and queued, or sent to
  Humanos at once on the synchronous route (``ingest.service.IngestService``);
- ``dispatch``: SQS batches of business events become signed ``POST /request`` calls, exactly once, and
  what cannot be sent is parked with its reason (``dispatch.service.Dispatcher``);
- ``receive``: Humanos's signed, encrypted webhooks become events on EventBridge
  (``receive.service.ReceiverService``);
- ``core``: what the flows share: the wire format and signing, the Humanos client, credentials, the error
  taxonomy and its HTTP answers, masking, sender authentication, the exactly-once sender and its ledger;
- ``mapping``: the declarative mapping engine (business event -> request bodies).

``settings`` reads the environment, ``wiring`` builds each flow's service from it (the one composition
root), ``aws_session`` the boto3 session, ``logs`` the logger. Nothing here performs I/O at import time.
"""

__version__ = "0.1.0"

#: Sent as ``User-Agent`` on every Humanos call, so Humanos support can tell our traffic apart.
USER_AGENT = f"humanos-bridge/{__version__}"
