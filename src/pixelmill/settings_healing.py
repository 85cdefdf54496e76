"""The ``healing`` branch of the settings tree (:class:`pixelmill.settings.Settings`):
circuit breakers, worker supervision, automatic model rollback and anomaly detection.
Kept in its own module so ``settings.py`` stays small; it is read the same way
(``PIXELMILL_HEALING__BREAKERS__FAILURE_RATE=0.5``, ``healing:`` in the config file)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BreakerSettings(BaseModel):
    """One policy for every breaker (storage, cache, broker publish, inference)."""

    enabled: bool = Field(True, description="Wrap the backends in circuit breakers.")
    failure_rate: float = Field(
        0.5, gt=0, le=1, description="Open when this share of the calls in the window failed."
    )
    min_calls: int = Field(
        5, ge=1, description="Calls the window must hold before the failure rate counts."
    )
    window_s: float = Field(30.0, gt=0, description="Sliding window of call outcomes, seconds.")
    reset_timeout_s: float = Field(
        5.0, gt=0, description="Open this long, then let one probe call through (half-open)."
    )
    retry_after_s: int = Field(
        5, ge=1, description="Retry-After of the 503 a call refused by an open breaker gets."
    )


class SupervisorSettings(BaseModel):
    min_backoff_s: float = Field(
        0.5, gt=0, description="Wait before restarting a crashed worker the first time."
    )
    max_backoff_s: float = Field(30.0, gt=0, description="Longest wait between restarts.")
    stable_after_s: float = Field(
        60.0, gt=0, description="A worker up this long has its backoff reset to the minimum."
    )


class RollbackSettings(BaseModel):
    """Watch a newly promoted model version; move the alias back when it breaches."""

    enabled: bool = Field(True, description="Roll back a breaching promotion by itself.")
    watch_window_s: float = Field(
        3600.0, gt=0, description="How long after a promotion the new version is watched."
    )
    min_predictions: int = Field(
        20, ge=1, description="Predictions the version must serve before rates are judged."
    )
    max_error_rate: float = Field(
        0.2, ge=0, le=1, description="Breach: share of failed predictions above this."
    )
    max_latency_p95_s: float = Field(
        10.0, gt=0, description="Breach: 95th percentile prediction latency above this (s)."
    )
    max_drift: float | None = Field(
        None,
        gt=0,
        description="Breach: drift score (PSI) above this; unset = ml.drift_threshold.",
    )
    check_interval_s: float = Field(
        1.0, gt=0, description="How often the watcher looks (no I/O unless it acts)."
    )


class AnomalySettings(BaseModel):
    enabled: bool = Field(True, description="Run the online anomaly detector.")
    interval_s: float = Field(15.0, gt=0, description="Sampling period of each series, s.")
    warmup: int = Field(20, ge=5, description="Samples before a series can be anomalous.")
    window: int = Field(240, ge=10, description="Samples of history the baseline keeps.")
    threshold: float = Field(
        6.0, gt=0, description="Robust z-score (median/MAD) above which a sample is anomalous."
    )
    persistence: int = Field(
        2, ge=1, description="Consecutive anomalous samples before an anomaly is raised."
    )


class HealingSettings(BaseModel):
    breakers: BreakerSettings = BreakerSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    rollback: RollbackSettings = RollbackSettings()
    anomaly: AnomalySettings = AnomalySettings()
