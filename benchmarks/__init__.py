"""Benchmarks for wsendpoints, measured side by side with its peers in the same run.

Run everything with ``python -m benchmarks`` (see ``benchmarks/__main__.py`` and
``docs/benchmarks.md``). The parts:

- `benchmarks.inprocess`: each ASGI app driven by a synthetic ``receive``/``send``.
- `benchmarks.loopback`: uvicorn on one core, a picows client on the other.
- `benchmarks.memory`: the server's RSS per idle connection.

Absolute numbers drift on shared machines; the reports lead with ratios to the
raw ASGI floor measured in the same run.
"""
