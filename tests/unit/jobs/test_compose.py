"""deploy/compose.yaml, checked by structure (no Docker engine runs here): the full
stack is there, every pixelmill command parses with the real CLI, workers cover every
queue and stop gracefully. (How processes get their URLs and secrets, from generated
config files, is checked in tests/unit/deploy/test_compose.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pixelmill.backends.broker.base import QUEUES
from pixelmill.runtime.cli import main

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def pixelmill_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if (svc.get("command") or [""])[0] == "pixelmill"
    }


def parse_cli(args: list[str]) -> click.Context:
    """Parse ``args`` with the real ``pixelmill`` CLI (options checked, nothing run)."""
    assert args[0] == "pixelmill"
    command: click.Command = main
    ctx = command.make_context("pixelmill", list(args[1:]))
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def test_the_full_stack_is_there(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert {"gateway", "rabbitmq", "postgres", "redis", "seaweedfs", "migrate", "lb"} <= services
    assert any(name.startswith("worker") for name in services)
    for server in ("rabbitmq", "postgres", "redis", "seaweedfs"):
        assert "healthcheck" in compose["services"][server], server
    assert (DEPLOY / "Dockerfile").is_file()


def test_every_command_parses_with_the_real_cli(compose: dict[str, Any]) -> None:
    for name, svc in pixelmill_services(compose).items():
        ctx = parse_cli(svc["command"])
        assert ctx.command.name in ("gateway", "worker", "upgrade", "autoscaler"), name


def test_workers_cover_every_queue_and_shut_down_gracefully(compose: dict[str, Any]) -> None:
    covered: set[str] = set()
    for name, svc in pixelmill_services(compose).items():
        ctx = parse_cli(svc["command"])
        if ctx.command.name != "worker":
            continue
        covered |= set(ctx.params["queues"].split(","))
        grace = int(svc["stop_grace_period"].rstrip("s"))
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM", name  # Docker's default
        assert ctx.params["shutdown_timeout"] < grace, name
    assert covered == set(QUEUES)


def test_start_order_waits_for_migrations_and_healthy_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in pixelmill_services(compose).items():
        deps = svc["depends_on"]
        assert set(deps) <= set(services), name
        if name != "migrate":
            assert deps["migrate"]["condition"] == "service_completed_successfully"
            assert deps["rabbitmq"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"


def test_the_load_balancer_fronts_the_stateless_gateways(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    assert "ports" not in gateway  # only the load balancer is published
    haproxy = compose["configs"]["haproxy"]["content"]
    assert "backend gateways" in haproxy and "option redispatch" in haproxy
    assert "disable-l7-retry unless METH_GET" in haproxy  # only idempotent reads retried
    assert [p.rsplit(":", 1)[-1] for p in compose["services"]["lb"]["ports"]] == ["8000"]


def test_rabbitmq_lets_long_tasks_hold_their_message(compose: dict[str, Any]) -> None:
    # tasks are acknowledged when they end: the ack timeout must outlast a training run
    conf = compose["configs"]["rabbitmq"]["content"]
    timeout_ms = int(conf.split("consumer_timeout =")[1].split()[0])
    assert timeout_ms >= 6 * 3600 * 1000
    assert any(c["source"] == "rabbitmq" for c in compose["services"]["rabbitmq"]["configs"])
