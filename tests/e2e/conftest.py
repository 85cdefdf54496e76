"""Browser tests keep what a failure needs to be understood: each Playwright context
made through ``traced_context`` records a trace (screenshots, DOM snapshots, network),
written to ``test-results/<test>-<n>.zip`` when the test fails and thrown away when it
passes. Open one with ``npx playwright show-trace FILE`` (web/node_modules)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"

try:
    from playwright.sync_api import expect
except ImportError:  # the browser tests skip themselves without Playwright
    pass
else:
    # These tests assert what a user sees, not how fast (speed lives in
    # benchmarks/web_viewer.py). Playwright's default of 5 s per expectation was a timed
    # assertion in disguise: on this 2-core machine under load, a viewer once took 4.5 s
    # from the click to its first tiles (a 1.9 s metadata request, then the tiles), and
    # the test failed though every tile arrived. A failing expectation now waits 15 s.
    expect.set_options(timeout=15_000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def traced_context(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``traced_context(browser, **options)``: a new context, traced while it lives."""
    made: list[Any] = []

    def make(browser: Any, **options: Any) -> Any:
        context = browser.new_context(**options)
        context.tracing.start(screenshots=True, snapshots=True)
        made.append(context)
        return context

    yield make
    failed = request.node.stash.get(_FAILED, True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for n, context in enumerate(made):
        try:
            if failed:
                RESULTS.mkdir(exist_ok=True)
                path = RESULTS / f"{name}-{n}.zip"
                context.tracing.stop(path=str(path))
                print(f"Playwright trace of the failure: {path}")
            else:
                context.tracing.stop()
            context.close()
        except Exception:  # a context the test closed has no trace left
            pass
