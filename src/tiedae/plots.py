"""Figures of a run: loss curves, first-layer filters, reconstructions, 2-D embedding, reference mapping.

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
        _scatter_groups(ax, xy, labels, "label")
    _pc_axes(ax, "Learned code (2-D PCA)")
    return _save(fig, path)


def _scatter_groups(ax, xy, groups, title, order=None):
    """One colour per group (legend up to 20 groups); `order` fixes the colours' order."""
    names = list(order) if order is not None else [str(v) for v in np.unique(np.asarray(groups))]
    groups = np.asarray(groups).astype(str)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        sel = groups == name
        color = "lightgray" if name == "Unknown" else cmap(i % cmap.N)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.7, color=color, label=name)
    if len(names) <= 20:
        ax.legend(markerscale=3, fontsize=7, loc="best", title=title)


def _pc_axes(ax, title):
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)


# ----------------------------------------------------------------------------- reference mapping


def plot_confusion_matrix(true_labels, predicted_labels, path):
    """Query cells by their own label (rows) and transferred label (columns), rows as fractions.

    Columns are the query's own types first, then other transferred labels,
    "Unknown" last; each cell shows its count.
    """
    true_labels = np.asarray(true_labels).astype(str)
    predicted_labels = np.asarray(predicted_labels).astype(str)
    rows = list(np.unique(true_labels))
    extra = sorted(set(np.unique(predicted_labels)) - set(rows) - {"Unknown"})
    cols = [r for r in rows if r != "Unknown"] + extra + (["Unknown"] if "Unknown" in predicted_labels else [])
    counts = np.zeros((len(rows), len(cols)), dtype=np.int64)
    row_of = {name: i for i, name in enumerate(rows)}
    col_of = {name: j for j, name in enumerate(cols)}
    np.add.at(counts, ([row_of[t] for t in true_labels], [col_of[p] for p in predicted_labels]), 1)
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.45 * max(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    if len(rows) * len(cols) <= 900:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if fractions[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("transferred label")
    ax.set_ylabel("query's own label")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    ax.set_title(f"Label transfer, accuracy {np.mean(true_labels == predicted_labels):.1%}")
    return _save(fig, path)


def plot_confidence_histogram(confidence, threshold, path):
    """The per-cell confidence (largest class probability), with the Unknown threshold."""
    confidence = np.asarray(confidence, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.hist(confidence, bins=np.linspace(0, 1, 41), color="tab:blue", alpha=0.8)
    ax.axvline(threshold, color="tab:red", ls="--",
               label=f"threshold {threshold:g}: {np.mean(confidence < threshold):.1%} Unknown")
    ax.set_xlabel("confidence (largest class probability)")
    ax.set_ylabel("query cells")
    ax.legend(fontsize=8)
    ax.set_title("Mapping confidence")
    return _save(fig, path)


def plot_mapping_embedding(reference_codes, reference_labels, query_codes, query_labels, path,
                           max_points=20000):
    """Reference and query cells in one 2-D PCA, coloured by label (left) and by dataset (right)."""
    rng = np.random.default_rng(0)

    def subset(codes, labels, n):
        codes, labels = np.asarray(codes), np.asarray(labels).astype(str)
        keep = np.sort(rng.choice(len(codes), n, replace=False)) if len(codes) > n else slice(None)
        return codes[keep], labels[keep]

    reference_codes, reference_labels = subset(reference_codes, reference_labels, max_points // 2)
    query_codes, query_labels = subset(query_codes, query_labels, max_points // 2)
    xy = embedding_2d(np.concatenate([reference_codes, query_codes]))
    labels = np.concatenate([reference_labels, query_labels])
    dataset = np.array(["reference"] * len(reference_codes) + ["query"] * len(query_codes))
    order = sorted(set(labels) - {"Unknown"}) + (["Unknown"] if "Unknown" in labels else [])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharex=True, sharey=True)
    _scatter_groups(axes[0], xy, labels, "label", order)
    _pc_axes(axes[0], "By label (reference: its own; query: transferred)")
    _scatter_groups(axes[1], xy, dataset, "dataset", ["reference", "query"])
    _pc_axes(axes[1], "By dataset")
    return _save(fig, path)
