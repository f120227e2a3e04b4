"""The docs' Python type-checks: what a page annotates is what the code gives.

A reader runs mypy over code copied from the docs; an annotation that is wrong there (a client's
``recv()`` called ``str`` when it gives ``str | bytes``) fails in their editor, not in
test_code_blocks.py, which only runs the code. The pages leave most functions unannotated, as
readers' first apps do, so mypy runs with its defaults plus ``check_untyped_defs``: it checks every
body, and asks for no annotation the page chose to leave out.
"""

from __future__ import annotations

import re
from pathlib import Path

from .markdown import PAGES, ROOT, python_blocks, run_python

CONFIG = """\
[mypy]
python_version = 3.11
check_untyped_defs = true
warn_unreachable = true
"""


def test_every_pages_python_blocks_type_check(tmp_path: Path) -> None:
    for page in PAGES:
        blocks = python_blocks(page)
        if blocks:
            module = re.sub(r"\W", "_", str(page.relative_to(ROOT).with_suffix("")))
            (tmp_path / f"page_{module}.py").write_text("\n\n".join(block.code for block in blocks))
    (tmp_path / "mypy.ini").write_text(CONFIG)
    result = run_python("mypy", "--config-file", "mypy.ini", "--cache-dir", ".cache", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every page with Python in it was checked, not a folder mypy found empty.
    assert f"no issues found in {len(list(tmp_path.glob('page_*.py')))} source files" in result.stdout
