"""Results of a benchmark run: rows, readable tables, the CSV and the log-log plot."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = [
    "EXTRAPOLATED",
    "MEASURED",
    "SUMMED",
    "Row",
    "format_ratio",
    "format_seconds",
    "is_extrapolated",
    "plot",
    "table",
    "write_csv",
]

MEASURED = "measured"
EXTRAPOLATED = "extrapolated"  # the per-pixel reference, scaled by pixel count from its largest run
SUMMED = "sum"  # the per-pixel reference masks plus the measured pixel stage


def is_extrapolated(source: str) -> bool:
    return EXTRAPOLATED in source


@dataclass(frozen=True)
class Row:
    """One timed (or derived) figure: seconds per call of ``method`` for one case."""

    device: str
    stage: str        # "post_sample" or "stage1"
    method: str
    latent_size: int
    batch: int
    median_s: float
    best_s: float
    repeats: int
    source: str = MEASURED

    @property
    def picture_size(self) -> int:
        return self.latent_size * 8

    @property
    def pixels(self) -> int:
        """Picture pixels in the whole batch: the x axis of the plot."""
        return self.picture_size ** 2 * self.batch


def format_seconds(seconds: float | None, source: str = MEASURED) -> str:
    """``12.3 ms`` / ``1.52 s`` / ``95 µs``; ``~`` in front of a figure that was not measured."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        text = f"{seconds:.3g} s"
    elif seconds >= 1e-3:
        text = f"{seconds * 1e3:.3g} ms"
    else:
        text = f"{seconds * 1e6:.3g} µs"
    return ("~" + text) if is_extrapolated(source) else text


def format_ratio(numerator: float | None, denominator: float | None, source: str = MEASURED) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "-"
    ratio = numerator / denominator
    text = f"{ratio:.3g}×" if ratio < 1000 else f"{ratio:,.0f}×"
    return ("~" + text) if is_extrapolated(source) else text


def table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the first two left-aligned, numbers right-aligned."""
    rows = [list(header), *(list(r) for r in body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def write_csv(rows: Sequence[Row], path: Path) -> None:
    names = [f.name for f in fields(Row)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=[*names, "picture_size", "pixels"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**asdict(row), "picture_size": row.picture_size, "pixels": row.pixels})


_BATCH_MARKERS = "os^Dvp*"


def plot(rows: Sequence[Row], path: Path, title: str) -> bool:
    """Log-log time against picture pixels per batch, one panel per stage; False without matplotlib.

    One colour per method and device; a line joins its points of equal batch size, and the
    marker shape tells the batch. Hollow markers on dashed lines were extrapolated.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    stages = [s for s in ("post_sample", "stage1") if any(r.stage == s for r in rows)]
    if not stages:
        return False
    batches = sorted({r.batch for r in rows})
    marker = {b: _BATCH_MARKERS[i % len(_BATCH_MARKERS)] for i, b in enumerate(batches)}
    titles = {"post_sample": "after sampling (once per batch)", "stage1": "per sampler step"}
    fig, axes = plt.subplots(1, len(stages), figsize=(6.5 * len(stages), 5), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        series: dict[tuple[str, str], list[Row]] = {}
        for row in rows:
            if row.stage == stage:
                series.setdefault((row.device, row.method), []).append(row)
        for index, ((device, method), points) in enumerate(series.items()):
            colour = f"C{index % 10}"
            ax.plot([], [], "-", color=colour, label=f"{method} ({device})")
            for batch in batches:
                same = sorted((r for r in points if r.batch == batch), key=lambda r: r.pixels)
                if not same:
                    continue
                dashed = any(is_extrapolated(r.source) for r in same)
                ax.plot([r.pixels for r in same], [r.median_s for r in same], "--" if dashed else "-",
                        color=colour, alpha=0.6)
                for r in same:
                    hollow = is_extrapolated(r.source)
                    ax.plot(r.pixels, r.median_s, marker[batch], color=colour,
                            markerfacecolor="none" if hollow else colour)
        for batch in batches:
            ax.plot([], [], marker[batch], color="grey", linestyle="none", label=f"batch {batch}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("picture pixels in the batch (latent pixels × 64)")
        ax.set_ylabel("seconds (median)")
        ax.set_title(titles[stage])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title + "\nhollow markers, dashed lines: extrapolated from the per-pixel cost", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
