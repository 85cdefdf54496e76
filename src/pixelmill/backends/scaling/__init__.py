"""Actuators of the autoscaler: the :class:`~.base.Actuator` Protocol and its Kubernetes
implementation (the local one lives in the runtime, beside the worker supervisor)."""
