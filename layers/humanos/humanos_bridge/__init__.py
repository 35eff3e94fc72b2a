"""humanos_bridge: turn business events into signed Humanos requests.

This package is the Lambda layer. It holds what the functions share: the wire format and
signing, the Humanos client, credentials, the mapping engine and the error taxonomy.
Nothing here performs I/O at import time.
"""

__version__ = "0.1.0"

#: Sent as ``User-Agent`` on every Humanos call, so Humanos support can tell our traffic apart.
USER_AGENT = f"humanos-bridge/{__version__}"
