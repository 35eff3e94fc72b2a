"""moto in server mode on loopback, for tests and the local stack.

moto's ``ThreadedMotoServer`` answers with Nagle's algorithm on: headers and body leave in two
writes and, on loopback, the second waits for the client's delayed ACK, about 40 ms a call. The
same server with ``TCP_NODELAY`` answers in about a millisecond, which is what makes volume
tests and the local stack usable. Everything else is moto's own server.
"""

from __future__ import annotations

import subprocess
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server


class _NoDelayHandler(MotoRequestHandler):  # type: ignore[misc]
    disable_nagle_algorithm = True

    def log_request(self, *args: object, **kwargs: object) -> None:
        """Quiet: one line per AWS call would drown everything else."""


def _make_server(host: str, port: int) -> BaseWSGIServer:
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=_NoDelayHandler)


class MotoServer:
    """Start with ``start()`` (or ``with``), read ``endpoint_url``, always ``stop()``.

    ``own_process=True`` runs moto in a child process: the same server, but on its own interpreter
    lock, so a test that drives thousands of AWS calls from many threads gets the machine's other
    core instead of sharing one with moto.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, own_process: bool = False) -> None:
        self._host, self._port, self._in_child = host, port, own_process
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[str] | None = None
        self._url = ""

    def start(self) -> MotoServer:
        if self._in_child:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "humanos_bridge_local.moto_server", self._host, str(self._port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._child.stdout is not None
            line = self._child.stdout.readline().strip()  # the child prints its URL once it listens
            if not line.startswith("http://"):
                self.stop()
                raise RuntimeError(f"moto server did not start (said {line!r})")
            self._url = line
            return self
        self._server = _make_server(self._host, self._port)
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    @property
    def endpoint_url(self) -> str:
        if not self._url:
            raise RuntimeError("call start() first")
        return self._url

    def stop(self) -> None:
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = self._child = None
        self._url = ""

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_in_child(host: str, port: int) -> None:
    server = _make_server(host, port)
    bound_host, bound_port = server.server_address[:2]
    print(f"http://{bound_host}:{bound_port}", flush=True)  # the parent reads this line
    server.serve_forever()


if __name__ == "__main__":
    _serve_in_child(sys.argv[1], int(sys.argv[2]))
