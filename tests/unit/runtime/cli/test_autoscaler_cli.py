"""``pixelmill autoscaler``: refuses a deployment it cannot serve, with a clear line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.runtime.cli import main


def test_the_in_process_broker_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["autoscaler", "--dry-run", "--broker-url", "memory://", "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "PIXELMILL_BROKER__URL=amqp://" in result.output


@pytest.mark.server
def test_a_health_port_in_use_is_one_clear_line(tmp_path: Path, amqp_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["autoscaler", "--dry-run", "--broker-url", amqp_url, "--data-dir", str(tmp_path)]
        result = CliRunner().invoke(main, [*args, "--health-port", str(port)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.splitlines()[-1] == (
        f"Error: cannot serve health on 127.0.0.1:{port}: Address already in use "
        "(choose another --health-port, or 0 for none)"
    )


def test_a_health_port_out_of_range_is_refused() -> None:
    result = CliRunner().invoke(main, ["autoscaler", "--health-port", "70000"])
    assert result.exit_code == 2
    assert "Invalid value for '--health-port'" in result.output
