"""Shared helpers of the deployment tests: the repository's deploy/ folder and the linters
the test extra installs (hadolint, check-jsonschema, kubernetes-validate, actionlint).

A linter that cannot run skips the test locally with the reason and fails it in CI, like
the server fixtures (tests/servers.py): CI can never go green by skipping a check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import IN_CI

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"


def tool(name: str, *version: str) -> str:
    """The path of the command ``name`` (beside this interpreter first), once it answers
    ``version`` (default ``--version``)."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    reason = f"{name} is not installed (pip install -e '.[test]')"
    if path is not None:
        try:
            subprocess.run(
                [path, *(version or ["--version"])], capture_output=True, timeout=60, check=True
            )
            return path
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"{name} does not run here ({exc})"
    if IN_CI:
        pytest.fail(f"{reason}; CI requires it", pytrace=False)
    pytest.skip(reason)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root; its output is kept for the assertion."""
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
