"""Job retention and study analyses, over SQLite and PostgreSQL: a study analysis's
results are its job's artifacts, study data that do not expire with the job queue — the
job an analysis refers to is kept by a purge (results and the study export still
answer) until the analysis goes with its study; other jobs are purged as before. An
analysis whose results were lost anyway (purged before jobs were held) leaves only its
own rows out of the export, named in a header, not the whole study."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pixelmill.backends.metadata.tables_jobs import job_events, job_tasks, jobs
from pixelmill.runtime.cli import main
from tests.integration.gateway.test_analyses import add_image, finished
from tests.integration.gateway.workspace_helpers import study, user
from tests.integration.jobs.conftest import Gateway, job_settings, job_settings_on, open_gateway

gateway_at = contextmanager(open_gateway)
RESULTS = ("objects", "summary", "labels")


def analysed_study(gw: Gateway) -> tuple[str, dict[str, str], dict[str, Any], list[str]]:
    """A study with two images and a finished he-nuclei analysis of both:
    (study id, its owner's headers, the analysis, its image ids)."""
    olga = user(gw.container, "olga")
    sid = study(gw.client, olga, container=gw.container)
    images = [add_image(gw.client, sid, olga, seed)[0] for seed in (1, 2)]
    r = gw.client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": images},
        headers=olga,
    )
    assert r.status_code == 201, r.text
    done = finished(gw.client, r.headers["Location"], olga)
    assert done["status"] == "done", done
    return sid, olga, done, images


def export_rows(gw: Gateway, sid: str, headers: dict[str, str]) -> tuple[Any, list[dict]]:
    got = gw.client.get(f"/v1/studies/{sid}/export/measurements", headers=headers)
    assert got.status_code == 200, got.text
    return got, list(csv.DictReader(io.StringIO(got.text)))


def purge_all(settings: Any, *flags: str) -> str:
    cli = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    out = CliRunner().invoke(main, ["jobs", "purge", "--older-than", "0", *flags, *cli])
    assert out.exit_code == 0, out.output
    return str(out.output)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)
def test_a_purge_keeps_the_jobs_of_study_analyses_and_their_results(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = job_settings_on(database, request, tmp_path)
    with gateway_at(settings) as gw:
        # given a study with a finished analysis, and a job no analysis refers to
        sid, olga, analysis, images = analysed_study(gw)
        loose = gw.wait(gw.submit(kind="test.artifacts", inputs=[gw.upload()])["id"])
        assert loose["state"] == "succeeded"
        _, before = export_rows(gw, sid, olga)
        assert before
        # when every finished job is purged (a dry run counts only the loose one)
        assert "would delete 1 job(s)" in purge_all(settings, "--dry-run")
        assert "deleted 1 job(s)" in purge_all(settings)
        # then the loose job is gone with its artifacts ...
        assert gw.client.get(f"/v1/jobs/{loose['id']}", headers=gw.auth).status_code == 404
        assert list(gw.container.storage.list(f"jobs/{loose['id']}/")) == []
        # ... but the analysis's results and the study export still answer
        base = f"/v1/studies/{sid}/analyses/{analysis['id']}/images"
        for image_id in images:
            for name in RESULTS:
                got = gw.client.get(f"{base}/{image_id}/results/{name}", headers=olga)
                assert got.status_code == 200, (name, got.text)
        got, after = export_rows(gw, sid, olga)
        assert after == before and "pixelmill-missing-results" not in got.headers
        # and deleting the study releases its analysis's job to the next purge
        assert gw.client.delete(f"/v1/studies/{sid}", headers=olga).status_code == 204
        assert "deleted 1 job(s)" in purge_all(settings)
        assert gw.client.get(f"/v1/jobs/{analysis['job_id']}", headers=olga).status_code == 404


def test_an_analysis_that_lost_its_results_leaves_the_rest_of_the_export(
    tmp_path: Path,
) -> None:
    with gateway_at(job_settings(tmp_path)) as gw:
        # given two analyses, one of whose job was deleted anyway (by an older version)
        sid, olga, lost, images = analysed_study(gw)
        r = gw.client.post(
            f"/v1/studies/{sid}/analyses",
            json={"preset": "he-nuclei", "image_ids": images[:1]},
            headers=olga,
        )
        kept = finished(gw.client, r.headers["Location"], olga)
        with gw.container.db.begin() as conn:
            for table, column in (
                (job_tasks, job_tasks.c.job_id),
                (job_events, job_events.c.job_id),
            ):
                conn.execute(sa.delete(table).where(column == lost["job_id"]))
            conn.execute(sa.delete(jobs).where(jobs.c.id == lost["job_id"]))
        # when the study is exported
        got, rows = export_rows(gw, sid, olga)
        # then the other analysis's rows are there, and the lost ones are named
        assert {r["analysis_id"] for r in rows} == {kept["id"]}
        assert len(rows) == kept["object_count"]
        missing = got.headers["pixelmill-missing-results"]
        assert missing.startswith("2: ") and all(f"{lost['id']}/{i}" in missing for i in images)
