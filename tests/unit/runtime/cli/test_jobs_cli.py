"""``pixelmill jobs purge --older-than``: a number of days that makes a date, or one
clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.runtime.cli import main


@pytest.mark.parametrize(
    ("days", "said"),
    [
        ("nan", "'nan' is not a number."),
        ("inf", "inf is not in the range 0<=x<=36500."),
        ("1e10", "10000000000.0 is not in the range 0<=x<=36500."),
        ("1000000", "1000000.0 is not in the range 0<=x<=36500."),
        ("-1", "-1.0 is not in the range 0<=x<=36500."),
    ],
)
def test_days_that_make_no_date_are_refused_in_one_line(
    tmp_path: Path, days: str, said: str
) -> None:
    result = CliRunner().invoke(
        main, ["jobs", "purge", "--older-than", days, "--dry-run", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.splitlines()[-1] == f"Error: Invalid value for '--older-than': {said}"


def test_a_century_is_the_oldest_cutoff(tmp_path: Path) -> None:
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert upgraded.exit_code == 0, upgraded.output
    result = runner.invoke(
        main, ["jobs", "purge", "--older-than", "36500", "--dry-run", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "would delete 0 job(s) finished before 19" in result.output
