"""Stage plot: accuracy per method and fraction, and training loss curves, as PNG."""

from ragdistill import paths
from ragdistill.io import read_json
from ragdistill.plots import plot_accuracy, plot_loss_curves

summary = read_json(paths.REPORTS / "summary.json")
plot_accuracy(summary, paths.REPORTS / "figures" / "accuracy.png")
histories = {f"{dataset}/{name}": row.get("loss_history", [])
             for dataset, info in summary.items() for name, row in info["rows"].items()}
plot_loss_curves(histories, paths.REPORTS / "figures" / "loss.png")
print("[ragdistill] wrote reports/figures/accuracy.png and reports/figures/loss.png")
