"""A training job whose process is killed mid-run resumes after its last finished epoch
when the platform comes back, instead of starting over — and still registers one
version with the whole history.

A real ``pixelmill up`` (embedded: SQLite, local folder, in-process jobs) is started and
killed with SIGKILL by PID; the test is bounded by timeouts.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jobs_helpers import (
    admin_auth,
    finished_job,
    free_port,
    group_alive,
    start_embedded,
    wait_for,
)
from tests.ml_helpers import TINY_SPEC, nuclei_zip

pytestmark = [pytest.mark.slow]

EPOCHS = 30


def _sse_events(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's whole event log, replayed by the SSE endpoint (it ends at the final state)."""
    events, kind = [], None
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind != "snapshot":
                events.append({"type": kind, **json.loads(line[len("data: ") :])})
    return events


def test_a_killed_training_run_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    env = {"PIXELMILL_ML__DEFAULT_MODEL": "false"}
    proc = start_embedded(data_dir, port, log, env)
    try:
        auth = admin_auth(log)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            dataset = http.post("/v1/datasets", content=nuclei_zip(6)).json()["id"]
            spec = {**TINY_SPEC, "epochs": EPOCHS, "patience": EPOCHS, "threads": 1}
            run = http.post(
                "/v1/training-runs", json={"model": "tiny", "dataset": dataset, "spec": spec}
            )
            assert run.status_code == 202, run.text
            job_id = run.json()["job_id"]
            # given a run that has finished a few epochs (its resumable state is saved)
            state = data_dir / "objects" / "jobs" / job_id / "tasks" / "000000" / "state"

            def epochs_done() -> int:
                job = http.get(f"/v1/jobs/{job_id}").json()
                found = re.search(r"epoch (\d+)/", json.dumps(job))
                return int(found.group(1)) if found else 0

            wait_for(lambda: epochs_done() >= 3 and (state / "training.bin").exists(), timeout=240)
        # when the whole platform is killed mid-training and started again
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not group_alive(proc.pid), timeout=10)
        proc = start_embedded(data_dir, port, log, env)
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            job = finished_job(http, job_id, timeout=300, interval=0.5)
            # then the job succeeds, having resumed rather than started over
            assert job["state"] == "succeeded", job
            events = _sse_events(http, job_id)
            messages = [e.get("message") or "" for e in events if e["type"] == "progress"]
            resumed_at = next(i for i, m in enumerate(messages) if m.startswith("resuming"))
            after = [int(m.split()[1].split("/")[0]) for m in messages[resumed_at + 1 :] if m]
            assert after and after[0] > 1, messages  # the first epoch after restart is not 1
            assert after[-1] == EPOCHS
            # and one version, whose history has every epoch exactly once
            version = http.get("/v1/models/tiny/versions/1").json()
            assert [h["epoch"] for h in version["card"]["history"]] == list(range(1, EPOCHS + 1))
            assert http.get("/v1/models/tiny/versions/2").status_code == 404
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
