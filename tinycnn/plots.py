"""Pictures of a training run (needs matplotlib): learning curves and the conv1 filters (the paper's Figure 3)."""
import numpy as np


def filter_grid(weight, columns=None, pad=1):
    """conv1 weights (F, 3, KH, KW) -> one RGB image (rows*(KH+pad), columns*(KW+pad), 3) in [0, 1],
    each filter stretched to the full range on its own so its pattern shows."""
    F, _, KH, KW = weight.shape
    columns = columns or int(np.ceil(np.sqrt(F)))
    rows = int(np.ceil(F / columns))
    grid = np.ones((rows * (KH + pad) + pad, columns * (KW + pad) + pad, 3))
    for f in range(F):
        w = weight[f].transpose(1, 2, 0).astype(np.float64)
        w = (w - w.min()) / (np.ptp(w) or 1.0)
        r, c = divmod(f, columns)
        grid[pad + r * (KH + pad):pad + r * (KH + pad) + KH, pad + c * (KW + pad):pad + c * (KW + pad) + KW] = w
    return grid


def save_run_pictures(history, conv1_weight, out_dir):
    """Write curves.png and conv1_filters.png into out_dir; returns the paths written ([] without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    right.plot(epochs, [1 - h["train_top1"] for h in history], "o-", label="train")
    right.plot(epochs, [1 - h["val_top1"] for h in history], "o-", label="validation")
    right.set(xlabel="epoch", ylabel="top-1 error", title="error")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    curves = f"{out_dir}/curves.png"
    fig.savefig(curves, dpi=100)
    plt.close(fig)
    fig = plt.figure(figsize=(6, 6))
    plt.imshow(filter_grid(conv1_weight), interpolation="nearest")
    plt.axis("off")
    plt.title(f"conv1: {conv1_weight.shape[0]} filters of {conv1_weight.shape[2]}x{conv1_weight.shape[3]}x3")
    filters = f"{out_dir}/conv1_filters.png"
    fig.savefig(filters, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [curves, filters]
