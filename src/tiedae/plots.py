"""Figures of a run: loss curves, first-layer filters, reconstructions, 2-D embedding.

Every function writes one PNG atomically and returns its path. Matplotlib runs
on the non-interactive Agg backend, so no display is needed.
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tiedae.io.atomic import atomic_path  # noqa: E402


def infer_image_shape(n_features):
    """(side, side) when `n_features` is a perfect square > 1, else None."""
    side = math.isqrt(int(n_features))
    return (side, side) if side > 1 and side * side == n_features else None


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_loss_curves(layer_histories, path, finetune_history=None):
    """One panel per pretrained layer (train and validation loss per epoch)."""
    panels = list(layer_histories) + ([finetune_history] if finetune_history else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for k, (ax, history) in enumerate(zip(axes[0], panels)):
        finetune = finetune_history is not None and k == len(panels) - 1
        for key, style in (("loss", "-"), ("val_loss", "--")):
            values = history.get(key) or []
            if len(values):
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o", markersize=3, label=key)
        ax.set_title("fine-tuning" if finetune else f"layer {k + 1}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.set_ylabel("reconstruction loss")
        ax.legend(fontsize=8)
    fig.suptitle("Greedy layer-wise pretraining", y=1.04)
    return _save(fig, path)


def plot_filters(kernel, image_shape, path, max_filters=100):
    """First-layer filters (kernel columns) as an image grid, as in Vincent et al.'s figures."""
    kernel = np.asarray(kernel, dtype=np.float32)
    n = min(kernel.shape[1], max_filters)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            w = kernel[:, i]
            scale = np.abs(w).max() or 1.0
            ax.imshow(w.reshape(image_shape), cmap="gray", vmin=-scale, vmax=scale)
    fig.suptitle(f"First-layer filters ({n} of {kernel.shape[1]})")
    return _save(fig, path)


def plot_reconstructions(inputs, reconstructions, path, image_shape=None, n=10):
    """Inputs (top) against their reconstructions (bottom)."""
    inputs = np.asarray(inputs)[:n]
    reconstructions = np.asarray(reconstructions)[:n]
    n = len(inputs)
    if image_shape is not None:
        fig, axes = plt.subplots(2, n, figsize=(n * 1.0, 2.2), squeeze=False)
        for i in range(n):
            for row, data in enumerate((inputs, reconstructions)):
                axes[row, i].imshow(data[i].reshape(image_shape), cmap="gray")
                axes[row, i].axis("off")
        axes[0, 0].set_title("input", fontsize=8, loc="left")
        axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    else:
        fig, axes = plt.subplots(n, 1, figsize=(7, 1.1 * n), squeeze=False, sharex=True)
        for i in range(n):
            axes[i, 0].plot(inputs[i], lw=1, label="input")
            axes[i, 0].plot(reconstructions[i], lw=1, label="reconstruction")
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("feature")
    fig.suptitle("Input vs reconstruction")
    return _save(fig, path)


def embedding_2d(codes):
    """The first two principal components of `codes` (the codes themselves when 2-D)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[1] <= 2:
        return np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(codes)


def plot_embedding(codes, path, labels=None, max_points=20000):
    """2-D view (PCA) of the code, coloured by label when labels are given."""
    codes = np.asarray(codes)
    if len(codes) > max_points:  # keep the figure light: a fixed random subset
        keep = np.random.default_rng(0).choice(len(codes), max_points, replace=False)
        codes = codes[keep]
        labels = None if labels is None else np.asarray(labels)[keep]
    xy = embedding_2d(codes)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, cls in enumerate(classes):
            sel = labels == cls
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.7, color=cmap(i % cmap.N), label=str(cls))
        if len(classes) <= 20:
            ax.legend(markerscale=3, fontsize=7, loc="best", title="label")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("Learned code (2-D PCA)")
    return _save(fig, path)
