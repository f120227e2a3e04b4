"""The API reference (docs/reference/) covers every public name, and each has a one-line summary.

The public names are the ``__all__`` of `wsendpoints` and of each of its modules that has one
(private ``_modules`` and ``__main__`` aside), found by walking the package: a module added later
is checked without anyone listing it here. The reference renders them with mkdocstrings from their
docstrings, so a name without one would show a bare signature: every one must have a summary line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from functools import cache
from typing import Any, cast

import griffe
import pytest

import wsendpoints
from wsendpoints.cli import _parser

from .markdown import DOCS, ROOT

REFERENCE = DOCS / "reference"
# In an `__all__` but left out of the reference on purpose, each with the reason. Nothing else may be.
UNREFERENCED = {
    "wsendpoints.cli.main": "the console script's entry point; reference/serving.md documents the command",
}

_DIRECTIVE = re.compile(r"^::: (?P<path>[\w.]+)\n(?P<options>(?:[ \t]+.*\n)*)", re.MULTILINE)


def public_modules() -> list[str]:
    """``wsendpoints`` and every module under it whose ``__all__`` is not empty."""
    found = ["wsendpoints"]
    for module in pkgutil.walk_packages(wsendpoints.__path__, "wsendpoints."):
        if any(part.startswith("_") for part in module.name.split(".")):
            continue  # private, or __main__ (importing it would run the command line)
        if getattr(importlib.import_module(module.name), "__all__", None):
            found.append(module.name)
    return found


def public_names() -> list[str]:
    return [
        f"{module}.{name}"
        for module in public_modules()
        for name in importlib.import_module(module).__all__
        if f"{module}.{name}" not in UNREFERENCED
    ]


@cache
def package() -> Any:
    return griffe.load("wsendpoints", search_paths=[str(ROOT)])


def resolve(path: str) -> Any:
    obj = package() if path == "wsendpoints" else package()[path.removeprefix("wsendpoints.")]
    return obj.final_target if obj.is_alias else obj


_MEMBERS = re.compile(r"^\s+members: \[(?P<names>[^\]]*)\]$", re.MULTILINE)


def module_directives() -> list[tuple[str, list[str]]]:
    """Each ``:::`` directive that renders a whole module: its path, and the members it renders.

    mkdocstrings renders a module's members without an underscore, whether its ``__all__``
    exports them or not, unless the directive lists them (``members: [...]``).
    """
    found = []
    for page in REFERENCE.glob("*.md"):
        for directive in _DIRECTIVE.finditer(page.read_text()):
            target = resolve(directive.group("path"))
            if not target.is_module:
                continue
            listed = _MEMBERS.search(directive.group("options"))
            if listed is not None:
                names = [name.strip() for name in listed.group("names").split(",") if name.strip()]
            else:
                names = [name for name, member in target.members.items() if not name.startswith("_")]
                names = [
                    name
                    for name in names
                    if not target.members[name].is_alias or name in (target.exports or ())
                ]
            found.append((target.path, names))
    return found


@cache
def rendered() -> frozenset[str]:
    """The paths of everything the reference pages render: each ``:::`` target, and a module's members."""
    paths: set[str] = set()
    for page in REFERENCE.glob("*.md"):
        for directive in _DIRECTIVE.finditer(page.read_text()):
            paths.add(resolve(directive.group("path")).path)
    for module, names in module_directives():
        paths.update(resolve(f"{module}.{name}").path for name in names)
    return frozenset(paths)


def test_the_package_is_walked() -> None:
    modules = public_modules()
    assert {"wsendpoints.datastructures", "wsendpoints.views", "wsendpoints.broadcast.base"} <= set(modules)
    assert not any("._" in module for module in modules)


@pytest.mark.parametrize("name", sorted(UNREFERENCED))
def test_what_is_left_out_is_still_public(name: str) -> None:
    module, _, attribute = name.rpartition(".")
    assert attribute in importlib.import_module(module).__all__, (
        f"{name} left __all__: drop it from UNREFERENCED"
    )


@pytest.mark.parametrize("name", public_names())
def test_every_public_name_is_in_the_reference(name: str) -> None:
    assert resolve(name).path in rendered(), f"no ::: directive in docs/reference/ renders {name}"


@pytest.mark.parametrize(
    ("module", "names"), [pytest.param(module, names, id=module) for module, names in module_directives()]
)
def test_a_module_page_renders_what_its_all_exports_and_nothing_else(module: str, names: list[str]) -> None:
    # A helper that other modules import (a logger, a check) has no underscore but is not
    # public: listed with the module's members, it would read as part of the API.
    if not names:
        return  # `members: []`: the module's docstring only, its names rendered one by one
    assert sorted(names) == sorted(resolve(module).exports or ())


@pytest.mark.parametrize("name", sorted(set(public_names())))
def test_every_public_name_has_a_one_line_summary(name: str) -> None:
    docstring = resolve(name).docstring
    assert docstring is not None, f"{name} has no docstring"
    summary = docstring.value.strip().split("\n", 1)[0]
    assert len(summary) > 10, f"{name}: the first line of its docstring is not a summary: {summary!r}"


def test_every_command_line_option_is_documented() -> None:
    page = (REFERENCE / "serving.md").read_text()
    commands = cast(argparse._ArgumentGroup, _parser()._subparsers)
    run = cast("dict[str, argparse.ArgumentParser]", commands._group_actions[0].choices)["run"]
    options = [flag for action in run._actions for flag in action.option_strings if flag.startswith("--")]
    assert "--port" in options
    missing = [flag for flag in options if flag != "--help" and f"`{flag}`" not in page]
    assert missing == []
