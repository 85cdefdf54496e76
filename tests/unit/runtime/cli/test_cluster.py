"""`pixelmill cluster up/down` say clearly what is missing, before starting anything."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pixelmill.runtime.cli import main


def test_down_without_a_running_cluster_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["cluster", "down", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"no cluster runs on {tmp_path.resolve()}" in result.output


def test_up_without_haproxy_says_how_to_get_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["cluster", "up", "--data-dir", str(tmp_path), "--haproxy", "no-such-haproxy"],
    )
    assert result.exit_code == 1
    assert "no no-such-haproxy: install it (`make deploy-tools`)" in result.output


def test_up_without_the_compose_file_asks_for_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["cluster", "up", "--data-dir", str(tmp_path), "--deploy-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no deploy/compose.yaml found: pass --deploy-dir" in result.output
