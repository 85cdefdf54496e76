"""Every PromQL expression of the Grafana dashboards and the alert rules, evaluated by a
real Prometheus scraping a real gateway and job worker (``pixelmill up --workers 1`` on
RabbitMQ and PostgreSQL) and the live autoscaler beside them (``pixelmill autoscaler
--dry-run``: it decides and reports, starts nothing) after the test drove traffic through them: renders (misses and
hits, two formats), a missing image, a job that succeeds, a job that fails and is
dead-lettered, a training run and predictions.

* A dashboard query must parse and return at least one series: a panel that would show
  "No data" fails the test, named.
* An alert is quiet when all is well, so its expression is evaluated with ``bool`` after
  each comparison (:func:`with_bool`): it then returns its series with 0 or 1, proving
  that every selector and ratio it is built from reaches data. The expression as written
  must parse too, and every rule (recording rules included) must evaluate without error
  in Prometheus' own rule manager.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import make_image, require_server
from tests.integration.jobs.up_process import Up, pixelmill_up
from tests.integration.observability.prometheus import (
    REPO,
    Prometheus,
    binary,
    dashboards_module,
    rules,
    running_prometheus,
    with_bool,
)
from tests.jobs_helpers import admin_auth, free_port, wait_answering, wait_for
from tests.ml_helpers import TINY_SPEC, nuclei_zip
from tests.servers import AMQP_URL, purge_namespace

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: what Grafana puts for ``$__rate_interval`` with 1 s scrapes, rounded up
RATE_INTERVAL = "1m"
TERMINAL = ("succeeded", "failed", "cancelled")

ENV = {
    "PIXELMILL_JOBS__PLUGINS": '["tests.jobs_kinds"]',
    # a failing task is dead-lettered after one quick retry
    "PIXELMILL_BROKER__MAX_RETRIES": "1",
    "PIXELMILL_BROKER__MIN_BACKOFF_S": "0.05",
    "PIXELMILL_BROKER__MAX_BACKOFF_S": "0.2",
    # the anomaly detector samples every second (its score is a panel)
    "PIXELMILL_HEALING__ANOMALY__INTERVAL_S": "1",
    "PIXELMILL_ML__TRAIN_THREADS": "1",
    "PIXELMILL_SERVER__WORKERS": "1",  # one gateway process (its job worker still aggregates)
}


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory, postgres_module_url: str
) -> Iterator[Prometheus]:
    """Prometheus scraping ``pixelmill up --workers 1`` after the traffic, once every
    counter the traffic moved has been scraped."""
    binary("prometheus")
    require_server("RabbitMQ", "127.0.0.1", 5672)
    tmp = tmp_path_factory.mktemp("promql")
    env = {**ENV, "PIXELMILL_BROKER__NAMESPACE": f"pmtest-{uuid.uuid4().hex[:8]}"}
    try:
        yield from _scraped(tmp, postgres_module_url, env)
    finally:
        purge_namespace(AMQP_URL, env["PIXELMILL_BROKER__NAMESPACE"])


def _scraped(tmp: Path, postgres_module_url: str, env: dict[str, str]) -> Iterator[Prometheus]:
    with (
        pixelmill_up(tmp, postgres_module_url, AMQP_URL, workers=1, env=env) as up,
        dry_run_autoscaler(tmp, postgres_module_url, env) as autoscaler,
    ):
        targets = {"pixelmill": up.base.removeprefix("http://"), "autoscaler": autoscaler}
        with running_prometheus(tmp, targets) as prometheus:
            drive(up)
            wait_for(lambda: scraped_all(prometheus), timeout=30, interval=0.5)
            yield prometheus


@contextlib.contextmanager
def dry_run_autoscaler(tmp: Path, database_url: str, env: dict[str, str]) -> Iterator[str]:
    """``pixelmill autoscaler --dry-run`` on the same broker and DB (its dashboard's
    panels need its metrics); yields its /metrics ``host:port``."""
    port, log = free_port(), tmp / "autoscaler.log"
    path = [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    command = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()"]
    command += ["autoscaler", "--dry-run", "--health-port", str(port)]
    command += ["--broker-url", AMQP_URL, "--database-url", database_url]
    command += ["--data-dir", str(tmp / "autoscaler")]
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(path)}
    process = subprocess.Popen(
        command, env=environ, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_answering(process, f"http://127.0.0.1:{port}/metrics", log)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def drive(up: Up) -> None:
    # a new connection per request: a kept-alive one can be closed by the server's idle
    # timeout (5 s) just as a request goes out on it, when two loaded cores stall us
    fresh = httpx.Limits(max_keepalive_connections=0)
    auth = admin_auth(up.log)
    with httpx.Client(base_url=up.base, headers=auth, timeout=60, limits=fresh) as http:
        image = http.post("/v1/images", content=make_image(64, 48)).json()["id"]
        for fmt in ("jpeg", "webp"):
            for _ in range(2):  # a miss, then a hit
                r = http.get(f"/v1/images/{image}/render", params={"w": 32, "format": fmt})
                assert r.status_code == 200, r.text
        assert http.get("/v1/images/" + "0" * 32).status_code == 404
        dataset = http.post("/v1/datasets", content=nuclei_zip(6)).json()["id"]
        jobs = [
            http.post("/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "flip"}]}),
            http.post("/v1/jobs", json={"kind": "test.fail"}),
            http.post(
                "/v1/training-runs", json={"model": "tiny", "dataset": dataset, "spec": TINY_SPEC}
            ),
        ]
        assert [r.status_code for r in jobs] == [202, 202, 202], [r.text for r in jobs]
        for _ in range(3):
            r = http.post("/v1/models/nuclei@production/predict", json={"image_id": image})
            assert r.status_code == 200, r.text
        ids = [r.json().get("id") or r.json()["job_id"] for r in jobs]

        def ended() -> list[str]:
            states = [http.get(f"/v1/jobs/{i}").json()["state"] for i in ids]
            return states if all(s in TERMINAL for s in states) else []

        assert wait_for(ended, timeout=60, interval=0.2) == ["succeeded", "failed", "succeeded"]


def scraped_all(prometheus: Prometheus) -> bool:
    """The last traffic is in Prometheus, with a few samples after it for rate()."""
    finished = prometheus.query("sum(pixelmill_jobs_finished_total)")
    dead = prometheus.query("sum(pixelmill_job_dead_letters_total)")
    scores = prometheus.query("pixelmill_anomaly_score")
    return bool(
        finished
        and float(finished[0]["value"][1]) >= 3
        and dead
        and float(dead[0]["value"][1]) >= 1
        and scores
        and prometheus.query(
            'count_over_time(pixelmill_jobs_finished_total{state="failed"}[1m]) > 3'
        )
        and prometheus.query("rate(pixelmill_autoscaler_decisions_total[1m]) > 0")
    )


def grafana(expr: str) -> str:
    return expr.replace("$__rate_interval", RATE_INTERVAL)


def test_every_dashboard_panel_shows_data(scraped: Prometheus) -> None:
    no_data = []
    for board, panel, expr in dashboards_module().expressions():
        if not scraped.query(grafana(expr)):
            no_data.append(f"{board} / {panel}: {expr}")
    assert not no_data, "panels with No data:\n" + "\n".join(no_data)


def test_every_rule_parses_evaluates_and_reaches_data(scraped: Prometheus) -> None:
    empty = []
    for rule in rules():
        scraped.query(rule["expr"])  # parses and evaluates (may be empty: quiet)
        if not scraped.query(with_bool(rule["expr"])):
            empty.append(f"{rule.get('alert') or rule.get('record')}: {rule['expr']}")
    assert not empty, "rules that reach no data:\n" + "\n".join(empty)
    # and Prometheus' rule manager evaluated each of them without an error
    loaded = scraped.rules()
    assert {r["name"] for r in loaded} == {r.get("alert") or r.get("record") for r in rules()}
    failing = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r["health"] != "ok"]
    assert not failing, failing


def test_every_metric_the_rules_name_is_scraped(scraped: Prometheus) -> None:
    names = {
        name for rule in rules() for name in re.findall(r"\b(pixelmill_[a-z_]+)", rule["expr"])
    }
    missing = [n for n in sorted(names) if not scraped.query(f'count({{__name__="{n}"}})')]
    assert not missing, missing
    # and the gateway (its job worker aggregated) was scraped under a pixelmill job name
    up = scraped.query('max_over_time(up{job=~"pixelmill.*"}[5m])')
    assert [float(series["value"][1]) for series in up] == [1.0]


def test_with_bool_keeps_label_matchers_and_strings() -> None:
    expr = 'up{job=~"a.*",x!="y"} == 0 and on (q) m{s!~"5.."} > (6 * 0.001)'
    assert with_bool(expr) == (
        'up{job=~"a.*",x!="y"} == bool 0 and on (q) m{s!~"5.."} > bool (6 * 0.001)'
    )
    assert with_bool("a >= bool 1") == "a >= bool 1"
