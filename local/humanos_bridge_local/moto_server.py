"""moto in server mode on loopback, for tests and the local stack.

moto's ``ThreadedMotoServer`` answers with Nagle's algorithm on: headers and body leave in two
writes and, on loopback, the second waits for the client's delayed ACK, about 40 ms a call. The
same server with ``TCP_NODELAY`` answers in about a millisecond, which is what makes volume
tests and the local stack usable. Everything else is moto's own server.
"""

from __future__ import annotations

import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server


class _NoDelayHandler(MotoRequestHandler):  # type: ignore[misc]
    disable_nagle_algorithm = True

    def log_request(self, *args: object, **kwargs: object) -> None:
        """Quiet: one line per AWS call would drown everything else."""


class MotoServer:
    """Start with ``start()`` (or ``with``), read ``endpoint_url``, always ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoServer:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=_NoDelayHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
