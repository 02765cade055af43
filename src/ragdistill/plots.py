"""Figures as PNG (``dvc plots show`` writes HTML that needs a CDN; PNGs work offline)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

METHOD_ORDER = ["finetune", "distill", "sbs"]
COLORS = {"finetune": "#4c72b0", "distill": "#dd8452", "sbs": "#55a868"}


def plot_accuracy(summary: dict, output: str | Path) -> Path:
    """One panel per dataset: accuracy with 95% bootstrap intervals per method, against the
    training fraction, with the teacher as a dashed line and the untrained student as a dotted one."""
    datasets = list(summary)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.8 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        info = summary[dataset]
        fraction = info["fraction"]
        for offset, method in enumerate(m for m in METHOD_ORDER if m in info["rows"]):
            row = info["rows"][method]
            x = fraction * (1 + 0.04 * (offset - 1))  # small dodge so the intervals do not overlap
            ax.errorbar([x], [row["accuracy"]], yerr=[[row["accuracy"] - row["ci_low"]],
                        [row["ci_high"] - row["accuracy"]]], fmt="o", capsize=4,
                        color=COLORS.get(method), label=f"{method} ({row['accuracy']:.1%})")
        for name, row in info["rows"].items():
            if name.startswith("teacher"):
                ax.axhline(row["accuracy"], color="gray", linestyle="--", label=f"{name} ({row['accuracy']:.1%})")
            elif name == "untrained":  # the control: a student below this line did not learn
                ax.axhline(row["accuracy"], color="black", linestyle=":",
                           label=f"untrained student ({row['accuracy']:.1%})")
        ax.set_title(f"{dataset}: {info['train_examples']} training examples")
        ax.set_xlabel("fraction of the training set")
        ax.set_ylabel("accuracy on the evaluation split")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, 1.1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return _save(fig, output)


def plot_loss_curves(histories: dict[str, list[dict]], output: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, history in histories.items():
        if history:
            ax.plot([h["step"] for h in history], [h["loss"] for h in history], label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (weighted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, output)


def _finish(fig, ax, title: str, xlabel: str, output: str | Path, xticks: list[float] | None = None) -> Path:
    """Log-x accuracy axes with the legend outside, saved as PNG; ``xticks`` labelled as percentages."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy on the evaluation split")
    ax.set_xscale("log")
    if xticks:
        ax.set_xticks(xticks, [f"{100 * x:g}%" for x in xticks])
        ax.minorticks_off()
    else:  # plain numbers at 1, 2, 5 x 10^k; matplotlib's default labels minor ticks as overlapping powers
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, output)


def _style(label: str) -> dict:
    """Colour by method, marker by teacher, hollow when the student reads evidence."""
    if label.startswith("majority"):
        return {"color": "black", "marker": "x"}
    method = next((m for m in METHOD_ORDER if label.startswith(m)), "teacher")
    color = COLORS.get(method, "gray")
    marker = "s" if "rag" in label else "o"
    return {"color": color, "marker": marker, "markerfacecolor": "none" if "evidence" in label else color}


def plot_accuracy_vs_fraction(per_fraction: dict[float, dict[str, dict]], output: str | Path, title: str) -> Path:
    """Accuracy (95% interval) against the training fraction, one line per row of the study table."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labels = sorted({label for rows in per_fraction.values() for label in rows})
    for offset, label in enumerate(labels):
        points = [(f, rows[label]) for f, rows in sorted(per_fraction.items()) if label in rows]
        xs = [f * (1 + 0.025 * (offset - len(labels) / 2)) for f, _ in points]  # dodge overlapping bars
        ys = [r["accuracy"] for _, r in points]
        err = [[r["accuracy"] - r["ci_low"] for _, r in points], [r["ci_high"] - r["accuracy"] for _, r in points]]
        style = _style(label)
        linestyle = "--" if label.startswith("teacher") else ":" if label.startswith("majority") else "-"
        ax.errorbar(xs, ys, yerr=err, capsize=3, linestyle=linestyle, label=label, **style)
    return _finish(fig, ax, title, "fraction of the training set", output, xticks=sorted(per_fraction))


def plot_accuracy_vs_latency(rows: dict[str, dict], output: str | Path, title: str) -> Path:
    """Accuracy (95% interval) against seconds per question at batch 1 (log scale)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, row in rows.items():
        if row.get("latency_s") is None:
            continue
        ax.errorbar([row["latency_s"]], [row["accuracy"]], capsize=3, linestyle="none", label=label,
                    yerr=[[row["accuracy"] - row["ci_low"]], [row["ci_high"] - row["accuracy"]]], **_style(label))
    return _finish(fig, ax, title, "latency per question, s (batch 1, CPU; the report names the machines)", output)


def _save(fig, output: str | Path) -> Path:
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
