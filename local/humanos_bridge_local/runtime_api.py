"""Lambda's Runtime API, served locally: each function runs packaged, in its own python3.13 processes.

An ``ExecutionEnvironment`` is what Lambda calls a sandbox: one process started the way AWS's Python
base images start a function (``python -m awslambdaric app.lambda_handler``, the Runtime Interface
Client), working in the function's build folder, with only that folder, its layers (``/opt/python``)
and the runtime's own packages on ``sys.path``, and Lambda's environment. It talks to its own small
Runtime API server here (``/2018-06-01/runtime/invocation/next``, ``/response``, ``/error``,
``/init/error``), over HTTP/1.1: the client's C++ core crashes on HTTP/1.0 answers.

A ``LambdaFunction`` is a pool of them, as Lambda scales a function: an invocation takes an idle
environment or starts a new one (a cold start), up to ``max_environments``. It enforces ``Timeout``:
an invocation still running at its deadline has its process killed and is reported as Lambda reports
it (``Task timed out after 10.00 seconds``); a process that fails to initialise or dies is replaced by a
fresh one on the next invocation. What the processes print goes to ``on_output`` line by line, as
their stdout goes to CloudWatch Logs; what the platform itself says (``INIT_REPORT``, timeouts,
``REPORT``) goes there too, in Lambda's words.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API = "/2018-06-01/runtime"
#: Lambda's own limit for the init phase of an on-demand function.
INIT_TIMEOUT_SECONDS = 10.0
ACCOUNT_ID = "123456789012"

#: (function name, line): a line the function or the platform wrote to the function's log stream.
Output = Callable[[str, str], None]


class FunctionError(Exception):
    """An invocation failed as Lambda reports it: unhandled error, timeout, init failure, crash."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class FunctionSpec:
    """What Lambda knows about a function: code, layers, runtime, handler, limits, environment."""

    name: str
    handler: str
    #: The function's build folder (``/var/task``).
    code_dir: Path
    #: The merged layer contents (``/opt``).
    opt_dir: Path
    #: The runtime's own packages (``/var/runtime``): boto3, botocore, awslambdaric.
    runtime_dir: Path
    python: str
    timeout_seconds: float
    memory_mb: int
    environment: Mapping[str, str]
    region: str = "eu-west-1"
    tracing: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"

    def process_environment(self, runtime_api: str, stream: str) -> dict[str, str]:
        """The template's variables, then Lambda's reserved ones (which a template cannot override)."""
        reserved = {
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            # /var/task and /opt are read-only in Lambda: no bytecode cache is written next to the code.
            "PYTHONDONTWRITEBYTECODE": "1",
            # Lambda's order: the task root, the layers' python folder, then the runtime's packages.
            "PYTHONPATH": os.pathsep.join([str(self.code_dir), str(self.opt_dir / "python"), str(self.runtime_dir)]),
        }
        if self.tracing:
            reserved.update(
                AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
                AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
                _AWS_XRAY_DAEMON_ADDRESS="127.0.0.1",
                _AWS_XRAY_DAEMON_PORT="2000",
            )
        return {**self.environment, **reserved}


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    trace_id: str
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes | None = None
    error: dict[str, Any] | None = None


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # awslambdaric's C++ client crashes on HTTP/1.0 answers
    server: _RuntimeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the function's own output is what matters."""

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            self._answer(404, {"errorMessage": f"no such Runtime API path {self.path}"})
            return
        invocation = self.server.environment.next_invocation()
        if invocation is None:  # shutting down: the process is being stopped anyway
            self._answer(410, {"errorMessage": "environment shutting down"})
            return
        self._answer(
            200,
            invocation.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.server.environment.spec.arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        environment = self.server.environment
        parts = self.path.removeprefix(API + "/").split("/")
        if parts == ["init", "error"]:
            environment.init_failed(_error_body(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            error = _error_body(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
            known = environment.complete(parts[1], body if parts[2] == "response" else None, error)
            if not known:
                self._answer(400, {"errorMessage": f"unknown request id {parts[1]}"})
                return
        else:
            self._answer(404, {"errorMessage": f"no such Runtime API path {self.path}"})
            return
        self._answer(202, {"status": "OK"})

    def _answer(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)


def _error_body(body: bytes, error_type: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        parsed = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(parsed, dict):
        parsed = {"errorMessage": str(parsed)}
    parsed.setdefault("errorType", error_type or "Runtime.Unknown")
    return parsed


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, environment: ExecutionEnvironment) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.environment = environment

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a killed process (timeout, shutdown) drops its long poll; that is expected."""


class ExecutionEnvironment:
    """One sandbox: a python3.13 process running the handler under awslambdaric, and its Runtime API."""

    def __init__(self, spec: FunctionSpec, on_output: Output) -> None:
        self.spec = spec
        self.stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._on_output = on_output
        self._pending: queue.Queue[_Invocation | None] = queue.Queue(maxsize=1)
        self._current: _Invocation | None = None
        self._lock = threading.Lock()
        self._initialised = threading.Event()
        self._closing = False
        self._stopped = False
        self.init_error: dict[str, Any] | None = None
        self.init_seconds: float | None = None
        self._init_reported = False
        self._server = _RuntimeApiServer(self)
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> ExecutionEnvironment:
        threading.Thread(target=self._server.serve_forever, name=f"{self.spec.name}-runtime-api", daemon=True).start()
        host, port = self._server.server_address[:2]
        self._started_at = time.monotonic()
        self._process = subprocess.Popen(
            [self.spec.python, "-S", "-m", "awslambdaric", self.spec.handler],
            cwd=self.spec.code_dir,
            env=self.spec.process_environment(f"{host}:{port}", self.stream),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal stops the stack, which stops its processes
        )
        threading.Thread(target=self._pump_output, name=f"{self.spec.name}-logs", daemon=True).start()
        threading.Thread(target=self._watch_exit, name=f"{self.spec.name}-exit", daemon=True).start()
        return self

    def wait_initialised(self, timeout: float = INIT_TIMEOUT_SECONDS) -> bool:
        """True once the handler is imported and the runtime asks for work; False on an init failure."""
        if not self._initialised.wait(timeout):
            self._report_init("Status: timeout")
            self.stop()
            return False
        return self.init_error is None and self.alive

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        running = self._process is not None and self._process.poll() is None
        return running and not self._closing and self.init_error is None

    def stop(self) -> None:
        """Kill the process and close the Runtime API. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._closing = True
        with contextlib.suppress(queue.Full):
            self._pending.put_nowait(None)
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)
        self._server.shutdown()
        self._server.server_close()

    # -- invoking ---------------------------------------------------------------------------------

    def invoke(self, event: bytes) -> bytes:
        """Run one invocation; the handler's answer, or FunctionError as Lambda would report it."""
        if not self._initialised.wait(INIT_TIMEOUT_SECONDS) or self.init_error is not None:
            raise self._init_failure()
        timeout = self.spec.timeout_seconds
        request_id = str(uuid.uuid4())
        invocation = _Invocation(
            request_id=request_id,
            payload=event,
            deadline_ms=int((time.time() + timeout) * 1000),
            trace_id=_trace_header(),
        )
        started = time.monotonic()
        self._log(f"START RequestId: {request_id} Version: $LATEST")
        with self._lock:
            self._current = invocation
        self._pending.put(invocation)
        finished = invocation.done.wait(timeout)
        duration_ms = (time.monotonic() - started) * 1000
        with self._lock:
            self._current = None
        if not finished:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
            self._log(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds")
            self.stop()
            invocation.error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            }
        self._log(f"END RequestId: {request_id}")
        self._log(self._report_line(request_id, duration_ms))
        if invocation.error is not None:
            raise FunctionError(str(invocation.error.get("errorType")), str(invocation.error.get("errorMessage")))
        return invocation.result or b"null"

    def next_invocation(self) -> _Invocation | None:
        """Called by the Runtime API when the process asks for work: the first call ends its init."""
        if not self._initialised.is_set():
            self.init_seconds = time.monotonic() - self._started_at
            self._initialised.set()
        while True:
            try:
                return self._pending.get(timeout=0.5)
            except queue.Empty:
                if self._closing:
                    return None

    def complete(self, request_id: str, result: bytes | None, error: dict[str, Any]) -> bool:
        with self._lock:
            invocation = self._current
        if invocation is None or invocation.request_id != request_id:
            return False
        if result is not None:
            invocation.result = result
        else:
            invocation.error = error
        invocation.done.set()
        return True

    def init_failed(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self.init_seconds = time.monotonic() - self._started_at
        self._report_init(f"Status: error\tError Type: {error.get('errorType')}")
        self._initialised.set()

    # -- platform lines ---------------------------------------------------------------------------

    def _init_failure(self) -> FunctionError:
        if self.init_error is not None:
            return FunctionError(str(self.init_error.get("errorType")), str(self.init_error.get("errorMessage")))
        return FunctionError("Runtime.ExitError", "Runtime exited without providing a reason")

    def _report_init(self, status: str) -> None:
        if self._init_reported:
            return
        self._init_reported = True
        seconds = self.init_seconds if self.init_seconds is not None else time.monotonic() - self._started_at
        self._log(f"INIT_REPORT Init Duration: {seconds * 1000:.2f} ms\tPhase: init\t{status}")

    def _report_line(self, request_id: str, duration_ms: float) -> str:
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
            f"\tBilled Duration: {int(duration_ms) + 1} ms"
            f"\tMemory Size: {self.spec.memory_mb} MB\tMax Memory Used: {self._peak_memory_mb()} MB"
        )
        if self.init_seconds is not None and not self._init_reported:
            self._init_reported = True
            line += f"\tInit Duration: {self.init_seconds * 1000:.2f} ms"
        return line

    def _peak_memory_mb(self) -> int:
        if self._process is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        return 0

    def _log(self, line: str) -> None:
        self._on_output(self.spec.name, line)

    def _pump_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            self._on_output(self.spec.name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _watch_exit(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if self._closing:
            return
        self._closing = True
        message = (
            f"Runtime exited with error: exit status {code}"
            if code >= 0
            else f"Runtime exited with error: signal {-code}"
        )
        if not self._initialised.is_set():
            if self.init_error is None:
                self.init_error = {"errorType": "Runtime.ExitError", "errorMessage": message}
                self._report_init("Status: error\tError Type: Runtime.ExitError")
            self._initialised.set()
            return
        with self._lock:
            invocation = self._current
        if invocation is not None and not invocation.done.is_set():
            invocation.error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {invocation.request_id} Error: {message}",
            }
            invocation.done.set()


def _trace_header() -> str:
    """An X-Ray trace header as Lambda passes it with active tracing (``Root=1-<time>-<id>;Parent=...``)."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


class LambdaFunction:
    """A function's execution environments: reused while idle, started on demand, replaced when broken."""

    def __init__(self, spec: FunctionSpec, on_output: Output, *, max_environments: int = 4) -> None:
        self.spec = spec
        self._on_output = on_output
        self._idle: list[ExecutionEnvironment] = []
        self._all: list[ExecutionEnvironment] = []
        self._available = threading.Condition()
        self._max = max_environments
        self._closed = False

    @property
    def environments(self) -> list[ExecutionEnvironment]:
        """The environments started and not yet dropped (idle or busy)."""
        with self._available:
            return list(self._all)

    def warm(self) -> ExecutionEnvironment:
        """Start one environment and wait for its init (the cold start), so the first request is not slow.

        An environment whose init fails is dropped (its error is in the log); invocations start fresh ones.
        """
        environment = self._start()
        initialised = environment.wait_initialised()
        with self._available:
            if initialised:
                self._idle.append(environment)
            else:
                self._all.remove(environment)
            self._available.notify()
        if not initialised:
            environment.stop()
        return environment

    def invoke(self, event: Mapping[str, Any] | list[Any]) -> Any:
        """The handler's JSON answer for ``event``; FunctionError when the invocation fails."""
        environment = self._acquire()
        try:
            answer = environment.invoke(json.dumps(event).encode())
        finally:
            self._release(environment)
        try:
            return json.loads(answer)
        except ValueError as exc:
            raise FunctionError("Runtime.MarshalError", "the handler's answer is not JSON") from exc

    def close(self) -> None:
        with self._available:
            self._closed = True
            environments, self._all, self._idle = list(self._all), [], []
            self._available.notify_all()
        for environment in environments:
            environment.stop()

    def _start(self) -> ExecutionEnvironment:
        environment = ExecutionEnvironment(self.spec, self._on_output)
        with self._available:
            self._all.append(environment)
        return environment.start()

    def _acquire(self) -> ExecutionEnvironment:
        with self._available:
            while True:
                if self._closed:
                    raise FunctionError("Runtime.Unavailable", f"{self.spec.name} is shut down")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        return environment
                    self._all.remove(environment)  # its process died while idle
                if len(self._all) < self._max:
                    break
                self._available.wait()
        return self._start()

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._available:
            keep = environment.alive and not self._closed
            if keep:
                self._idle.append(environment)
            elif environment in self._all:
                # Timed out, crashed or failed its init: gone; the next invocation starts a fresh one.
                self._all.remove(environment)
            self._available.notify()
        if not keep:
            environment.stop()
