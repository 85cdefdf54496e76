"""The Grafana dashboards are code: the committed JSON is what tools/grafana_dashboards.py
generates, every panel queries Prometheus through the dashboard's data source variable,
and the provisioning files point Grafana at them."""

from __future__ import annotations

import json

import yaml

from tests.integration.observability.prometheus import REPO, dashboards_module

GRAFANA = REPO / "deploy" / "grafana"


def test_committed_dashboards_are_the_generated_ones() -> None:
    generated = dashboards_module().generate()
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert set(committed) == set(generated), "run: python tools/grafana_dashboards.py"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run python tools/grafana_dashboards.py"


def test_each_dashboard_has_unique_ids_and_queries_on_every_panel() -> None:
    boards = [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]
    assert {b["title"] for b in boards} == {
        "pixelmill / Overview",
        "pixelmill / Render",
        "pixelmill / Jobs",
        "pixelmill / ML",
        "pixelmill / Autoscaler",
    }
    assert len({b["uid"] for b in boards}) == len(boards)
    for board in boards:
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
        for panel in panels:
            assert panel["targets"], f"{board['title']} / {panel['title']} has no query"
            for query in panel["targets"]:
                assert query["datasource"]["uid"] == "${datasource}"
                assert query["expr"].strip()


def test_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "pixelmill.yml").read_text()
    )
    assert source["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pixelmill.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"].endswith("/dashboards")
