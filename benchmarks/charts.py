"""Charts and result files for the Brian2 benchmarks (matplotlib is optional: ``.[bench]``).

``write_results`` writes a benchmark's table (``NAME.txt``), its figures (``NAME.json``) and,
when matplotlib is installed, a chart (``NAME.png``): one panel per model, per variant a group
of bars (one per figure: wall, start, loop ...) on a log scale. Without matplotlib the table
and figures are written all the same and a line says the chart was skipped.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

#: Colours of the figures, the same in every chart.
COLOURS = {
    "wall": "#4c72b0",
    "start": "#dd8452",
    "setup": "#937860",
    "loop": "#55a868",
}
LABELS = {
    "wall": "wall (process)",
    "start": "start (wall - loop)",
    "setup": "set-up (construction + codegen)",
    "loop": "loop (Brian2's step loop)",
}


def machine() -> dict[str, object]:
    """What ran the benchmark: host, CPUs, load at this moment, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "system": f"{platform.system()} {platform.machine()}",
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load": load_now(),
        "python": platform.python_version(),
    }


def load_now() -> float | None:
    """The 1-minute load average, where the system tells it."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def describe(info: dict[str, object]) -> str:
    load = "" if info.get("load_start") is None else (
        f", load {info['load_start']} at start, {info.get('load_end')} at end"
        + (f", {info['load_peak']} at most" if info.get("load_peak") is not None else "")
    )
    return f"{info['date']}, {info['cpus']} CPUs ({info['cpu']}){load}, Python {info['python']}"


def draw(
    path: Path,
    title: str,
    models: list[str],
    variants: list[str],
    figures: list[str],
    table: dict[tuple[str, str], dict[str, float]],
    note: str,
) -> bool:
    """A PNG at ``path``: one panel per model, per variant one bar per figure, log scale.
    False (and nothing written) when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in models if any((m, v) in table for v in variants)]
    columns = min(2, len(models))
    rows = (len(models) + columns - 1) // columns
    fig, axes = plt.subplots(
        rows, columns, figsize=(6.5 * columns, 1.2 + 3.8 * rows), sharey=True, squeeze=False,
        layout="constrained",
    )
    width = 0.8 / len(figures)
    positive = [
        table[key][f] for key in table for f in figures if table[key].get(f, 0) > 0
    ]
    low, high = min(positive), max(positive)
    for ax, model in zip(axes.flat, models):
        shown = [v for v in variants if (model, v) in table]
        for i, figure in enumerate(figures):
            xs = [j + (i - (len(figures) - 1) / 2) * width for j in range(len(shown))]
            # a zero (or negative: start = wall - loop) cannot sit on a log axis: draw nothing
            ys = [max(table[model, v].get(figure, 0.0), 0.0) or float("nan") for v in shown]
            ax.bar(xs, ys, width, color=COLOURS.get(figure), label=LABELS.get(figure, figure))
        ax.set_yscale("log")
        ax.set_ylim(low / 2, high * 30)
        ax.set_title(model)
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels(shown, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", which="major", alpha=0.3)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("seconds (log scale)")
    # the legend sits in the room the log axis leaves above the highest bar
    axes.flat[0].legend(loc="upper left", ncol=len(figures) if len(figures) < 4 else 2, fontsize=8,
                        frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.supxlabel(note, fontsize=7, color="#444444")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_results(
    out: Path,
    name: str,
    text: str,
    data: dict,
    chart: dict,
) -> None:
    """``out/name.txt`` (the table as printed), ``out/name.json`` and ``out/name.png``;
    ``chart`` holds draw()'s arguments but the path. Says on stderr what it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    written = [out / f"{name}.txt", out / f"{name}.json"]
    png = out / f"{name}.png"
    if draw(png, **chart):
        written.append(png)
    else:
        print("matplotlib is not installed: skipped the chart "
              "(pip install 'sobuild[bench]' or matplotlib)", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
