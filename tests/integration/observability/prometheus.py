"""A real Prometheus for tests: started on a free loopback port with a temporary config
(1 s scrapes and rule evaluation), queried over its HTTP API, stopped by PID; and the
PromQL expressions of the repository's dashboards and alert rules.

Prometheus and promtool are Debian's ``prometheus`` package (``make browser`` installs it).
Without them a test skips locally with the reason and fails in CI."""

from __future__ import annotations

import importlib.util
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import IN_CI
from tests.jobs_helpers import free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml"))
OPERATIONS = REPO / "docs" / "operations.md"


def binary(name: str) -> str:
    """The path of ``name`` (``prometheus``, ``promtool``): skip locally, fail in CI."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install -y prometheus, or `make browser`)"
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    return path


def dashboards_module() -> Any:
    """``tools/grafana_dashboards.py``, the dashboards' generator."""
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", REPO / "tools" / "grafana_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of ``deploy/prometheus/rules``."""
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


# a comparison operator outside label matchers and strings (those are cut out first)
_COMPARISON = re.compile(r"(?<![=!<>])(==|!=|>=|<=|>|<)(?!=)(?!\s*bool\b)")
_PROTECTED = re.compile(r'\{[^}]*\}|"(?:[^"\\]|\\.)*"|`[^`]*`')


def with_bool(expr: str) -> str:
    """``expr`` with ``bool`` after each comparison, so it returns its series (0 or 1)
    whether or not the condition holds: how an alert that is quiet now is still proven to
    reach data. Label matchers and strings are left alone."""
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\0{len(kept) - 1}\0"

    hidden = _PROTECTED.sub(hide, expr)
    boolean = _COMPARISON.sub(lambda m: f"{m.group(1)} bool", hidden)
    return re.sub(r"\0(\d+)\0", lambda m: kept[int(m.group(1))], boolean)


@dataclass
class Prometheus:
    base: str
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now; fails with Prometheus' error."""
        r = httpx.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/api/v1/rules", timeout=10)
        return [rule for group in r.json()["data"]["groups"] for rule in group["rules"]]


@contextmanager
def running_prometheus(workdir: Path, targets: dict[str, str]) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (job name -> ``host:port``) every second and
    evaluating the repository's rules every second, until the block ends."""
    exe = binary("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in RULES],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = free_port(), workdir / "prometheus.log"
    process = subprocess.Popen(
        [
            exe,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        prometheus = Prometheus(f"http://127.0.0.1:{port}", log)

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{prometheus.base}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=30, interval=0.1)
        yield prometheus
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
