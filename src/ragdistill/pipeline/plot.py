"""Stage plot: accuracy per method and dataset, and the training loss curves, as PNG."""

from __future__ import annotations

from ragdistill import paths
from ragdistill.io import read_json
from ragdistill.log import log
from ragdistill.plots import plot_accuracy, plot_loss_curves


def run() -> None:
    summary = read_json(paths.REPORTS / "summary.json")
    plot_accuracy(summary, paths.REPORTS / "figures" / "accuracy.png")
    histories = {f"{dataset}/{name}": row.get("loss_history", [])
                 for dataset, info in summary.items() for name, row in info["rows"].items()}
    plot_loss_curves(histories, paths.REPORTS / "figures" / "loss.png")
    log("wrote reports/figures/accuracy.png and reports/figures/loss.png")
