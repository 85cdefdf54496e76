"""The Kubernetes actuator: one Deployment per queue (``PREFIX + queue``), scaled with
the official ``kubernetes`` client through the Deployment's ``scale`` subresource
(``read_namespaced_deployment_scale``, ``patch_namespaced_deployment_scale``).

Scaling down leaves the drain to Kubernetes and the worker: the kubelet sends SIGTERM,
``pixelmill worker`` takes no new task and finishes its running ones within the pod's
``terminationGracePeriodSeconds`` (deploy/kubernetes sets it above the worker's
``--shutdown-timeout``; past it unfinished tasks go back to the queue).

The client is imported lazily (``pip install pixelmill[kubernetes]``).
"""

from __future__ import annotations

from typing import Any

from pixelmill.errors import BackendUnavailable

__all__ = ["KubernetesActuator"]


class KubernetesActuator:
    def __init__(self, api_client: Any, *, namespace: str, prefix: str) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(api_client)
        self.api_client = api_client
        self.namespace = namespace
        self.prefix = prefix

    @classmethod
    def from_config(cls, *, namespace: str, prefix: str) -> KubernetesActuator:
        """In a pod: its service account; elsewhere: the kubeconfig (``KUBECONFIG``)."""
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(client.ApiClient(), namespace=namespace, prefix=prefix)

    def deployment(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def replicas(self, service: str) -> tuple[int, int]:
        from kubernetes.client.exceptions import ApiException

        try:
            scale = self.apps.read_namespaced_deployment_scale(
                self.deployment(service), self.namespace
            )
        except ApiException as exc:
            raise BackendUnavailable(
                f"Kubernetes: reading {service}'s scale: {exc.reason}"
            ) from exc
        asked = (scale.spec.replicas if scale.spec is not None else 0) or 0
        running = scale.status.replicas if scale.status is not None else 0
        return asked, running or 0

    def scale(self, service: str, replicas: int) -> None:
        from kubernetes.client.exceptions import ApiException

        name = self.deployment(service)
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"replicas": replicas},
        }
        try:
            self.apps.patch_namespaced_deployment_scale(name, self.namespace, body)
        except ApiException as exc:
            raise BackendUnavailable(f"Kubernetes: scaling {service}: {exc.reason}") from exc

    def close(self) -> None:
        self.api_client.close()
