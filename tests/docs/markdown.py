"""Reading the docs: pages, their fenced code blocks, and running a page's Python blocks."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    code: str
    no_run: str | None
    """Why it is not run, if a ``<!-- no-run: reason -->`` comment comes right before it."""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for fence in _FENCE.finditer(text):
        before = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _NO_RUN.search(before)
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, fence.start()) + 2,  # the first line of code
                lang=fence.group("lang"),
                code=fence.group("code"),
                no_run=marker.group("reason") if marker else None,
            )
        )
    return found


def python_blocks(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.lang == "python"]


@functools.cache
def run_page(page: Path) -> dict[str, Any]:
    """Run a page's Python blocks in order, in one namespace (as a reader would paste them), once.

    Each block is compiled with its page and line as the file name, so that a failure
    points at the docs. Blocks marked no-run are left out.
    """
    # A module of its own, as the reader's file would be: libraries that look a class's module
    # up (pydantic resolving a model's fields, pickle) find it.
    module = types.ModuleType(f"docs.{page.stem}")
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    for block in python_blocks(page):
        if block.no_run is not None:
            continue
        # Padding with newlines keeps the line numbers of tracebacks those of the page.
        code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
        exec(code, namespace)
    return namespace


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` in ``cwd``, as a reader runs a tool on code copied from the docs; bounded."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
