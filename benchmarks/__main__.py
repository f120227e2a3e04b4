"""``python -m benchmarks``: run the benchmarks, print the report, write it to ``benchmarks/results``.

Examples::

    python -m benchmarks                        # everything, a few minutes
    python -m benchmarks --quick                # everything, shorter and fewer runs
    python -m benchmarks --parts inprocess --codecs text,json --backends asyncio
    python -m benchmarks --candidate exp=/tmp/wsendpoints-exp   # a modified copy beside the installed one

Run it from the repository root with the ``bench`` extra installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

from . import inprocess, loopback, machine, memory, report
from .apps import json_codec_names, parse_candidates

RESULTS = Path(__file__).resolve().parent / "results"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=_csv, default=("inprocess", "loopback", "memory"))
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter windows (~1 minute)")
    parser.add_argument(
        "--candidate",
        action="append",
        metavar="[LABEL=]PATH",
        help="a copy of the wsendpoints package to measure beside the installed one (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    parser.add_argument(
        "--from-json", type=Path, metavar="PATH", help="render the report of a saved run (its .json) again"
    )
    group = parser.add_argument_group("in-process")
    group.add_argument("--codecs", type=_csv, default=("text", "bytes", "json", "msgpack"))
    group.add_argument("--backends", type=_csv, default=inprocess.BACKENDS)
    group.add_argument("--conns", type=lambda s: tuple(int(n) for n in _csv(s)), default=inprocess.CONNS)
    group.add_argument("--apps", type=_csv, help="only these apps (their floors always run)")
    group.add_argument("--repeats", type=int, help="runs per case (default 7, quick 5)")
    group = parser.add_argument_group("loopback")
    group.add_argument("--loopback-codecs", type=_csv, default=("text", "json"))
    group.add_argument(
        "--loopback-conns", type=lambda s: tuple(int(n) for n in _csv(s)), default=(1, 50, 500)
    )
    group.add_argument("--duration", type=float, help="seconds timed per run (default 1.5, quick 1)")
    group.add_argument("--loopback-repeats", type=int, default=1)
    group.add_argument("--loopback-apps", type=_csv, help="only these apps (their floors always run)")
    group.add_argument(
        "--peers", choices=("top", "all", "none"), default="top", help="peers at the top count"
    )
    group = parser.add_argument_group("memory")
    group.add_argument("--idle", type=int, default=2000, help="idle connections")
    group.add_argument("--memory-rounds", type=int, help="rounds of every app (default 5, quick 1)")
    return parser.parse_args(argv)


def _memory_result(saved: dict[str, Any]) -> memory.Result:
    if "rss_after" in saved:  # saved before the memory part took rounds: one sample
        before, after = saved.pop("rss_before"), saved.pop("rss_after")
        saved["samples"] = [] if saved["error"] else [(after - before) / saved["conns"]]
    return memory.Result(**saved)


def rerender(path: Path) -> str:
    """The report of a run saved by `main` (its ``.json``), rendered by the current code."""
    raw = json.loads(path.read_text())
    return report.render(
        raw["machine"],
        raw.get("command", "python -m benchmarks"),
        [inprocess.Result(**r) for r in raw["inprocess"]],
        [loopback.Run(**r) for r in raw["loopback"]],
        [_memory_result(r) for r in raw["memory"]],
        raw.get("notes", []),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.from_json:
        print(rerender(args.from_json))
        return
    started = perf_counter()

    def progress(line: str) -> None:
        print(f"[{perf_counter() - started:6.1f} s] {line}", file=sys.stderr, flush=True)

    candidates = parse_candidates(args.candidate)
    notes = []
    inprocess_results = loopback_runs = memory_results = None
    if "inprocess" in args.parts:
        options = inprocess.Options(
            codecs=args.codecs,
            backends=args.backends,
            conns=args.conns,
            apps=args.apps,
            repeats=args.repeats or (5 if args.quick else 7),
            messages=8_000 if args.quick else 12_000,
            messages_per_conn=12 if args.quick else 20,
            candidates=candidates,
            progress=progress,
        )
        inprocess_results = inprocess.run(options)
        import wsendpoints

        codecs = json_codec_names(wsendpoints)
        notes.append(
            f"JSON codecs of the wsendpoints apps: ujson `{codecs['ujson']}`, orjson `{codecs['orjson']}`"
        )
    if "loopback" in args.parts:
        loopback_options = loopback.Options(
            codecs=args.loopback_codecs,
            conns=args.loopback_conns,
            apps=args.loopback_apps,
            peers=args.peers,
            duration=args.duration or (1.0 if args.quick else 1.5),
            warmup=0.3 if args.quick else 0.5,
            repeats=args.loopback_repeats,
            candidates=candidates,
            progress=progress,
        )
        loopback_runs = loopback.run(loopback_options)
    if "memory" in args.parts:
        apps = ("raw", "wse-endpoint", "wse-view") if args.quick else memory.APPS
        memory_options = memory.Options(
            conns=args.idle,
            apps=apps,
            rounds=args.memory_rounds or (1 if args.quick else 5),
            candidates=candidates,
            progress=progress,
        )
        memory_results = memory.run(memory_options)
    notes += [f"`@{label}`: the package copy at `{path}`" for label, path in candidates.items()]
    notes.append(f"took {perf_counter() - started:.0f} s")

    described = machine.describe()
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = report.render(described, command.strip(), inprocess_results, loopback_runs, memory_results, notes)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {
        "command": command.strip(),
        "notes": notes,
        "machine": described,
        "inprocess": [dataclasses.asdict(r) for r in inprocess_results or []],
        "loopback": [dataclasses.asdict(r) for r in loopback_runs or []],
        "memory": [dataclasses.asdict(r) for r in memory_results or []],
    }
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    progress(f"wrote {args.output} and {args.output.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
