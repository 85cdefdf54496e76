"""The CLI package's shape: one module per command group, helpers only in _common, so
no command module imports another (the import cycle of the old cli*.py modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import pixelmill.runtime.cli as cli

PACKAGE = Path(cli.__file__).parent
COMMANDS = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}


def imported_cli_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pixelmill.runtime.cli":
                names |= {alias.name for alias in node.names}
            elif node.module.startswith("pixelmill.runtime.cli."):
                names.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pixelmill.runtime.cli."):
                    names.add(alias.name.rsplit(".", 1)[1])
    return names


def test_no_command_module_imports_another() -> None:
    for name in COMMANDS:
        imported = imported_cli_modules(PACKAGE / f"{name}.py")
        assert imported <= {"_common"}, (name, imported)
    assert imported_cli_modules(PACKAGE / "_common.py") == set()


def test_every_command_group_is_on_the_console_script() -> None:
    assert {"up", "gateway", "worker", "jobs", "keys", "db", "sign"} <= set(cli.main.commands)
    assert {"datasets", "train", "models", "slide", "presets"} <= set(cli.main.commands)
