"""The Kubernetes actuator through the official ``kubernetes`` client, talking real HTTP
to a test double of the API server (there is no API server here). The double serves the
``scale`` subresource of Deployments and validates every request body it receives
against the Kubernetes OpenAPI schema of ``autoscaling/v1`` Scale (``kubernetes-validate``,
strict: an unknown field is an error), answering 422 like the API server when it fails.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes_validate
import pytest

from pixelmill.backends.scaling.kubernetes import KubernetesActuator
from pixelmill.errors import BackendUnavailable

pytest.importorskip("kubernetes")

SCALE_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale$")
VERSION = kubernetes_validate.latest_version()


class FakeApiServer:
    """Deployments' scale subresource over HTTP, every body schema-checked."""

    def __init__(self, deployments: dict[tuple[str, str], int]) -> None:
        self.replicas = dict(deployments)
        self.bodies: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.answer(self, None)

            def do_PATCH(self) -> None:
                length = int(self.headers.get("content-length", 0))
                double.answer(self, json.loads(self.rfile.read(length)))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def scale(self, namespace: str, name: str) -> dict[str, Any]:
        n = self.replicas[(namespace, name)]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": n},
            "status": {"replicas": n, "selector": f"app={name}"},
        }

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        match = SCALE_PATH.match(handler.path.split("?")[0])
        if match is None or (match[1], match[2]) not in self.replicas:
            return self.send(handler, 404, self.status(404, "NotFound", handler.path))
        if body is not None:
            self.bodies.append(body)
            kind = handler.headers.get("content-type", "")
            if "patch+json" not in kind:
                return self.send(handler, 415, self.status(415, "UnsupportedMediaType", kind))
            try:
                kubernetes_validate.validate(body, VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                self.rejected.append(str(exc.message))
                return self.send(handler, 422, self.status(422, "Invalid", str(exc.message)))
            self.replicas[(match[1], match[2])] = body["spec"]["replicas"]
        self.send(handler, 200, self.scale(match[1], match[2]))

    @staticmethod
    def status(code: int, reason: str, message: str) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "code": code, "reason": reason, "message": message}  # fmt: skip

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    double = FakeApiServer({("pm", "pixelmill-worker-transform"): 2})
    double.thread.start()
    yield double
    double.server.shutdown()
    double.server.server_close()


@pytest.fixture
def actuator(api: FakeApiServer) -> Iterator[KubernetesActuator]:
    from kubernetes import client

    configuration = client.Configuration(host=api.url)
    actuator = KubernetesActuator(
        client.ApiClient(configuration), namespace="pm", prefix="pixelmill-worker-"
    )
    yield actuator
    actuator.close()


def test_it_reads_and_sets_a_deployments_replicas_with_schema_valid_requests(
    api: FakeApiServer, actuator: KubernetesActuator
) -> None:
    # given a Deployment with 2 replicas
    assert actuator.replicas("transform") == (2, 2)
    # when the autoscaler asks for 5
    actuator.scale("transform", 5)
    # then the Deployment has 5, through a request the API server's schema accepts
    assert actuator.replicas("transform") == (5, 5)
    assert api.rejected == [] and len(api.bodies) == 1
    assert api.bodies[0]["spec"] == {"replicas": 5}


def test_the_double_refuses_what_the_api_server_would_refuse(
    api: FakeApiServer, actuator: KubernetesActuator
) -> None:
    # the double is no rubber stamp: a Scale with a wrong field type or an unknown field
    # is refused with 422, as the API server's strict field validation would
    from kubernetes.client.exceptions import ApiException

    for bad in ({"replicas": "five"}, {"replicas": 1, "surge": 2}):
        body = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": bad}
        with pytest.raises(ApiException) as refused:
            actuator.apps.patch_namespaced_deployment_scale(
                "pixelmill-worker-transform", "pm", body
            )
        assert refused.value.status == 422
    assert len(api.rejected) == 2
    assert actuator.replicas("transform") == (2, 2)


def test_a_missing_deployment_is_a_clear_backend_error(actuator: KubernetesActuator) -> None:
    with pytest.raises(BackendUnavailable, match="segment"):
        actuator.replicas("segment")
    with pytest.raises(BackendUnavailable, match="segment"):
        actuator.scale("segment", 1)
