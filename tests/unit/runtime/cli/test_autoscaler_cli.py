"""``pixelmill autoscaler``: refuses a deployment it cannot serve, with a clear line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pixelmill.runtime.cli import main


def test_the_in_process_broker_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["autoscaler", "--dry-run", "--broker-url", "memory://", "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "PIXELMILL_BROKER__URL=amqp://" in result.output
