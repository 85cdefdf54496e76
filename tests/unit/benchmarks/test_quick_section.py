"""``make bench`` rewrites only the marked quick-run section of docs/benchmarks.md: the
hand-written page around it stays as it was, and a run of some benchmarks keeps the
other benchmarks' rows."""

from __future__ import annotations

from benchmarks._harness.docs import QUICK_END, QUICK_START, update_section

PAGE = "# Benchmarks\n\nHand-written numbers.\n"
ORDER = ["render", "jobs", "ml"]


def test_a_page_without_the_section_gets_it_appended_and_keeps_its_text() -> None:
    # given a page with no quick-run section, when a run writes one
    rows = {"render": {"status": "ran", "seconds": 61.0, "headline": ["ratio 1.9x"]}}
    page = update_section(PAGE, rows, "make bench", 61.0, ORDER)
    # then the hand-written text is untouched and the row sits between the markers
    assert page.startswith(PAGE)
    section = page[page.index(QUICK_START) : page.index(QUICK_END)]
    assert "| render |" in section and "61 s | ratio 1.9x |" in section


def test_a_later_run_of_one_benchmark_keeps_the_others_rows() -> None:
    # given a section with render and a skipped ml
    first = {
        "render": {"status": "ran", "seconds": 61.0, "headline": ["ratio 1.9x"]},
        "ml": {"status": "skipped", "reason": "torch is not installed"},
    }
    page = update_section(PAGE + "\nMore hand-written text.\n", first, "make bench", 70.0, ORDER)
    # when only jobs runs
    jobs = {"jobs": {"status": "ran", "seconds": 90.0, "headline": ["500 jobs/s | fast"]}}
    page = update_section(page, jobs, 'make bench ARGS="--only jobs"', 90.0, ORDER)
    # then all three rows are there, in the benchmarks' order, the text after the old
    # section too, and a "|" in a headline does not break the table
    section = page[page.index(QUICK_START) : page.index(QUICK_END)]
    names = [line.split(" |")[0][2:] for line in section.splitlines() if line.startswith("| ")]
    assert names[1:] == ["render", "jobs", "ml"]
    assert "500 jobs/s \\| fast" in section
    assert "skipped | torch is not installed" in section
    assert "More hand-written text." in page
    assert page.count(QUICK_START) == 1
