"""The load and scalability study (issue 17, items 1-4): an open-loop load driver with
HDR histograms (:mod:`.openloop`), the request mixes (:mod:`.scenarios`, also driven by
Locust in ``locustfile.py``), the systems under test (:mod:`.systems`), the Universal
Scalability Law and the papers' response-time model (:mod:`.models`), and the experiments
(``python -m benchmarks.study.experiments``; ``make study`` runs them all in quick mode)
which write CSV and plots under ``docs/load-study/`` and update ``docs/load-study.md``.
"""


def benchmarks_on_path() -> None:
    """Let the study import the benchmarks beside it (``render_servers``,
    ``jobs_dramatiq_floor_parts``), which import ``_harness`` as a top-level package."""
    import sys
    from pathlib import Path

    folder = str(Path(__file__).resolve().parents[1])
    if folder not in sys.path:
        sys.path.insert(0, folder)
