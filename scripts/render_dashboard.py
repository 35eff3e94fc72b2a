"""Draw the bridge's CloudWatch dashboard from a local run: docs/dashboard.png.

The widgets are read from template.yaml's ``AWS::CloudWatch::Dashboard`` (titles, metrics, statistics,
expressions, threshold lines, places on the grid), so the picture cannot drift from what ``sam deploy``
creates. The data comes from a local run, not from AWS:

1. a fresh local stack (the functions as ``sam build`` packages them, see ``humanos-bridge local``), with
   every line the functions write captured, Powertools' EMF metric lines included: CloudWatch would turn
   those into the bridge's metrics, and here they are read the same way;
2. the demo's sample events (``events/demo.json``: created, duplicate, ignored, parked, refused) sent
   ``--rounds`` times, ``--interval`` seconds apart, each round with fresh event ids;
3. meanwhile, what AWS itself would publish, measured on the stack: queue depths and the age of the oldest
   message (from moto, sampled every second), each invocation's duration (its ``REPORT`` line) and
   failures, the HTTP statuses of the API's answers. Lambda throttles and the DLQ's NumberOfMessagesSent
   have no local source: their widgets say so;
4. every metric aggregated per ``--period`` seconds with the widget's own statistic, then drawn.

``--save-metrics FILE`` keeps the samples (JSON lines); ``--from-metrics FILE`` draws from such a file
without starting anything. Run: ``.venv/bin/python scripts/render_dashboard.py`` (a few minutes).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import operator
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))  # run as a file, from a checkout

from humanos_bridge_local.cfn import load_template  # noqa: E402
from humanos_bridge_local.dashboard import Query, Widget, dashboard_body, widgets  # noqa: E402

OUTPUT = ROOT / "docs" / "dashboard.png"
#: Metrics AWS publishes that nothing on the local stack stands for: the stack never throttles, and moto
#: cannot tell a message the dispatcher sent to the DLQ from one SQS moved there.
NO_LOCAL_SOURCE = {("AWS/Lambda", "Throttles"), ("AWS/SQS", "NumberOfMessagesSent")}
_REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: ([0-9.]+) ms")


@dataclass(frozen=True)
class Sample:
    """One value of one metric at one time, as CloudWatch would receive it."""

    t: float
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


# -- reading what the functions write ---------------------------------------------------------------


def emf_samples(line: str) -> list[Sample]:
    """The metric values of one EMF log line (Powertools' format); [] for any other line."""
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    try:
        entry = json.loads(line)
        meta = entry["_aws"]
    except (ValueError, KeyError, TypeError):
        return []
    found = []
    for directive in meta.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", [[]]):
            dimensions = tuple(sorted((str(key), str(entry.get(key, ""))) for key in dimension_set))
            for metric in directive.get("Metrics", []):
                values = entry.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, int | float):
                        found.append(
                            Sample(meta["Timestamp"] / 1000, directive["Namespace"], metric["Name"], dimensions, value)
                        )
    return found


class Recorder:
    """Collects samples from the stack's log lines, its invocations, the API's answers and the queues."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._lock = threading.Lock()

    def add(self, *samples: Sample) -> None:
        with self._lock:
            self.samples.extend(samples)

    def on_log_line(self, function: str, line: str) -> None:
        self.add(*emf_samples(line))
        match = _REPORT.match(line)
        if match:
            now, dimension = time.time(), (("FunctionName", function),)
            self.add(
                Sample(now, "AWS/Lambda", "Duration", dimension, float(match.group(1))),
                Sample(now, "AWS/Lambda", "Invocations", dimension, 1.0),
                Sample(now, "AWS/Lambda", "Errors", dimension, 0.0),
            )

    def on_answer(self, status: int) -> None:
        now, dimension = time.time(), (("ApiId", "HttpApi"),)
        self.add(
            Sample(now, "AWS/ApiGateway", "Count", dimension, 1.0),
            Sample(now, "AWS/ApiGateway", "4xx", dimension, float(400 <= status < 500)),
            Sample(now, "AWS/ApiGateway", "5xx", dimension, float(status >= 500)),
        )


def count_failed_invocations(stack: Any, recorder: Recorder) -> None:
    """Each function's invocations that fail (Lambda's Errors) are counted as they happen."""
    from humanos_bridge_local.runtime_api import FunctionError

    for name, function in stack.functions.items():
        invoke = function.invoke

        def counted(event: Any, _invoke: Callable[[Any], Any] = invoke, _name: str = name) -> Any:
            try:
                return _invoke(event)
            except FunctionError:
                recorder.add(Sample(time.time(), "AWS/Lambda", "Errors", (("FunctionName", _name),), 1.0))
                raise

        function.invoke = counted  # the gateway and the poller look the method up at each call


def sample_queues(stack: Any, recorder: Recorder, stop: threading.Event) -> None:
    """Every second: each queue's visible and in-flight messages, and the age of its oldest message.

    The age is read from moto's own queue (the local stack runs moto in this process); SQS computes
    ApproximateAgeOfOldestMessage the same way, from the oldest message not yet deleted.
    """
    from moto.sqs.models import sqs_backends

    sqs = stack.client("sqs")
    queues = {"RequestQueue": stack.request_queue_url, "DeadLetterQueue": stack.dead_letter_queue_url}
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while not stop.wait(1.0):
        now = time.time()
        for logical_id, url in queues.items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            dimension = (("QueueName", logical_id),)
            recorder.add(
                Sample(now, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimension, float(attributes[names[0]])),
                Sample(now, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dimension, float(attributes[names[1]])),
            )
            try:
                backend = sqs_backends[url.split("/")[-2]][stack.client("sqs").meta.region_name]
                messages = backend.queues[url.split("/")[-1]]._messages
                sent = [message.sent_timestamp for message in messages if message.sent_timestamp]
            except (KeyError, AttributeError):
                continue  # moto in another process, or its internals changed: no age then
            age = now - min(sent) / 1000 if sent else 0.0
            recorder.add(Sample(now, "AWS/SQS", "ApproximateAgeOfOldestMessage", dimension, max(age, 0.0)))


# -- running the demo ----------------------------------------------------------------------------------


def run_demo(rounds: int, interval: float, recorder: Recorder) -> None:
    """The demo's steps, ``rounds`` times, on a fresh local stack; returns once the queue has drained."""
    from humanos_bridge_local.commands import demo
    from humanos_bridge_local.commands.local import say
    from humanos_bridge_local.stack import LocalStack, StackOptions

    steps = demo.load_manifest(demo.MANIFEST)
    say(f"starting a fresh local stack; then {rounds} rounds of {len(steps)} demo events, {interval:g} s apart ...")
    options = StackOptions(port=0, write_endpoints=False)
    with (
        tempfile.TemporaryDirectory() as scratch,
        LocalStack(options, on_message=say, on_log_line=recorder.on_log_line) as stack,
    ):
        count_failed_invocations(stack, recorder)
        stop = threading.Event()
        sampler = threading.Thread(target=sample_queues, args=(stack, recorder, stop), daemon=True)
        sampler.start()
        started = time.monotonic()
        ids: dict[str, str] = {}
        try:
            for number in range(1, rounds + 1):
                for step in steps:
                    sent = _fresh(step, number, ids, Path(scratch))
                    demo.send_step(stack, sent)
                    recorder.on_answer(sent.http or 0)
                    if number == 1 and sent.event_id:
                        ids.setdefault(str(step.event), sent.event_id)
                say(f"round {number}/{rounds} sent")
                if number < rounds:
                    time.sleep(max(0.0, started + number * interval - time.monotonic()))
            stack.wait_until_drained(120)
            time.sleep(5)  # the last batch's lines and a few more queue samples
        finally:
            stop.set()
            sampler.join()


def _fresh(step: Any, number: int, ids: dict[str, str], scratch: Path) -> Any:
    """The step with its event id made unique to the round (round 1 as it is), so each round creates again."""
    known = ids.get(str(step.event))
    if number == 1 or not known:
        return dataclasses.replace(step, answer={}, http=None)
    body = step.event.read_bytes()
    if known.encode() not in body:
        return dataclasses.replace(step, answer={}, http=None)  # an id derived from the body: a duplicate
    copy = scratch / f"r{number}-{step.event.name}"
    copy.write_bytes(body.replace(known.encode(), f"{known}-r{number}".encode()))
    return dataclasses.replace(step, event=copy, answer={}, http=None)


# -- aggregating as CloudWatch does ----------------------------------------------------------------------


def statistic(values: list[float], stat: str) -> float:
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        ordered = sorted(values)
        rank = max(1, math.ceil(float(stat[1:]) / 100 * len(ordered)))
        return ordered[rank - 1]
    raise ValueError(f"statistic {stat} is not drawn by this script")


def series(query: Query, samples: list[Sample], start: float, period: int, buckets: int) -> list[float | None]:
    """One value per period (None: no data, as CloudWatch leaves a gap)."""
    grouped: list[list[float]] = [[] for _ in range(buckets)]
    wanted = tuple(sorted(query.dimensions))
    for sample in samples:
        if (sample.namespace, sample.name, sample.dimensions) == (query.namespace, query.name, wanted):
            index = int((sample.t - start) // period)
            if 0 <= index < buckets:
                grouped[index].append(sample.value)
    return [statistic(values, query.stat) if values else None for values in grouped]


_OPERATORS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str, known: dict[str, list[float | None]], buckets: int) -> list[float | None]:
    """A metric-math expression made of ids, numbers and + - * /, point by point (the dashboard uses no more)."""

    def value(node: ast.AST) -> list[float | None]:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return [float(node.value)] * buckets
        if isinstance(node, ast.Name):
            return known[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            apply = _OPERATORS[type(node.op)]
            left, right = value(node.left), value(node.right)
            return [None if a is None or b is None else apply(a, b) for a, b in zip(left, right, strict=True)]
        raise ValueError(f"metric math {expression!r}: only ids, numbers and + - * / are drawn")

    return value(ast.parse(expression, mode="eval"))


# -- drawing -------------------------------------------------------------------------------------------------


def draw(board: list[Widget], samples: list[Sample], period: int, output: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(sample.t for sample in samples) // period * period
    buckets = int((max(sample.t for sample in samples) - start) // period) + 1
    rows = max(widget.y + widget.height for widget in board)
    height = rows * 0.7 + 1.4
    figure = plt.figure(figsize=(18, height), dpi=100)
    grid = figure.add_gridspec(rows, 24, hspace=4.0, wspace=2.4, top=1 - 1.2 / height, bottom=0.5 / height)
    for widget in board:
        axes = figure.add_subplot(grid[widget.y : widget.y + widget.height, widget.x : widget.x + widget.width])
        draw_widget(axes, widget, samples, start, period, buckets)
    figure.suptitle(f"humanos-bridge dashboard, rendered from a local demo run\n{subtitle}", fontsize=12)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    plt.close(figure)


def draw_widget(axes: Any, widget: Widget, samples: list[Sample], start: float, period: int, buckets: int) -> None:
    """One widget: its visible lines, its threshold lines, and a note for each metric without data."""
    minutes = [(index + 0.5) * period / 60 for index in range(buckets)]
    known: dict[str, list[float | None]] = {}
    missing, quiet = [], []
    for query in widget.queries:
        if query.expression:
            continue
        known[query.id] = series(query, samples, start, period, buckets)
        if all(value is None for value in known[query.id]):
            absent = missing if (query.namespace, query.name) in NO_LOCAL_SOURCE else quiet
            absent.append(query.label)
    for query in widget.queries:
        if query.expression:
            known[query.id] = evaluate(query.expression, known, buckets)
        points = [(x, y) for x, y in zip(minutes, known[query.id], strict=True) if y is not None]
        if query.visible and points:
            axes.plot(*zip(*points, strict=True), marker="o", markersize=3, linewidth=1.4, label=query.label)
    for label, level in widget.annotations:
        axes.axhline(level, linestyle="--", linewidth=0.9, color="tab:red", alpha=0.7)
        axes.annotate(label, (1, level), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7)
    low, high = widget.y_range
    axes.set_ylim(bottom=0 if low is None else low, top=high)
    axes.set_xlim(0, buckets * period / 60)
    axes.set_title(widget.title, fontsize=10, loc="left")
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.set_xlabel("minutes since the first sample", fontsize=7)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left", frameon=False)
    notes = [f"no local source: {', '.join(missing)}"] if missing else []
    notes += [f"none in this run: {', '.join(quiet)}"] if quiet else []
    if notes:
        axes.text(0.02, 0.03, "\n".join(notes), transform=axes.transAxes, fontsize=7, color="dimgray")


# -- the command ---------------------------------------------------------------------------------------------


def save(samples: Iterable[Sample], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(dataclasses.asdict(sample)) + "\n")


def load(path: Path) -> list[Sample]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        data["dimensions"] = tuple(tuple(pair) for pair in data["dimensions"])
        found.append(Sample(**data))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="times the demo's events are sent (default 6)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between rounds (default 60)")
    parser.add_argument("--period", type=int, default=60, help="seconds per data point (default 60, as the widgets)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"the picture (default {OUTPUT.relative_to(ROOT)})")
    parser.add_argument("--save-metrics", type=Path, help="also write the samples to this file (JSON lines)")
    parser.add_argument("--from-metrics", type=Path, help="draw from samples saved earlier; start nothing")
    args = parser.parse_args(argv)

    board = widgets(dashboard_body(load_template(ROOT / "template.yaml")))
    if args.from_metrics:
        samples = load(args.from_metrics)
    else:
        recorder = Recorder()
        run_demo(args.rounds, args.interval, recorder)
        samples = recorder.samples
    if args.save_metrics:
        save(samples, args.save_metrics)
    if not samples:
        print("no metric was recorded", file=sys.stderr)
        return 1
    span = (max(s.t for s in samples) - min(s.t for s in samples)) / 60
    subtitle = (
        f"the widgets of template.yaml's Dashboard; {span:.0f} minutes, {args.period}-second periods, "
        f"{len(samples)} samples (EMF lines of the packaged functions, REPORT lines, API answers, queue samples)"
    )
    draw(board, samples, args.period, args.output, subtitle)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
