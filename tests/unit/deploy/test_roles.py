"""Every role compose and Kubernetes start is a real command of the one image: each
`pixelmill ...` command line in deploy/ parses (its options exist)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner

from pixelmill.runtime.cli import main
from tests.unit.deploy.conftest import DEPLOY
from tests.unit.deploy.test_kubernetes import OVERLAYS, pod_specs, render

#: roles whose command lands with another issue (none left)
PLACEHOLDERS: set[str] = set()


def command_lines() -> Iterator[tuple[str, list[str]]]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if service.get("command", [""])[0] == "pixelmill":
            yield f"compose:{name}", service["command"]
    for overlay in OVERLAYS:
        for doc, spec in pod_specs(render(overlay)):
            for c in spec["containers"]:
                yield f"{overlay}:{doc['metadata']['name']}", c["args"]


def test_every_role_parses_as_a_pixelmill_command() -> None:
    lines = list(command_lines())
    roles = {tuple(args[1:3]) for _, args in lines}
    assert {("gateway", "--host"), ("worker", "--queues"), ("db", "upgrade")} <= roles
    for where, args in lines:
        if args[1] in PLACEHOLDERS:
            continue
        # --help after the options: click refuses an unknown option before printing help
        result = CliRunner().invoke(main, [*args[1:], "--help"])
        assert result.exit_code == 0, (where, args, result.output)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_serve_health_where_the_probes_look(overlay: str) -> None:
    served = []
    for doc, spec in pod_specs(render(overlay)):
        c = spec["containers"][0]
        if "--health-port" in c.get("args", []):
            port = int(c["args"][c["args"].index("--health-port") + 1])
            assert {p["containerPort"] for p in c["ports"]} == {port}, doc["metadata"]["name"]
            served.append(c["args"][1])
    assert "worker" in served, served
