"""The markdown report: the targets first, then one table per part, then the machine.

Every comparison is with a floor measured in the same run: raw ASGI, or raw
ASGI with the same codec library (see `benchmarks.apps.floor`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from . import inprocess, loopback, memory
from .apps import floor

TEXT_ADDED = 0.4  # µs/message over raw ASGI
JSON_ADDED = 0.4  # µs/message over raw ASGI + ujson
MSGPACK_RATIO = 0.85  # throughput vs raw ASGI + msgpack
LOOPBACK_TEXT = 0.97  # round trips vs raw at 500 connections
LOOPBACK_JSON = 0.95  # round trips vs raw + ujson at 500 connections
MEMORY_RATIO = 1.10  # RSS per idle connection vs raw


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def shown(value: float, target: float, sign: str = "", digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, or more where those would round it onto ``target``.

    Verdicts are on the unrounded value: 1.103 against a 1.10 target reads "1.103", not a
    "1.10" that would look met, and a delta of 0.404 against 0.40 reads "+0.404".
    """
    text = f"{value:{sign}.{digits}f}"
    for more in (digits + 1, digits + 2):
        if value == target or float(text) != target:
            break
        text = f"{value:{sign}.{more}f}"
    return text


# -- in-process --------------------------------------------------------------------------


def _inprocess_cell(result: inprocess.Result, base: inprocess.Result | None) -> str:
    if result.error:
        return "cannot run"
    if base is None or base is result or base.error:
        return f"{result.median:.2f}"
    return f"{result.median:.2f} ({result.median - base.median:+.2f}, {base.median / result.median:.2f}x)"


def inprocess_tables(results: list[inprocess.Result]) -> list[str]:
    found = inprocess.by_key(results)
    columns = sorted(
        {(r.backend, r.conns) for r in results}, key=lambda c: (inprocess.BACKENDS.index(c[0]), c[1])
    )
    repeats = max((len(r.samples) for r in results), default=0)
    lines = [
        "## In-process",
        "",
        f"µs per message, median of {repeats} runs; in brackets the µs added over the floor and the "
        "throughput relative to it (1.00x = as fast as the floor). x1: one connection, `receive` never "
        "waits; x500: 500 connections taking turns on the event loop.",
    ]
    codecs = list(dict.fromkeys(r.codec for r in results))
    for codec in codecs:
        apps = list(dict.fromkeys(r.app for r in results if r.codec == codec))
        header = ["app", "floor", *(f"{backend} x{conns}" for backend, conns in columns)]
        rows = []
        for app in apps:
            base_name = floor(app, codec)
            row = [f"`{app}`", "-" if base_name == app else f"`{base_name}`"]
            for backend, conns in columns:
                result = found.get((codec, app, backend, conns))
                base = found.get((codec, base_name, backend, conns))
                row.append("" if result is None else _inprocess_cell(result, base))
            rows.append(row)
        lines += ["", f"### {codec}", "", *_table(header, rows)]
    errors = sorted({(r.app, r.backend, r.error) for r in results if r.error})
    if errors:
        lines += ["", "Could not run:", ""]
        lines += [f"- `{app}` on {backend}: {error}" for app, backend, error in errors]
    return lines


def inprocess_targets(results: list[inprocess.Result]) -> list[list[str]]:
    found = inprocess.by_key(results)
    rows = []
    # (codec, floor, what, target, its value, kind): a "delta" (µs added) must be at most the
    # value, a "ratio" (throughput, floor / app) at least the value.
    checks: list[tuple[str, str, str, str, float, str]] = [
        ("text", "raw", "added over raw", "≤ 0.40 µs", TEXT_ADDED, "delta"),
        ("json", "raw+ujson", "added over raw+ujson", "≤ 0.40 µs", JSON_ADDED, "delta"),
        ("msgpack", "raw+msgpack", "throughput vs raw+msgpack", "≥ 0.85x", MSGPACK_RATIO, "ratio"),
    ]
    backends = [b for b in inprocess.BACKENDS if any(r.backend == b for r in results)]
    for codec, base_name, what, target, limit, kind in checks:
        apps = sorted({r.app for r in results if r.codec == codec and r.app.startswith("wse-")})
        for app in apps:
            if floor(app, codec) != base_name:
                continue
            values, all_met = [], True
            for backend in backends:
                result, base = found.get((codec, app, backend, 1)), found.get((codec, base_name, backend, 1))
                if result is None or base is None or result.error or base.error:
                    continue
                a, b = result.median, base.median
                if kind == "delta":
                    values.append(f"{backend} {shown(a - b, limit, '+')}")
                    all_met = all_met and a - b <= limit
                else:
                    values.append(f"{backend} {shown(b / a, limit)}x")
                    all_met = all_met and b / a >= limit
            if values:
                rows.append(
                    [f"in-process {codec} `{app}`, {what} (x1)", target, ", ".join(values), _ok(all_met)]
                )
    return rows


# -- loopback -------------------------------------------------------------------------------


def _ratio(values: list[float], target: float = 0.0) -> str:
    """The median ratio (see `shown`), with the range over repeats when there were several."""
    text = f"{shown(statistics.median(values), target)}x"
    if len(values) > 1:
        text += f" ({min(values):.2f}-{max(values):.2f})"
    return text


def loopback_table(runs: list[loopback.Run]) -> list[str]:
    found = {(r.codec, r.app, r.conns): r for r in runs}
    rows = []
    for run in runs:
        if run.error:
            rows.append([run.codec, f"`{run.app}`", str(run.conns), run.error, "", "", "", "", "", ""])
            continue
        base = found.get((run.codec, floor(run.app, run.codec), run.conns))
        wall = cpu = "-"
        if base is not None and not base.error and base is not run:
            wall_ratios, cpu_ratios = run.ratios(base)
            wall, cpu = _ratio(wall_ratios), _ratio(cpu_ratios)
        rows.append(
            [
                run.codec,
                f"`{run.app}`",
                str(run.conns),
                f"{run.rate:,.0f}",
                wall,
                f"{statistics.median(run.p50):,.0f}",
                f"{statistics.median(run.p99):,.0f}",
                f"{statistics.median(run.cpu):.1f}",
                cpu,
                f"{max(run.others):.0%}",
            ]
        )
    repeats = max((len(r.rates) for r in runs), default=0)
    header = ["codec", "app", "conns", "round trips/s", "x floor", "p50 µs", "p99 µs", "server CPU µs/rt"]
    header += ["x floor (CPU)", "others"]
    return [
        "## Loopback",
        "",
        "uvicorn (httptools, websockets-sansio, uvloop) pinned to core 0, a picows client pinned to "
        "core 1; each connection sends its next message when the echo of the last one arrives. "
        f"Medians of {repeats} repeat(s); ratios pair each repeat with the floor's same repeat, the range "
        "over repeats in brackets. `x floor (CPU)` compares round trips per second of server CPU, which "
        "time taken by other processes does not count in; `others` is the largest share of either pinned "
        "core that other processes took during a run (high values make `round trips/s` unreliable; a run "
        "disturbed by more than 15% is run once more and the less disturbed one kept).",
        "",
        *_table(header, rows),
    ]


def loopback_targets(
    runs: list[loopback.Run], inprocess_results: list[inprocess.Result] | None = None
) -> list[list[str]]:
    """The loopback targets, measured; and predicted, when the in-process part ran too.

    The prediction adds the framework's in-process cost per message (uvloop, 500
    connections, over the floor) to the floor's server CPU per round trip: it
    holds however busy the machine is, which a measured ratio does not.
    """
    found = {(r.codec, r.app, r.conns): r for r in runs}
    measured = inprocess.by_key(inprocess_results or [])
    top = max((r.conns for r in runs), default=0)
    rows = []
    for codec, base_name, target in (("text", "raw", LOOPBACK_TEXT), ("json", "raw+ujson", LOOPBACK_JSON)):
        base = found.get((codec, base_name, top))
        for run in runs:
            if run.codec != codec or run.conns != top or not run.app.startswith("wse-") or run.error:
                continue
            if base is None or base.error or floor(run.app, codec) != base_name:
                continue
            wall, cpu = run.ratios(base)
            disturbed = max(run.others + base.others) > loopback.Options.max_others
            verdict = "unknown: disturbed" if disturbed else _ok(statistics.median(cpu) >= target)
            text = f"{_ratio(wall)} round trips/s, {_ratio(cpu, target)} per server CPU"
            app_cost = measured.get((codec, run.app, "uvloop", 500))
            floor_cost = measured.get((codec, base_name, "uvloop", 500))
            if app_cost and floor_cost and not app_cost.error and not floor_cost.error:
                floor_cpu = statistics.median(base.cpu)
                predicted = floor_cpu / (floor_cpu + app_cost.median - floor_cost.median)
                text += f"; predicted {shown(predicted, target)}x"
                verdict += f" (predicted: {_ok(predicted >= target)})"
            if len(run.rates) == 1 and not disturbed:
                verdict += ", 1 run"
            rows.append(
                [
                    f"loopback {codec} `{run.app}` vs `{base_name}`, {top} conns",
                    f"≥ {target:.2f}x",
                    text,
                    verdict,
                ]
            )
    return rows


# -- memory ------------------------------------------------------------------------------------


def _memory_ratios(result: memory.Result, base: memory.Result | None) -> list[float]:
    """``result``'s RSS per connection over raw's, round by round."""
    if base is None or base.error or result.error:
        return []
    return [sample / floor for sample, floor in zip(result.samples, base.samples, strict=False) if floor > 0]


def _spread(values: list[float], digits: int) -> str:
    """`` (low-high)`` when there is more than one value."""
    return f" ({min(values):.{digits}f}-{max(values):.{digits}f})" if len(values) > 1 else ""


def memory_table(results: list[memory.Result]) -> list[str]:
    base = next((r for r in results if r.app == "raw" and not r.error), None)
    rows = []
    for result in results:
        if result.error:
            rows.append([f"`{result.app}`", result.error, ""])
            continue
        kib = [sample / 1024 for sample in result.samples]
        ratios = _memory_ratios(result, base)
        ratio = f"{statistics.median(ratios):.2f}x{_spread(ratios, 2)}" if ratios else "-"
        rows.append([f"`{result.app}`", f"{statistics.median(kib):.1f}{_spread(kib, 1)}", ratio])
    conns = results[0].conns if results else 0
    rounds = max((len(r.samples) for r in results), default=0)
    return [
        "## Memory",
        "",
        f"Growth of the server's RSS with {conns:,} idle connections (each has echoed one message), "
        f"in KiB per connection: uvicorn's own state included. Median of {rounds} round(s), the apps "
        "taking turns; the ratio is the median of each round's ratio to raw; in brackets the range.",
        "",
        *_table(["app", "KiB per connection", "x raw"], rows),
    ]


def memory_targets(results: list[memory.Result]) -> list[list[str]]:
    base = next((r for r in results if r.app == "raw" and not r.error), None)
    rows = []
    for result in results:
        ratios = _memory_ratios(result, base)
        if not ratios or not result.app.startswith("wse-"):
            continue
        ratio = statistics.median(ratios)
        rows.append(
            [
                f"idle memory `{result.app}` vs raw",
                "≤ 1.10x",
                f"{shown(ratio, MEMORY_RATIO)}x{_spread(ratios, 3)}",
                _ok(ratio <= MEMORY_RATIO),
            ]
        )
    return rows


# -- the whole report ----------------------------------------------------------------------------


def machine_lines(machine: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    return [
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; {machine['os']}",
        f"- {machine['python']}; wsendpoints at {machine['revision']}",
        f"- {packages}",
    ]


def render(
    machine: dict[str, Any],
    command: str,
    inprocess_results: list[inprocess.Result] | None = None,
    loopback_runs: list[loopback.Run] | None = None,
    memory_results: list[memory.Result] | None = None,
    notes: Iterable[str] = (),
) -> str:
    targets: list[list[str]] = []
    sections: list[str] = []
    if inprocess_results:
        targets += inprocess_targets(inprocess_results)
        sections += ["", *inprocess_tables(inprocess_results)]
    if loopback_runs:
        targets += loopback_targets(loopback_runs, inprocess_results)
        sections += ["", *loopback_table(loopback_runs)]
    if memory_results:
        targets += memory_targets(memory_results)
        sections += ["", *memory_table(memory_results)]
    lines = ["# wsendpoints benchmarks", "", f"`{command}`", ""]
    lines += [f"- {note}" for note in notes]
    if targets:
        lines += [
            "",
            "## Targets",
            "",
            "Judged on the unrounded values: a value that two decimals would round onto its target "
            "is shown with three (1.103x against ≤ 1.10x is not met).",
            "",
            *_table(["measure", "target", "measured", "met"], targets),
        ]
    lines += sections
    lines += ["", *machine_lines(machine), ""]
    return "\n".join(lines)
