"""The GitHub Actions workflows: actionlint finds nothing (syntax, expressions, action
inputs, runtimes), and the CI workflow runs the README's test command and the deploy
steps of docs/deployment.md."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.deploy.conftest import ROOT, run, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_actionlint_finds_nothing() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "security.yml"}
    result = run(tool("actionlint"), "-no-color", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_valid_against_the_workflow_schema() -> None:
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *WORKFLOWS
    )
    assert result.returncode == 0, result.stdout + result.stderr


def steps(workflow: Path, job: str) -> str:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return "\n".join(str(step.get("run", step.get("uses", ""))) for step in jobs[job]["steps"])


def test_ci_runs_the_readme_test_command_with_the_servers() -> None:
    ci = ROOT / ".github" / "workflows" / "ci.yml"
    jobs = yaml.safe_load(ci.read_text())["jobs"]
    assert "bash .ci/run" in steps(ci, "test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert set(jobs["test"]["services"]) == {"postgres", "rabbitmq", "redis"}
    assert "tests/unit/deploy" in steps(ci, "manifests")


def test_the_image_is_scanned_with_an_sbom_and_pushed_only_from_main_and_tags() -> None:
    ci = ROOT / ".github" / "workflows" / "ci.yml"
    image = steps(ci, "image")
    assert "anchore/sbom-action" in image and "aquasecurity/trivy-action" in image
    spec = yaml.safe_load(ci.read_text())
    triggers = spec[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert spec["jobs"]["image"]["env"]["PUSH"] == "${{ github.event_name == 'push' }}"


def test_staging_gets_migrations_first_then_a_rolling_update() -> None:
    ci = ROOT / ".github" / "workflows" / "ci.yml"
    deploy = steps(ci, "deploy-staging")
    migrate = deploy.index("-l app.kubernetes.io/component=migrate")
    wait = deploy.index("wait --for=condition=complete job/pixelmill-migrate")
    apply = deploy.index("kubectl apply -k deploy/k8s/overlays/staging\n")
    assert migrate < wait < apply < deploy.index("rollout status")
