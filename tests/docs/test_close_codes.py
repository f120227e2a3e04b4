"""The close-code page (docs/close-codes.md) against the code: every code the framework uses is there.

Three sources must agree: the `CloseCode` enum, the table in the docstring of `wsendpoints.exceptions`
(what the framework sends when), and the page's table (that, plus what each client sees). On top, every
close code the package's source mentions - `CloseCode.X` or a bare number given to a close - must have
its row, so a new failure mode cannot ship without its documentation.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import cast

import pytest

import wsendpoints
from wsendpoints import CloseCode, exceptions

from .markdown import DOCS

PAGE = DOCS / "close-codes.md"
PACKAGE = Path(wsendpoints.__file__).parent
_ROW = re.compile(r"^\| (?P<code>\d{4}) \| `(?P<name>[A-Z_]+)` \| (?P<sent>[^|]*) \|", re.MULTILINE)
_NEVER_SENT = "—"
_CLOSING_CALLS = {"close", "_refuse", "_reject_message", "WebSocketDisconnect"}


def page_rows() -> dict[int, tuple[str, str]]:
    """code -> (CloseCode name, the "sent by wsendpoints when" cell)."""
    rows = {}
    for row in _ROW.finditer(PAGE.read_text()):
        code = int(row.group("code"))
        assert code not in rows, f"{code} has two rows"
        rows[code] = (row.group("name"), row.group("sent").strip())
    return rows


def docstring_codes() -> set[int]:
    """The codes of the "code / sent when" table in the docstring of `wsendpoints.exceptions`."""
    doc = exceptions.__doc__ or ""
    return {int(line.split()[0]) for line in doc.splitlines() if re.match(r"^\d{4}\s{2,}\S", line)}


def codes_in_source() -> dict[int, list[str]]:
    """Every close code the package's source uses: ``CloseCode.NAME``, or a number handed to a close."""
    used: dict[int, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            code = None
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "CloseCode"
            ):
                code = int(CloseCode[node.attr])
            elif isinstance(node, ast.Call):
                called = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                numbers = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                numbers += [kw.value.value for kw in node.keywords if isinstance(kw.value, ast.Constant)]
                if called in _CLOSING_CALLS:
                    code = next((n for n in numbers if isinstance(n, int) and 1000 <= n <= 4999), None)
            if code is not None:
                line = cast(ast.expr, node).lineno  # only attributes and calls set a code
                used.setdefault(code, []).append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return used


def test_the_page_has_a_table_to_check() -> None:
    assert len(page_rows()) >= 8


@pytest.mark.parametrize("member", list(CloseCode), ids=lambda member: member.name)
def test_every_close_code_member_has_its_row(member: CloseCode) -> None:
    rows = page_rows()
    assert int(member) in rows, f"{int(member)} ({member.name}) is missing from {PAGE.name}"
    assert rows[int(member)][0] == member.name


def test_the_page_lists_no_code_the_enum_does_not_name() -> None:
    assert set(page_rows()) <= {int(member) for member in CloseCode}


def test_every_code_the_source_uses_has_its_row() -> None:
    used = codes_in_source()
    assert used, "found no close code in the source: is the scan broken?"
    missing = {code: where for code, where in used.items() if code not in page_rows()}
    assert missing == {}, f"close codes used in the package but missing from {PAGE.name}: {missing}"


def test_the_codes_the_page_says_are_sent_are_those_of_the_exceptions_docstring() -> None:
    sent = {code for code, (_, when) in page_rows().items() if not when.startswith(_NEVER_SENT)}
    documented = docstring_codes()
    assert documented, "found no table in the docstring of wsendpoints.exceptions"
    assert sent == documented


def test_every_code_the_docstring_lists_is_a_member() -> None:
    assert docstring_codes() <= {int(member) for member in CloseCode}
