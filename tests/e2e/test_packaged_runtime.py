"""The local Lambda runtime: real python3.13 processes under awslambdaric, failing the way Lambda fails.

Each test writes a small handler into its own folder and runs it with the project's real layers as
``/opt`` and the python3.13 runtime's own packages, through ``LambdaFunction``: an init error, a
timeout, a crash and an unhandled exception are each reported in Lambda's words, and the function goes
on serving with a fresh execution environment (a new cold start) where Lambda would start one.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
from pathlib import Path

import pytest

from humanos_bridge_local.runtime_api import FunctionError, LambdaFunction
from tests.support.packaged import function_spec


class Log:
    """The function's log stream, as CloudWatch Logs would receive it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, function: str, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def matching(self, pattern: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if re.search(pattern, line)]

    @property
    def cold_starts(self) -> int:
        return len(self.matching(r"^REPORT RequestId: .*\tInit Duration: "))


HANDLER = """
import json, os, sys, time

def lambda_handler(event, context):
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    if action == "raise":
        raise ValueError("the handler refused the event")
    if action == "look":
        try:
            import moto  # in the dev venv, never in a deployment
            moto_found = True
        except ImportError:
            moto_found = False
        return {
            "path": sys.path,
            "cwd": os.getcwd(),
            "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "handler": os.environ.get("_HANDLER"),
            "trace": os.environ.get("_X_AMZN_TRACE_ID"),
            "requestId": context.aws_request_id,
            "remainingMs": context.get_remaining_time_in_millis(),
            "arn": context.invoked_function_arn,
            "motoFound": moto_found,
            "boto3": __import__("boto3").__file__,
        }
    return {"echo": event, "pid": os.getpid()}
"""


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime") / "opt"


def make_function(tmp_path: Path, opt: Path, source: str, *, timeout: float = 3.0) -> tuple[LambdaFunction, Log]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    log = Log()
    return LambdaFunction(function_spec("TestFunction", opt, code_dir=code, timeout_seconds=timeout), log), log


def test_handler_runs_in_lambdas_environment_with_only_the_packaged_path(tmp_path: Path, opt: Path) -> None:
    """sys.path holds the task root, /opt/python and the runtime's packages (no dev venv); the context and the
    reserved variables are Lambda's."""
    function, log = make_function(tmp_path, opt, HANDLER, timeout=3.0)
    try:
        seen = function.invoke({"action": "look"})
    finally:
        function.close()

    spec = function.spec
    assert seen["path"][0] == str(spec.code_dir)
    assert str(spec.opt_dir / "python") in seen["path"] and str(spec.runtime_dir) in seen["path"]
    assert not [p for p in seen["path"] if "site-packages" in p or ".venv" in p]
    assert seen["motoFound"] is False
    assert seen["boto3"].startswith(str(spec.runtime_dir))
    assert seen["cwd"] == str(spec.code_dir)
    assert (seen["function"], seen["handler"]) == ("TestFunction", "app.lambda_handler")
    assert seen["trace"].startswith("Root=1-")
    assert seen["arn"].endswith(":function:TestFunction")
    assert 0 < seen["remainingMs"] <= 3000
    assert log.matching(rf"^START RequestId: {seen['requestId']} Version: \$LATEST$")
    assert log.matching(rf"^END RequestId: {seen['requestId']}$")


def test_init_error_is_reported_like_lambda_and_retried_on_the_next_invocation(tmp_path: Path, opt: Path) -> None:
    """A module the layer does not ship fails the init: INIT_REPORT with the error type, the runtime's [ERROR]
    line, and every invocation fails with Runtime.ImportModuleError, each in a fresh environment."""
    function, log = make_function(tmp_path, opt, "import aws_xray_sdk\n" + HANDLER)
    try:
        assert not function.warm().alive
        for _ in range(2):
            with pytest.raises(FunctionError) as failure:
                function.invoke({"action": "echo"})
            assert failure.value.error_type == "Runtime.ImportModuleError"
            assert "No module named 'aws_xray_sdk'" in failure.value.message
    finally:
        function.close()

    assert (
        len(
            log.matching(
                r"^INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: error\t"
                r"Error Type: Runtime.ImportModuleError$"
            )
        )
        == 3
    )
    assert log.matching(r"\[ERROR\] Runtime.ImportModuleError: Unable to import module 'app': No module named")


def test_timeout_kills_the_process_and_the_next_invocation_gets_a_fresh_environment(tmp_path: Path, opt: Path) -> None:
    """An invocation past Timeout is reported as 'Task timed out after 1.00 seconds'; the process is gone and
    the next invocation is a new cold start that succeeds."""
    function, log = make_function(tmp_path, opt, HANDLER, timeout=1.0)
    try:
        first = function.warm()
        with pytest.raises(FunctionError) as failure:
            function.invoke({"action": "sleep", "seconds": 30})
        assert not first.alive
        answer = function.invoke({"action": "echo"})
    finally:
        function.close()

    assert failure.value.error_type == "Sandbox.Timedout"
    assert re.fullmatch(r"RequestId: \S+ Error: Task timed out after 1\.00 seconds", failure.value.message)
    assert log.matching(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \S+ Task timed out after 1\.00 seconds$")
    assert answer["echo"] == {"action": "echo"}
    assert log.cold_starts == 2


def test_a_crashed_process_fails_its_invocation_and_is_replaced(tmp_path: Path, opt: Path) -> None:
    """A handler that kills its process fails with Runtime.ExitError; the function keeps serving."""
    function, _ = make_function(tmp_path, opt, HANDLER)
    try:
        with pytest.raises(FunctionError) as failure:
            function.invoke({"action": "exit"})
        answer = function.invoke({"action": "echo"})
    finally:
        function.close()

    assert failure.value.error_type == "Runtime.ExitError"
    assert failure.value.message.endswith("Runtime exited with error: exit status 3")
    assert answer["echo"] == {"action": "echo"}


def test_unhandled_exception_fails_the_invocation_but_keeps_the_environment(tmp_path: Path, opt: Path) -> None:
    """As in Lambda, a raised exception is the invocation's error; the warm environment serves the next one."""
    function, log = make_function(tmp_path, opt, HANDLER)
    try:
        with pytest.raises(FunctionError) as failure:
            function.invoke({"action": "raise"})
        first_pid = function.invoke({"action": "echo"})["pid"]
        second_pid = function.invoke({"action": "echo"})["pid"]
    finally:
        function.close()

    assert (failure.value.error_type, failure.value.message) == ("ValueError", "the handler refused the event")
    assert log.matching(r"^\[ERROR\] ValueError: the handler refused the event")
    assert first_pid == second_pid
    assert log.cold_starts == 1


def test_concurrent_invocations_get_their_own_environments(tmp_path: Path, opt: Path) -> None:
    """Two invocations at once never share a process: the second starts its own environment."""
    function, log = make_function(tmp_path, opt, HANDLER)
    gate = threading.Barrier(2)
    pids: list[int] = []

    def invoke() -> None:
        gate.wait()
        pids.append(function.invoke({"action": "sleep", "seconds": 1.0})["pid"])

    try:
        threads = [threading.Thread(target=invoke) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        function.close()

    assert len(pids) == 2 and pids[0] != pids[1]
    assert log.cold_starts == 2


def test_answer_is_the_handlers_json(tmp_path: Path, opt: Path) -> None:
    """Events and answers cross the Runtime API as JSON, unicode included."""
    function, _ = make_function(tmp_path, opt, HANDLER)
    event = {"action": "echo", "text": "olá, 東京", "n": [1, 2.5, None, True]}
    try:
        answer = function.invoke(event)
    finally:
        function.close()

    assert json.dumps(answer["echo"], sort_keys=True) == json.dumps(event, sort_keys=True)
