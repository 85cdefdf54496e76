"""The policy the settings build is the policy the unit tests exercise: every default of
``PolicyConfig`` (the core's own) equals what ``autoscale`` settings give it."""

from __future__ import annotations

import dataclasses

from pixelmill.autoscale import PolicyConfig
from pixelmill.runtime.autoscale import policy_config
from pixelmill.settings_autoscale import AutoscaleSettings


def test_the_settings_defaults_are_the_policy_defaults() -> None:
    built = policy_config(AutoscaleSettings(), simulated=True)
    for field in dataclasses.fields(PolicyConfig):
        if field.name == "services":
            continue
        assert getattr(built, field.name) == field.default, field.name
