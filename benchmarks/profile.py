"""Profile one app's in-process echo: where does the time per message go?

``python -m benchmarks.profile --app wse-endpoint --codec json`` runs the
in-process harness (one connection, ``receive`` never suspends) under cProfile
and prints the functions by own time, with their calls per message; with
``--tool pyinstrument`` it prints pyinstrument's call tree instead. For a
sampling view of a live server, run ``py-spy record -- python -m
benchmarks.server --app wse-endpoint --codec json`` while a client loads it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from .apps import build, load_candidate
from .inprocess import drive, run_on


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="wse-endpoint")
    parser.add_argument("--codec", default="text")
    parser.add_argument("--backend", default="asyncio", choices=("asyncio", "uvloop", "trio"))
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--tool", default="cprofile", choices=("cprofile", "pyinstrument"))
    parser.add_argument("--candidate", help="profile this copy of the wsendpoints package")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    from .payloads import PAYLOADS

    app = build(args.app, args.codec, load_candidate(args.candidate) if args.candidate else None)
    key, payload = PAYLOADS[args.codec]
    message = {"type": "websocket.receive", key: payload}

    def echo() -> float:
        return float(run_on(args.backend, drive, app, message, 1, args.messages, None))

    if args.tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        with profiler:
            echo()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    profile = cProfile.Profile()
    profile.enable()
    echo()
    profile.disable()
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, name), (_cc, calls, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((own, calls, f"{filename.rsplit('/', 2)[-1]}:{line}({name})"))
    rows.sort(reverse=True)
    total = sum(own for own, _, _ in rows)
    per_message = total / args.messages * 1e6
    print(f"{args.app} {args.codec} on {args.backend}: {per_message:.2f} µs/message under cProfile")
    print(f"{'own µs/msg':>10} {'calls/msg':>9}  function")
    for own, calls, where in rows[: args.top]:
        print(f"{own / args.messages * 1e6:10.3f} {calls / args.messages:9.2f}  {where}")


if __name__ == "__main__":
    main()
