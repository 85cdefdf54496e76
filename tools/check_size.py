"""Fail when a module or a function grows past what a newcomer reads in one sitting.

Usage: ``python tools/check_size.py src benchmarks`` (``make lint`` runs it). Limits:
400 lines a module, 80 lines a function (from ``def`` to its last line, docstring
included; decorators such as click options are declarations and not counted). Split by
concern rather than raising them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODULE_LINES = 400
FUNCTION_LINES = 80


def problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    lines = text.count("\n") + (not text.endswith("\n") and bool(text))
    if lines > MODULE_LINES:
        found.append(f"{path}: {lines} lines (at most {MODULE_LINES} a module)")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > FUNCTION_LINES:
                found.append(
                    f"{path}:{node.lineno}: {node.name}() has {length} lines "
                    f"(at most {FUNCTION_LINES} a function)"
                )
    return found


def ours(root: str) -> list[Path]:
    """The Python files under ``root``, not those in hidden folders (``benchmarks/.work``
    holds the peers' virtualenvs the benchmarks install)."""
    base = Path(root)
    return [
        f
        for f in sorted(base.rglob("*.py"))
        if not any(part.startswith(".") for part in f.relative_to(base).parts)
    ]


def main(roots: list[str]) -> int:
    found = [p for root in roots for f in ours(root) for p in problems(f)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src", "benchmarks"]))
