"""``pixelmill autoscale simulate`` and ``record`` as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.observability.logging import ACCESS_FORMAT
from pixelmill.runtime.cli import main

POLICIES = ["pixelmill", "hpa", "keda_ready", "keda_unacked", "ray", "static", "oracle"]
FIELDS = {
    "render_slo",
    "job_slo",
    "worker_seconds",
    "reversals_per_service_hour",
    "burst_violations",
    "recovery_s",
    "jobs_lost",
    "peak_workers",
}
SHORT = ["--hours", "1", "--scale", "0.02"]


def test_simulate_json_has_the_issue_shape() -> None:
    result = CliRunner().invoke(main, ["autoscale", "simulate", *SHORT, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"trace", "policies"}
    assert list(report["policies"]) == POLICIES
    for numbers in report["policies"].values():
        assert set(numbers) == FIELDS
        assert 0 <= numbers["render_slo"] <= 1 and 0 <= numbers["job_slo"] <= 1
        assert numbers["worker_seconds"] > 0
    assert report["policies"]["pixelmill"]["jobs_lost"] == 0


def test_simulate_table_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the autoscale extra (matplotlib)")
    args = ["autoscale", "simulate", "--hours", "0.2", "--scale", "0.02"]
    args += ["--policy", "pixelmill", "--policy", "oracle"]
    result = CliRunner().invoke(main, [*args, "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "pixelmill" in result.stdout and "oracle" in result.stdout
    for name in ("autoscale-replicas.png", "autoscale-slo-cost.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("under", ["a-file/plots", "/proc/nope"])
def test_simulate_refuses_a_plot_folder_it_cannot_create_before_simulating(
    tmp_path: Path, under: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / under if not under.startswith("/") else Path(under)
    args = ["autoscale", "simulate", "--hours", "0.2", "--scale", "0.02", "--policy", "static"]
    result = CliRunner().invoke(main, [*args, "--plots", str(folder)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith(
        f"Error: Invalid value for --plots: cannot create {folder}: "
    )
    assert "policy" not in result.stdout  # refused up front: no report


def test_simulate_replays_a_csv(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    rows = ["timestamp,kind,service_time"]
    rows += [
        f"{i * 0.01:.2f},render,0.03" if i % 3 else f"{i * 0.01:.2f},render,0.05"
        for i in range(3000)
    ]
    rows += [f"{i * 0.5:.2f},pipeline,{0.2 + 0.1 * (i % 4):.2f}" for i in range(60)]
    trace.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(
        main, ["autoscale", "simulate", "--trace", str(trace), "--policy", "pixelmill", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["trace"]["renders"] == 3000 and report["trace"]["jobs"] == 60


def test_simulate_refuses_a_broken_csv(tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("timestamp,kind,service_time\n1.0,render\n")
    result = CliRunner().invoke(main, ["autoscale", "simulate", "--trace", str(trace)])
    assert result.exit_code == 2
    assert "line 2" in result.output


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("1.5,render,1e400", "line 3: service_time '1e400' is not a finite number"),
        ("inf,render,0.03", "line 3: timestamp 'inf' is not a finite number"),
        ("1e12,render,0.03", "lines 2 and 3: the trace spans more than 7 days"),
    ],
)
def test_simulate_refuses_values_it_cannot_simulate_in_one_line(
    tmp_path: Path, row: str, said: str
) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(f"timestamp,kind,service_time\n0,render,0.03\n{row}\n")
    result = CliRunner().invoke(main, ["autoscale", "simulate", "--trace", str(trace)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: Invalid value for --trace: {said}" + (
        " (0 to 1e+12)" if "spans" in said else ""
    )


def job_records(tmp_path: Path, states: list[str]) -> tuple[str, datetime]:
    """A migrated SQLite DB with one single-task pipeline job a second, each task in the
    state given, run 250 ms x its index + 1 after a 1-s wait; its URL and first time."""
    import sqlalchemy as sa

    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.tables_jobs import job_tasks, jobs

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    database = Database(url)
    database.upgrade()
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with database.begin() as connection:
        for i, state in enumerate(states):
            at = start + timedelta(seconds=i)
            connection.execute(
                sa.insert(jobs).values(
                    id=f"j{i}", kind="pipeline", state=state, queue="transform",
                    params={}, inputs=[], total=1, time_limit_s=60, max_retries=0,
                    created_at=at, updated_at=at,
                )
            )  # fmt: skip
            connection.execute(
                sa.insert(job_tasks).values(
                    job_id=f"j{i}", idx=0, queue="transform", state=state,
                    created_at=at, started_at=at + timedelta(seconds=1),
                    finished_at=at + timedelta(seconds=1, milliseconds=250 * (i + 1)),
                )
            )  # fmt: skip
    database.dispose()
    return url, start


def test_record_writes_a_replayable_trace_from_job_records(tmp_path: Path) -> None:
    url, start = job_records(tmp_path, ["succeeded"] * 3)
    out = tmp_path / "trace.csv"
    result = CliRunner().invoke(
        main, ["autoscale", "record", "--database-url", url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,kind,service_time"
    assert [line.split(",")[1:] for line in lines[1:]] == [
        ["pipeline", "0.250000"],
        ["pipeline", "0.500000"],
        ["pipeline", "0.750000"],
    ]
    assert float(lines[1].split(",")[0]) == start.timestamp()


def test_record_leaves_failed_and_cancelled_tasks_out_of_the_trace(tmp_path: Path) -> None:
    # how long a task ran before it failed or was cancelled says nothing of the work's
    # service time: the replay would fit its lognormal to them
    url, _ = job_records(tmp_path, ["succeeded", "failed", "cancelled", "succeeded"])
    out = tmp_path / "trace.csv"
    result = CliRunner().invoke(
        main, ["autoscale", "record", "--database-url", url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 tasks, 0 renders" in result.output
    lines = out.read_text().splitlines()
    assert [line.split(",")[1:] for line in lines[1:]] == [
        ["pipeline", "0.250000"],
        ["pipeline", "1.000000"],
    ]


def test_a_trace_without_renders_has_no_render_share(tmp_path: Path) -> None:
    trace = tmp_path / "jobs-only.csv"
    trace.write_text("\n".join(f"{i * 0.2:.1f},pipeline,0.1" for i in range(200)) + "\n")
    result = CliRunner().invoke(
        main, ["autoscale", "simulate", "--trace", str(trace), "--policy", "hpa", "--json"]
    )
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)["policies"]["hpa"]
    assert numbers["render_slo"] is None
    assert numbers["job_slo"] == 1.0


def test_the_forecast_band_is_a_setting_that_reaches_the_policy() -> None:
    from pixelmill.runtime.autoscale import policy_config
    from pixelmill.settings_autoscale import AutoscaleSettings

    # by default the forecast adds capacity for its mean only; a user can ask for a band
    assert policy_config(AutoscaleSettings()).forecast_z == 0.0
    banded = AutoscaleSettings.model_validate({"forecast_z": 2.0})
    assert policy_config(banded, simulated=True).forecast_z == 2.0


def test_record_reads_renders_from_access_lines_and_they_replay(tmp_path: Path) -> None:
    """Renders leave no database row: ``record --access-log`` takes them from a gateway's
    access lines, and the replay then reports a render SLO."""
    log = tmp_path / "gateway.log"
    lines = []
    for i in range(40):  # two renders a second, 30-50 ms, and requests that are not renders
        at = f"2026-12-07T06:00:{i // 2:02d}.{500 * (i % 2):03d}+00:00"
        route, path = "/v1/images/{image_id}/render", "/v1/images/abc/render"
        message = ACCESS_FORMAT % ("GET", route, path, 200, 30 + i % 5 * 5)
        lines.append(json.dumps({"time": at, "level": "INFO", "logger": "pixelmill.access",
                                 "message": message, "request_id": "r"}))  # fmt: skip
        lines.append(json.dumps({"time": at, "level": "INFO", "logger": "pixelmill.access",
                                 "message": ACCESS_FORMAT % ("GET", "/v1/images", "/v1/images", 200, 3)}))  # fmt: skip
    lines.append("not a log line")
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "trace.csv"
    result = CliRunner().invoke(
        main, ["autoscale", "record", "--access-log", str(log), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "0 tasks, 40 renders" in result.output
    rows = out.read_text().splitlines()
    assert rows[0] == "timestamp,kind,service_time" and len(rows) == 41
    first = rows[1].split(",")
    assert first[1:] == ["render", "0.030000"]
    assert float(first[0]) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC).timestamp() - 0.030
    replay = CliRunner().invoke(
        main, ["autoscale", "simulate", "--trace", str(out), "--policy", "pixelmill", "--json"]
    )
    assert replay.exit_code == 0, replay.output
    numbers = json.loads(replay.stdout)["policies"]["pixelmill"]
    assert numbers["render_slo"] is not None and numbers["render_slo"] > 0.9
    assert numbers["job_slo"] is None


def test_record_needs_a_database_or_a_log() -> None:
    result = CliRunner().invoke(main, ["autoscale", "record"])
    assert result.exit_code == 2
    assert "--database-url, --access-log" in result.output


@pytest.mark.parametrize("option", ["--hours", "--scale"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e9"])
def test_a_synthetic_trace_needs_finite_sizes(option: str, value: str) -> None:
    result = CliRunner().invoke(main, ["autoscale", "simulate", option, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
