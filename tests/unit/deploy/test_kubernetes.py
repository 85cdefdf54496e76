"""deploy/k8s: every overlay renders with `kubectl kustomize`; every object validates
offline (kubernetes-validate for the built-in kinds, the vendored CRD schemas for KEDA and
prometheus-operator); and the rules of docs/deployment.md hold for every workload."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pixelmill.queues import QUEUES
from pixelmill.settings import Settings
from tests.unit.deploy.conftest import DEPLOY, ROOT, SCHEMAS, tool

OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir())
CRDS = {
    ("keda.sh", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
    ("monitoring.coreos.com", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
}
#: the oldest Kubernetes minor the manifests support, and the newest the validator knows
KUBERNETES = ("1.30.0", kubernetes_validate.latest_version())
WORKLOADS = {"gateway", "inference", "worker", "trainer"}


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = tool("kubectl", "version", "--client")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def kinds(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def pod_specs(docs: tuple[dict[str, Any], ...]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field
    validation does (structural schemas list every field they keep)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def crd_validator(group: str, kind: str, version: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((SCHEMAS / CRDS[(group, kind)]).read_text())
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    served = {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}
    assert version in served, f"{group}/{version} {kind} is not served by the vendored CRD"
    return jsonschema.Draft7Validator(strict(served[version]["schema"]["openAPIV3Schema"]))


def test_every_object_of_every_overlay_is_valid_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # kubernetes-validate parses its schema files (megabytes of JSON) on every call: read
    # each once for this test (the same files, the same validation)
    utils = kubernetes_validate.utils
    monkeypatch.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
    distinct = {json.dumps(doc, sort_keys=True): doc for o in OVERLAYS for doc in render(o)}
    assert len(distinct) > 30
    for doc in distinct.values():
        group, _, version = doc["apiVersion"].rpartition("/")
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if (group, doc["kind"]) in CRDS:
            errors = list(crd_validator(group, doc["kind"], version).iter_errors(doc))
            assert not errors, (name, [f"{list(e.path)}: {e.message}" for e in errors])
            continue
        for k8s in KUBERNETES:
            try:
                kubernetes_validate.validate(doc, k8s, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name} on Kubernetes {k8s}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(overlay: str) -> None:
    specs = list(pod_specs(render(overlay)))
    assert {component(doc) for doc, _ in specs} >= WORKLOADS
    for doc, spec in specs:
        name = doc["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, bound)
            assert ":" in c["image"] and not c["image"].endswith(":latest"), (name, c["image"])
            secrets = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
            assert secrets == ["pixelmill"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_probes_on_livez_and_readyz(overlay: str) -> None:
    deployments = kinds(render(overlay), "Deployment")
    assert {component(d) for d in deployments} >= WORKLOADS
    for doc in deployments:
        for c in doc["spec"]["template"]["spec"]["containers"]:
            name = doc["metadata"]["name"]
            paths = {
                p: c[p]["httpGet"]["path"]
                for p in ("startupProbe", "livenessProbe", "readinessProbe")
            }
            assert paths == {
                "startupProbe": "/livez",
                "livenessProbe": "/livez",
                "readinessProbe": "/readyz",
            }, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_is_graceful(overlay: str) -> None:
    step_s = Settings().jobs.step_time_limit_s
    deployments = kinds(render(overlay), "Deployment")
    assert {component(d) for d in deployments} >= WORKLOADS
    for doc in deployments:
        spec = doc["spec"]["template"]["spec"]
        c = spec["containers"][0]
        name = doc["metadata"]["name"]
        if component(doc) in ("gateway", "inference"):
            # off the endpoints before SIGTERM
            assert c["lifecycle"]["preStop"], name
        if component(doc) in ("worker", "trainer"):
            shutdown_s = float(c["args"][c["args"].index("--shutdown-timeout") + 1])
            # a running step finishes, and the kubelet waits for the worker to let go
            assert step_s < shutdown_s < spec["terminationGracePeriodSeconds"], name
            assert c["args"][c["args"].index("--health-port") + 1] == "9101", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    covered = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in kinds(docs, "PodDisruptionBudget")
    }
    for doc in kinds(docs, "Deployment"):
        if component(doc) in WORKLOADS:
            assert doc["metadata"]["name"] in covered, doc["metadata"]["name"]
    hpa = {h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")}
    assert "pixelmill-gateway" in hpa


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_scale_by_keda_or_by_the_pixelmill_autoscaler(overlay: str) -> None:
    docs = render(overlay)
    scaled = kinds(docs, "ScaledObject")
    autoscaler = [d for d in kinds(docs, "Deployment") if component(d) == "autoscaler"]
    assert bool(scaled) != bool(autoscaler), "one of the two, chosen by the overlay"
    workers = [d for d in kinds(docs, "Deployment") if component(d) in ("worker", "trainer")]
    assert workers, "the overlay deploys workers to scale"
    if not scaled:
        return
    by_target = {s["spec"]["scaleTargetRef"]["name"]: s for s in scaled}
    for worker in workers:
        queue = worker["metadata"]["labels"]["pixelmill.io/queue"]
        triggers = by_target[worker["metadata"]["name"]]["spec"]["triggers"]
        assert {t["metadata"]["queueName"] for t in triggers} == {
            f"pixelmill.{queue}",
            f"pixelmill.{queue}.high",
        }
        for t in triggers:
            # the management API counts ready + unacknowledged; AMQP would count ready only
            assert t["type"] == "rabbitmq" and t["metadata"]["protocol"] == "http"
            assert t["metadata"]["mode"] == "QueueLength"
            assert t["metadata"].get("excludeUnacknowledged", "false") == "false"
        assert "replicas" not in worker["spec"], "KEDA owns the replica count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateways_are_reachable_from_outside(overlay: str) -> None:
    docs = render(overlay)
    policies = kinds(docs, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") for p in policies)
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                if ns != "monitoring":
                    values = policy["spec"]["podSelector"]["matchExpressions"][0]["values"]
                    assert set(values) <= {"gateway", "inference"}, policy["metadata"]["name"]
    backends = {
        path["backend"]["service"]["name"]
        for ingress in kinds(docs, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"pixelmill-gateway", "pixelmill-inference"}
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in kinds(docs, "Service"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_state_lives_elsewhere_and_secrets_are_only_referenced(overlay: str) -> None:
    docs = render(overlay)
    present = {d["kind"] for d in docs}
    assert not present & {"Secret", "StatefulSet", "PersistentVolumeClaim"}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= present


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_queue_has_its_workers(overlay: str) -> None:
    labels = [d["metadata"]["labels"] for d in kinds(render(overlay), "Deployment")]
    assert {label.get("pixelmill.io/queue") for label in labels} - {None} == set(QUEUES)


def test_the_deployment_alerts_are_valid_prometheus_rules(tmp_path: Path) -> None:
    # the real promtool parses every expression; each alert has its runbook section
    rules = [d for d in render("prod") if d["kind"] == "PrometheusRule"]
    assert rules
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [g for r in rules for g in r["spec"]["groups"]]}))
    result = subprocess.run(
        [tool("promtool", "--version"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].split("#")[1]
            assert f"### {anchor.replace('-', ' ').capitalize()}" in guide, anchor


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_autoscaled_deployment_leaves_its_replica_count_to_the_autoscaler(overlay: str) -> None:
    # `kubectl apply` of a replica count would undo the HPA's or KEDA's decision
    docs = render(overlay)
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")}
    scaled |= {s["spec"]["scaleTargetRef"]["name"] for s in kinds(docs, "ScaledObject")}
    assert "pixelmill-gateway" in scaled, scaled
    for doc in kinds(docs, "Deployment"):
        if doc["metadata"]["name"] in scaled:
            assert "replicas" not in doc["spec"], doc["metadata"]["name"]
