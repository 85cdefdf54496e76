"""The alert rules of deploy/prometheus: promtool finds them valid, their unit tests
(deploy/prometheus/tests) pass and cover every alert, and every alert tells the person
paged how bad it is, what happened and where its runbook is."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.integration.observability.prometheus import (
    OPERATIONS,
    RULE_TESTS,
    RULES,
    binary,
    rules,
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS[0].parent,
    )


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", *map(str, RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = promtool("test", "rules", *(path.name for path in RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts - fires == set(), "never seen firing"
    assert alerts - quiet == set(), "never seen quiet"


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of ``markdown``."""
    return {
        re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        for title in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    }


def test_every_alert_has_severity_summary_description_and_a_runbook() -> None:
    documented = anchors(OPERATIONS.read_text())
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor == name.lower() and anchor in documented, f"{name}: no runbook #{anchor}"
