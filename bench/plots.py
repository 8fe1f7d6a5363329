"""The plots: time against the number of revisions (make bench) and the application's
latency per second under each migration (make bench-load). matplotlib, from the [bench]
extra (output.require_matplotlib says so before a run starts, not after).
"""

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def time_vs_revisions(data: dict, path: Path) -> None:
    """Base to head and the no-op at head per tool, and the import floor, against N."""
    plt = _pyplot()
    results, labels = data["results"], data["labels"]
    sizes = sorted(results)
    figure, axis = plt.subplots(figsize=(8, 5), dpi=110)
    for name, label in labels.items():
        points = [(n, results[n][name]) for n in sizes if name in results[n]]
        line = axis.plot(
            [n for n, _ in points],
            [fig.up_median for _, fig in points],
            marker="o",
            label=f"{label}: base to head",
        )
        noop = [(n, fig.noop_median) for n, fig in points if fig.noop_median is not None]
        if noop:
            axis.plot(
                [n for n, _ in noop],
                [value for _, value in noop],
                linestyle="--",
                marker=".",
                color=line[0].get_color(),
                alpha=0.6,
                label=f"{label}: no-op at head",
            )
    floors = data["floors"]
    axis.plot(
        sizes,
        [floors[n]["imports"] for n in sizes],
        color="grey",
        linestyle=":",
        label="import floor (alembic, sqlalchemy, psycopg2)",
    )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("number of revisions (each: CREATE TABLE + GIN index)")
    axis.set_ylabel("wall time, seconds (median)")
    axis.set_title("Migration time against number of revisions")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def load_latency(target: Path, runs: list, major: int) -> None:
    """p50, p99 and max per second of each pair's runs, the migration's time shaded."""
    plt = _pyplot()
    runs = [run for run in runs if run.way != "baseline"]
    pairs = list(dict.fromkeys(run.pair for run in runs))
    figure, axes = plt.subplots(len(pairs), 1, figsize=(10, 2.4 * len(pairs)), squeeze=False)
    for axis, pair in zip(axes[:, 0], pairs, strict=True):
        for run in (r for r in runs if r.pair == pair):
            color = {"naive": "tab:red", "safe": "tab:green"}.get(run.way, "tab:blue")
            seconds, _, p50, p99, worst = zip(*run.per_second(), strict=True)
            axis.plot(seconds, p99, label=f"{run.way} p99", color=color)
            axis.plot(
                seconds, worst, label=f"{run.way} max", color=color, linestyle=":", linewidth=0.8
            )
            axis.plot(
                seconds,
                p50,
                label=f"{run.way} p50",
                color=color,
                linestyle="--",
                linewidth=0.6,
                alpha=0.6,
            )
            axis.axvspan(0, run.seconds, alpha=0.08, color=color)
        axis.axhline(500, color="grey", linewidth=0.6, linestyle="--")
        axis.set_yscale("log")
        axis.set_title(pair, fontsize=9)
        axis.set_ylabel("ms")
        axis.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(
        "seconds from the migration's start (shaded: migration running; dashed: 500 ms)"
    )
    figure.suptitle(f"Application latency per second, naive vs safe (PostgreSQL {major})")
    figure.tight_layout()
    figure.savefig(target, dpi=90)
    plt.close(figure)
