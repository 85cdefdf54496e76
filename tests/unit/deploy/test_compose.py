"""deploy/compose.yaml: valid against the compose specification's JSON schema, the whole
stack is there, nothing but the load balancer is published, and every secret comes from
a compose secret, never from the file itself."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pixelmill.queues import QUEUES
from pixelmill.settings import Settings
from tests.unit.deploy.conftest import DEPLOY, SCHEMAS, run, tool

COMPOSE = DEPLOY / "compose.yaml"
OPS = DEPLOY / "compose.ops.yaml"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def command_of(service: dict[str, Any]) -> list[str]:
    return [str(part) for part in service.get("command", [])]


@pytest.mark.parametrize("path", [COMPOSE, OPS], ids=lambda p: p.name)
def test_valid_against_the_compose_specification(path: Path) -> None:
    schema = SCHEMAS / "compose-spec.json"
    result = run(tool("check-jsonschema"), "--schemafile", schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_whole_stack_is_there() -> None:
    found = services()
    for name in (
        "lb",
        "gateway",
        "inference",
        "trainer",
        "autoscaler",
        "migrate",
        "rabbitmq",
        "postgres",
        "redis",
        "seaweedfs",
        "prometheus",
        "grafana",
        "otel-collector",
    ):
        assert name in found, name
    assert found["gateway"]["deploy"]["replicas"] >= 2
    consumed = set()
    for service in found.values():
        cmd = command_of(service)
        if cmd[:2] == ["pixelmill", "worker"]:
            consumed.update(cmd[cmd.index("--queues") + 1].split(","))
    assert consumed == set(QUEUES), "every queue has its workers"
    assert "train" in command_of(found["trainer"])
    assert found["trainer"]["build"]["target"] == "trainer"


def test_only_the_load_balancer_is_published() -> None:
    published = {name for name, s in services().items() if s.get("ports")}
    assert published == {"lb"}
    # and on loopback unless the operator says otherwise
    assert services()["lb"]["ports"] == [
        "${PIXELMILL_BIND:-127.0.0.1}:${PIXELMILL_PORT:-8000}:8000"
    ]
    ops = yaml.safe_load(OPS.read_text())["services"]
    for service in ops.values():
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"])


def test_the_backends_have_no_route_out_and_the_lb_no_route_in() -> None:
    spec = compose()
    assert spec["networks"]["backend"]["internal"] is True
    assert services()["lb"]["networks"] == ["frontend"]
    for name in ("rabbitmq", "postgres", "redis", "seaweedfs", "worker-transform"):
        assert services()[name]["networks"] == ["backend"], name


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    spec = compose()
    for name, service in spec["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search(r"PASS|SECRET|TOKEN|SIGNING|_KEY$", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", str(value)), (
                name,
                key,
                "credentials in a URL",
            )
    assert "pixelmill-secret" not in text and "guest" not in text
    for secret in spec["secrets"].values():
        assert secret["file"].startswith("./secrets/"), secret


def test_generated_secrets_configure_pixelmill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the secrets generate.sh makes (twice: the second run keeps them)
    folder = tmp_path / "secrets"
    shutil.copytree(DEPLOY / "secrets", folder)
    subprocess.run(["sh", str(folder / "generate.sh")], check=True, capture_output=True)
    first = (folder / "pixelmill.yaml").read_text()
    subprocess.run(["sh", str(folder / "generate.sh")], check=True, capture_output=True)
    assert (folder / "pixelmill.yaml").read_text() == first
    # then every file compose names exists, and pixelmill's settings file carries the
    # signing key and the very passwords PostgreSQL, RabbitMQ, Redis and SeaweedFS are given
    for secret in compose()["secrets"].values():
        assert (folder / Path(secret["file"]).name).stat().st_size > 0, secret
    monkeypatch.setenv("PIXELMILL_CONFIG", str(folder / "pixelmill.yaml"))
    settings = Settings()
    assert settings.security.signing_key and len(settings.security.signing_key) >= 32
    pg = (folder / "postgres-password").read_text()
    assert settings.database.url == f"postgresql+psycopg://pixelmill:{pg}@postgres:5432/pixelmill"
    mq = (folder / "rabbitmq-credentials.conf").read_text()
    assert f"default_pass = {settings.broker.url.split(':')[2].split('@')[0]}" in mq
    rd = (folder / "redis.conf").read_text()
    assert settings.cache.url == f"redis://:{rd.split()[1]}@redis:6379/0"
    s3 = (folder / "seaweedfs-s3.json").read_text()
    assert f'"secretKey": "{settings.storage.s3_secret_key}"' in s3
    assert "Admin" not in s3, "pixelmill's S3 identity cannot make or drop buckets"


def test_rabbitmq_management_and_worker_metrics_stay_inside() -> None:
    found = services()
    assert "ports" not in found["rabbitmq"]
    conf = compose()["configs"]["rabbitmq"]["content"]
    assert "default_queue_type = quorum" in conf
    workers = {n: s for n, s in found.items() if command_of(s)[:2] == ["pixelmill", "worker"]}
    assert workers
    for name, service in workers.items():
        assert "ports" not in service, name
        assert service.get("stop_grace_period"), name


def test_prometheus_and_grafana_read_the_provisioned_folders() -> None:
    found = services()
    sources = {v["source"] for v in found["prometheus"]["volumes"] if isinstance(v, dict)}
    assert "./prometheus/rules" in sources
    assert "rule_files" in compose()["configs"]["prometheus"]["content"]
    sources = {v["source"] for v in found["grafana"]["volumes"] if isinstance(v, dict)}
    assert "./grafana/provisioning" in sources


def test_the_load_balancer_config_is_valid_haproxy(tmp_path: Path) -> None:
    # the real HAProxy parses it (resolvers, server templates, retries, health checks)
    config = tmp_path / "haproxy.cfg"
    config.write_text(compose()["configs"]["haproxy"]["content"])
    result = run(tool("haproxy", "-v"), "-c", "-f", config)
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    assert "option httpchk GET /readyz" in text
    # only safe methods are sent again after a gateway died mid-request
    assert "http-request disable-l7-retry unless METH_GET" in text


def test_the_prometheus_config_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(compose()["configs"]["prometheus"]["content"])
    result = run(tool("promtool", "--version"), "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = yaml.safe_load(config.read_text())["scrape_configs"]
    scraped = {n for j in jobs for sd in j.get("dns_sd_configs", []) for n in sd["names"]}
    workers = {n for n, s in services().items() if command_of(s)[:2] == ["pixelmill", "worker"]}
    assert workers | {"gateway", "inference"} <= scraped, "every gateway and worker is scraped"
