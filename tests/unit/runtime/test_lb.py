"""The load balancer config of `pixelmill cluster up`: the compose file's HAProxy config,
pointed at gateway processes on loopback, and still valid for the real HAProxy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pixelmill.runtime.lb import compose_haproxy_config, find_deploy_dir, local_config
from tests.helpers import IN_CI

REPO = Path(__file__).resolve().parents[3]


def _config() -> tuple[str, str]:
    compose = compose_haproxy_config(REPO / "deploy")
    return compose, local_config(compose, port=8100, gateway_ports=[8101, 8102], stats_port=8109)


def test_the_deploy_folder_is_found_from_the_checkout() -> None:
    assert find_deploy_dir(REPO / "docs") == REPO / "deploy"


def test_the_compose_rules_are_kept_and_docker_is_gone() -> None:
    compose, local = _config()
    # the same retries, redispatch, GET-only L7 retries and health check on /readyz
    for rule in (
        "retry-on conn-failure empty-response response-timeout 502 503",
        "option redispatch 1",
        "http-request disable-l7-retry unless METH_GET",
        "option httpchk GET /readyz",
        "balance leastconn",
    ):
        assert rule in compose and rule in local
    # and the gateways are the local processes, on loopback only
    assert "server gw1 127.0.0.1:8101" in local and "server gw2 127.0.0.1:8102" in local
    assert "bind 127.0.0.1:8100" in local and "bind 127.0.0.1:8109" in local
    assert "resolvers" not in local and "server-template" not in local


def test_the_local_config_is_valid_haproxy(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        reason = "haproxy is not installed (make deploy-tools)"
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    config = tmp_path / "haproxy.cfg"
    config.write_text(_config()[1])
    result = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
