"""A small Prometheus registry and its text exposition (format 0.0.4), written here.

Counters, gauges and histograms with labels; one dict lookup and an add per observation.
``prometheus-client`` was not added: the gateway needs a dozen series and the exposition
format is a few lines, where the library brings a global registry, a multiprocess mode
built on files, and threads.  Each gateway process exposes its own series; Prometheus
scrapes every process (``arun serve --workers N`` gives each its own port offset).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

__all__ = ["Registry", "Counter", "Gauge", "Histogram"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in sorted(self.values.items())]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), read: Callable[[], float] | None = None) -> None:
        super().__init__(name, help, labels)
        self.values: dict[tuple[str, ...], float] = {}
        self.read = read

    def add(self, amount: float, labels: tuple[str, ...] = ()) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def lines(self) -> list[str]:
        if self.read is not None:
            return [f"{self.name} {_num(self.read())}"]
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in sorted(self.values.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self.series: dict[tuple[str, ...], list[float]] = {}  # counts per bucket (+Inf last), then sum

    def observe(self, value: float, labels: tuple[str, ...] = ()) -> None:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        s[bisect_left(self.buckets, value)] += 1
        s[-1] += value

    def lines(self) -> list[str]:
        out = []
        for k, s in sorted(self.series.items()):
            running = 0.0
            for i, upper in enumerate((*self.buckets, math.inf)):
                running += s[i]
                le = 'le="' + _num(upper) + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, k, le)} {_num(running)}")
            out.append(f"{self.name}_sum{_labels(self.label_names, k)} {s[-1]!r}")
            out.append(f"{self.name}_count{_labels(self.label_names, k)} {_num(running)}")
        return out


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        m = Counter(name, help, labels)
        self.metrics.append(m)
        return m

    def gauge(self, name: str, help: str, labels: Sequence[str] = (), read: Callable[[], float] | None = None) -> Gauge:
        m = Gauge(name, help, labels, read)
        self.metrics.append(m)
        return m

    def histogram(self, name: str, help: str, labels: Sequence[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        m = Histogram(name, help, labels, buckets)
        self.metrics.append(m)
        return m

    def exposition(self) -> bytes:
        lines: list[str] = []
        for m in self.metrics:
            lines += m.header()
            lines += m.lines()
        return ("\n".join(lines) + "\n").encode()
