"""``pixelmill worker`` and ``pixelmill autoscaler`` share one health-server start
(``_common.start_health``): a port they cannot serve is one clear line, not a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.runtime.cli import main


@pytest.mark.server
@pytest.mark.parametrize("command", [["worker"], ["autoscaler", "--dry-run"]])
def test_a_health_port_in_use_is_one_clear_line(
    tmp_path: Path, amqp_url: str, command: list[str]
) -> None:
    urls = ["--data-dir", str(tmp_path), "--broker-url", amqp_url]
    assert CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)]).exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, [*command, *urls, "--health-port", str(port)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.splitlines()[-1] == (
        f"Error: cannot serve health on 127.0.0.1:{port}: Address already in use "
        "(choose another --health-port, or 0 for none)"
    )


@pytest.mark.parametrize("command", ["worker", "autoscaler"])
def test_a_health_port_out_of_range_is_refused(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--health-port", "70000"])
    assert result.exit_code == 2
    assert "Invalid value for '--health-port'" in result.output
