"""The core (``imaging``, ``ml``) does no I/O of its own: it imports no database, HTTP,
queue or cloud library and nothing of ``services``, ``backends`` or ``runtime``, so it
runs the same inside a worker, the gateway, a notebook or a test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pixelmill

SRC = Path(pixelmill.__file__).parent
CORE = ("imaging", "ml")
FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "boto3",
    "botocore",
    "pika",
    "dramatiq",
    "redis",
    "psycopg",
    "psycopg2",
    "pixelmill.services",
    "pixelmill.backends",
    "pixelmill.runtime",
)


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` in the file names, at any depth
    (lazy imports inside functions count too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", CORE)
def test_core_imports_no_io_library_and_no_outer_layer(package: str) -> None:
    offending = [
        f"{path.relative_to(SRC)}: {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in imported_modules(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]
    assert offending == []
