"""Where the experiments' results go: a summary CSV and a PNG plot per experiment under
``docs/load-study/``, raw per-request CSVs under ``benchmarks/.work/study/raw/``, and the
experiment's marked section of ``docs/load-study.md`` (the hand-written text above the
first marker stays as written)."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "load-study"
PAGE = ROOT / "docs" / "load-study.md"
RAW = ROOT / "benchmarks" / ".work" / "study" / "raw"
NOTE = (
    "Shared 2-core machine, loaded by other sessions while this ran: absolute numbers "
    "move from run to run, the ratios side by side are the headline."
)


def write_csv(name: str, rows: Sequence[dict[str, Any]]) -> Path:
    """``docs/load-study/NAME.csv`` with the union of the rows' keys as columns."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{name}.csv"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
    return path


def _fmt(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def raw_path(name: str) -> Path:
    RAW.mkdir(parents=True, exist_ok=True)
    return RAW / f"{name}.csv"


def figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.2), dpi=100)


def save_plot(fig: Any, name: str) -> str:
    DOCS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(DOCS / f"{name}.png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"load-study/{name}.png"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``columns`` of ``rows`` (floats to 3 significant digits)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        lines.append(
            "| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in cells) + " |"
        )
    return "\n".join(lines)


def update_page(key: str, title: str, body: str, command: str) -> None:
    """Replace (or append) the section between ``<!-- study:KEY:start/end -->``."""
    start, end = f"<!-- study:{key}:start -->", f"<!-- study:{key}:end -->"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    section = (
        f"{start}\n### {title}\n\n`{command}` — {stamp}, load average {load:.1f} at the end. "
        f"{NOTE}\n\n{body.strip()}\n{end}"
    )
    page = PAGE.read_text() if PAGE.exists() else "# Load and scalability study\n"
    if start in page and end in page:
        page = page[: page.index(start)] + section + page[page.index(end) + len(end) :]
    else:
        page = page.rstrip("\n") + "\n\n" + section + "\n"
    PAGE.write_text(page)
