"""Pictures of a training run (needs matplotlib): learning curves, the conv1 filters (the paper's Figure 3) and
a confusion matrix. Each file is written whole or not at all (checkpoint.atomic_open)."""
import numpy as np

from .checkpoint import atomic_open


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


def pyplot():
    """matplotlib.pyplot drawing to files only, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig, path, **kwargs):
    """Write fig as a PNG at path, atomically, and close it. -> path"""
    plt = pyplot()
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=100, **kwargs)
    plt.close(fig)
    return path


def curves_figure(history):
    """Loss and top-1 error against the epoch, training and validation; the epoch axis has whole-number ticks."""
    from matplotlib.ticker import MaxNLocator
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    right.plot(epochs, [1 - h["train_top1"] for h in history], "o-", label="train")
    right.plot(epochs, [1 - h["val_top1"] for h in history], "o-", label="validation")
    right.set(xlabel="epoch", ylabel="top-1 error", title="error")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_run_pictures(history, conv1_weight, out_dir):
    """Write curves.png and conv1_filters.png into out_dir; returns the paths written ([] without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return []
    curves = save(curves_figure(history), f"{out_dir}/curves.png")
    fig = plt.figure(figsize=(6, 6))
    plt.imshow(filter_grid(conv1_weight), interpolation="nearest")
    plt.axis("off")
    plt.title(f"conv1: {conv1_weight.shape[0]} filters of {conv1_weight.shape[2]}x{conv1_weight.shape[3]}x3")
    return [curves, save(fig, f"{out_dir}/conv1_filters.png", bbox_inches="tight")]


def save_confusion(counts, rows, columns, path, title):
    """counts (len(rows), len(columns)) as a picture at path, each cell labelled when there are few classes.
    -> path, or None without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    side = min(4 + 0.45 * max(len(rows), len(columns)), 40)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(counts, cmap="Blues")
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if max(len(rows), len(columns)) <= 30:
        ax.set_xticks(range(len(columns)), columns, rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        for (t, p), n in np.ndenumerate(counts):
            ax.text(p, t, str(n), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
    fig.tight_layout()
    return save(fig, path)
