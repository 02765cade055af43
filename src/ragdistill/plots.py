"""Figures as PNG (``dvc plots show`` writes HTML that needs a CDN; PNGs work offline)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHOD_ORDER = ["finetune", "distill", "sbs"]
COLORS = {"finetune": "#4c72b0", "distill": "#dd8452", "sbs": "#55a868"}


def plot_accuracy(summary: dict, output: str | Path) -> Path:
    """One panel per dataset: accuracy with 95% bootstrap intervals per method, against the
    training fraction, with the teacher as a dashed line."""
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
        ax.set_title(f"{dataset}: {info['train_examples']} training examples")
        ax.set_xlabel("fraction of the training set")
        ax.set_ylabel("accuracy on the evaluation split")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, 1.1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output


def plot_loss_curves(histories: dict[str, list[dict]], output: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, history in histories.items():
        if history:
            ax.plot([h["step"] for h in history], [h["loss"] for h in history], label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (weighted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
