"""The README's tests pass under plain pytest, as a reader who copies them would run them.

test_code_blocks.py runs the tests a page defines itself, async ones with ``anyio.run``: it cannot
see a missing ``@pytest.mark.anyio``, without which pytest does not run an async test at all. Here
pytest runs them, in a directory of their own (away from this suite's conftest.py, which marks every
async test), with the ``anyio_backend`` fixture of docs/testing.md in a conftest.py, as the README says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .markdown import DOCS, ROOT, python_blocks


def test_the_readmes_tests_pass_under_pytest(tmp_path: Path) -> None:
    blocks = [block.code for block in python_blocks(ROOT / "README.md") if block.no_run is None]
    (tmp_path / "test_readme.py").write_text("\n\n".join(blocks))
    fixture = next(
        block.code for block in python_blocks(DOCS / "testing.md") if "def anyio_backend" in block.code
    )
    (tmp_path / "conftest.py").write_text(fixture)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # test_echo once; test_echo_async on asyncio and on trio.
    assert "3 passed" in result.stdout, result.stdout
