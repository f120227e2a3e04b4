"""The tests the README and the testing page write pass under plain pytest, as a reader would run them.

test_code_blocks.py runs the tests a page defines itself, async ones with ``anyio.run``: it cannot
see a missing ``@pytest.mark.anyio``, without which pytest does not run an async test at all. Here
pytest runs them, in a directory of their own (away from this suite's conftest.py, which marks every
async test), with the ``anyio_backend`` fixture of docs/testing.md in a conftest.py, as the README says.
"""

from __future__ import annotations

from pathlib import Path

from .markdown import DOCS, ROOT, python_blocks, run_python


def pytest_on(tmp_path: Path, page: Path) -> str:
    """Run the tests ``page`` defines under pytest, with the testing page's conftest.py; its output."""
    blocks = [block.code for block in python_blocks(page) if block.no_run is None]
    fixture = next(
        block.code for block in python_blocks(DOCS / "testing.md") if "def anyio_backend" in block.code
    )
    (tmp_path / "conftest.py").write_text(fixture)
    (tmp_path / "test_page.py").write_text("\n\n".join(block for block in blocks if block != fixture))
    result = run_python("pytest", "-q", "-p", "no:cacheprovider", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_readmes_tests_pass_under_pytest(tmp_path: Path) -> None:
    # test_echo once; test_echo_async on asyncio and on trio.
    output = pytest_on(tmp_path, ROOT / "README.md")
    assert "3 passed" in output, output


def test_the_testing_pages_tests_pass_under_pytest(tmp_path: Path) -> None:
    # test_echo once, and each of its six async tests on asyncio and on trio: a test copied
    # from the page without its @pytest.mark.anyio would not run at all. Only pytest can give a
    # test the fixtures it asks for (caplog): this is where those run.
    output = pytest_on(tmp_path, DOCS / "testing.md")
    assert "13 passed" in output, output
