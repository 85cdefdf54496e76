"""The render benchmark's Markdown report and headline, from its results JSON alone (so a
saved ``benchmarks/.work/render-results.json`` can be reported again)."""

from __future__ import annotations

from typing import Any

from _harness import geomean, median, table

FLOOR_METHOD = "OpenCV IMREAD_REDUCED_COLOR_8 + INTER_AREA"
LAYOUTS = {"1": "1 process", "2": "2 workers"}


def cell(samples: list[dict[str, float]]) -> dict[str, float]:
    """Medians of one server's runs of one row."""
    return {k: median([s[k] for s in samples]) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}


def ratios(report: dict[str, Any], layout: str) -> dict[str, list[float]]:
    """req/s pixelmill / thumbor of every row and concurrency, by cache (miss, hit)."""
    out: dict[str, list[float]] = {"miss": [], "hit": []}
    for by_conc in report["results"].values():
        for cells in by_conc.values():
            for cache in out:
                out[cache].append(
                    cell(cells[f"pm-{layout}-{cache}"])["rps"] / cell(cells["thumbor"])["rps"]
                )
    return out


def versus_peer(report: dict[str, Any], titles: dict[str, str], layout: str) -> str:
    """One layout of pixelmill against thumbor, row by row."""
    rows = []
    for key, by_conc in report["results"].items():
        for conc, cells in by_conc.items():
            t = cell(cells["thumbor"])
            for cache in ("miss", "hit"):
                p = cell(cells[f"pm-{layout}-{cache}"])
                numbers = [p["rps"], p["p50_ms"], p["p99_ms"], p["cpu_ms"]]
                numbers += [t["rps"], t["p50_ms"], t["p99_ms"], t["cpu_ms"]]
                shown = [f"{v:.{0 if i % 4 in (1, 2) else 1}f}" for i, v in enumerate(numbers)]
                rows.append([titles.get(key, key), cache, conc, *shown])
                rows[-1].append(f"{p['rps'] / t['rps']:.2f}x")
    r = ratios(report, layout)
    everything = r["miss"] + r["hit"]
    head = ["render", "cache", "c", "pixelmill req/s", "p50", "p99", "CPU ms/req"]
    head += ["thumbor req/s", "p50", "p99", "CPU ms/req", "ratio"]
    return (
        f"\n**pixelmill ({LAYOUTS[layout]}) vs thumbor 7.8.0 ({report['cores']} processes)** — "
        f"medians of {report['reps']} runs x {report['seconds']:.0f} s; req/s, latency ms, "
        "server CPU ms per request\n\n"
        + table(head, rows, "llrrrrrrrrrr")
        + f"\n\nGeometric mean pixelmill/thumbor: **{geomean(everything):.2f}x** over all rows "
        f"(misses only {geomean(r['miss']):.2f}x, hits {geomean(r['hit']):.2f}x); "
        f"lowest row {min(everything):.2f}x."
    )


def one_vs_two(report: dict[str, Any], titles: dict[str, str]) -> str:
    rows = []
    for key, by_conc in report["results"].items():
        for conc, cells in by_conc.items():
            for cache in ("miss", "hit"):
                one = cell(cells[f"pm-1-{cache}"])["rps"]
                two = cell(cells[f"pm-2-{cache}"])["rps"]
                rows.append([titles.get(key, key), cache, conc, f"{one:.1f}", f"{two:.1f}"])
                rows[-1].append(f"{two / one:.2f}x")
    head = ["render", "cache", "c", "1 process", "2 workers", "ratio"]
    return (
        "\n**One process vs 2 workers** (req/s medians, ratio 2 workers / 1 process)\n\n"
        + table(head, rows, "llrrrr")
    )


def best_floor(report: dict[str, Any]) -> tuple[float, str]:
    """The fastest library method's CPU ms per image and its name."""
    floors = report["floor_ms"]
    return min((v, k) for k, v in floors.items() if not k.startswith("pixelmill"))


def floor_tables(report: dict[str, Any]) -> str:
    floors = report["floor_ms"]
    out = "\n**Floor: 12 MP JPEG → 300 px JPEG, single thread, CPU ms per image**\n\n"
    out += table(
        ["method", "CPU ms"],
        [[k, f"{v:.1f}"] for k, v in sorted(floors.items(), key=lambda kv: kv[1])],
        "lr",
    )
    if "jpeg12_300" not in report["results"]:
        return out
    best_ms, best = best_floor(report)
    floor_rate = 1000 / best_ms
    rows = []
    for layout, label in LAYOUTS.items():
        for conc, cells in report["results"]["jpeg12_300"].items():
            p = cell(cells[f"pm-{layout}-miss"])
            per_cpu, per_core = 1000 / p["cpu_ms"], p["rps"] / report["cores"]
            rows.append([label, conc, f"{p['rps']:.1f}", f"{per_core:.1f}", f"{per_cpu:.1f}"])
            rows[-1] += [f"{per_cpu / floor_rate:.2f}", f"{per_core / floor_rate:.2f}"]
    head = ["pixelmill, cache misses", "c", "req/s", "per core (wall)", "per CPU-second"]
    head += ["ratio to floor (CPU)", "ratio (wall)"]
    return (
        out
        + f"\n\nFloor = {best}: {best_ms:.1f} ms → {floor_rate:.1f} images/s per core.\n\n"
        + table(head, rows, "lrrrrrr")
    )


def pairs_table(report: dict[str, Any]) -> str:
    rows = []
    for name, runs in report["floor_pairs"].items():
        r = [x["ratio"] for x in runs]
        rows.append([LAYOUTS[name[3]], len(runs)])
        rows[-1] += [f"{median([x[k] for x in runs]):.1f}" for k in ("floor_ms", "cpu_ms", "rps")]
        rows[-1].append(f"{median(r):.2f} ({min(r):.2f}-{max(r):.2f})")
    head = ["pixelmill, cache misses", "runs", "floor CPU ms", "server CPU ms/req", "req/s"]
    return (
        "\n**Floor ratio, paired** (each wrk run, c=8, between two single-thread floor "
        "batches; medians of the runs)\n\n" + table([*head, "ratio"], rows, "lrrrrr")
    )


def memory_table(report: dict[str, Any]) -> str:
    rows = []
    for label, m in report["memory"].items():
        roles = ", ".join(
            f"{r} {m['idle_rss_by_role_mb'].get(r, 0):.0f} → " + "/".join(f"{v:.0f}" for v in peaks)
            for r, peaks in m["peak_rss_by_role_mb"].items()
        )
        keys = ("idle_rss_mb", "peak_rss_tree_mb", "peak_pss_tree_mb")
        sizes = [f"{m[k]:.0f}" for k in (*keys, "peak_rss_largest_process_mb")]
        rows.append([label, m["processes"], *sizes, roles])
    head = ["server", "processes", "idle RSS", "peak RSS, 100 MP JPEG → 300 px (3 + c=4 for 4 s)"]
    head += ["peak PSS", "largest process", "per process: idle → peak"]
    return (
        "\n**Memory** (MB; RSS peak = sum of each process's VmHWM; PSS peak = the largest "
        "sum of PSS over the tree, sampled every 0.1 s: shared pages counted once)\n\n"
        + table(head, rows, "lrrrrrl")
    )


def markdown(report: dict[str, Any], titles: dict[str, str]) -> str:
    """The whole report: against thumbor per layout, layouts, floor, memory, machine."""
    out = [versus_peer(report, titles, layout) for layout in LAYOUTS]
    out += [one_vs_two(report, titles), floor_tables(report)]
    if report.get("floor_pairs"):
        out.append(pairs_table(report))
    if report["memory"]:
        out.append(memory_table(report))
    out.append(
        f"\nMachine: {report['cores']} cores shared with other engineers. Load average "
        f"{report['load_before'][0]:.1f} before, {report['load_after'][0]:.1f} after; during "
        f"the matrix the machine was busy {report['machine_busy_cores']:.2f} cores on "
        f"average, of which the servers under test used {report['servers_busy_cores']:.2f} "
        f"(wrk and other people's work the rest). Run took {report['elapsed_s'] / 60:.1f} min."
    )
    return "\n".join(out)


def headline(report: dict[str, Any]) -> list[str]:
    """The ratios a reader wants first: pixelmill / thumbor, and to the floor."""
    lines = []
    for layout, label in LAYOUTS.items():
        r = ratios(report, layout)
        lines.append(
            f"pixelmill ({label}) / thumbor req/s, geometric mean over "
            f"{len(report['results'])} render(s): misses {geomean(r['miss']):.2f}x, "
            f"hits {geomean(r['hit']):.2f}x"
        )
    for name, runs in report.get("floor_pairs", {}).items():
        lines.append(
            f"12 MP → 300 px cache misses, {LAYOUTS[name[3]]}: floor CPU / server CPU per "
            f"request {median([x['ratio'] for x in runs]):.2f} (paired runs: {len(runs)})"
        )
    return lines
