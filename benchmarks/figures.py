"""The report's figures, drawn from the stored results with matplotlib (Agg, no display).

`write_figures(stored, folder)` writes one PNG per figure whose sections are stored and
returns [(title, path)]: throughput against the matrix-product floor and the hand-written
PyTorch loop, test accuracy against the number of labels, clustering accuracy per method.
"""

import statistics
from pathlib import Path

from benchmarks.row_names import (AE_KMEANS, CONTROL, DEC, FINE_TUNED, KMEANS_RAW, N2D, N2D_RAW,
                                  PRETRAINED, RANDOM_INIT)

BIG = "784-1000-1000-1000"
PRECISIONS = ("float32", "mixed_bfloat16")
RUNNERS = ("jax", "tensorflow", "torch", "torch-handwritten")
COLORS = {"jax": "#4C72B0", "tensorflow": "#DD8452", "torch": "#55A868",
          "torch-handwritten": "#8C8C8C"}
TARGET_ACCURACY = 0.62  # the clustering targets
# DEC-keras's published means over its 10 trials (results/exp1/results.csv of its repository).
DEC_KERAS_PUBLISHED = {AE_KMEANS: 0.606, DEC: 0.618}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True})
    return plt


def _default_steps(section, batch=None):
    """{(runner, precision): step record} of the tied 1000-wide stack with library defaults."""
    found = {}
    for run in section.get("runs", []):
        env = {k for k in run.get("env", {}) if k != "KERAS_BACKEND"}
        if env or any(a in run.get("args", []) for a in ("--jit-compile", "--variants",
                                                         "--steps-per-execution")):
            continue
        for r in run.get("payload", {}).get("results", []):
            if ("step_seconds" in r and r["arch"] == BIG and r["variant"] in ("tied", "tied-pretraining")
                    and (batch is None or r["batch_size"] == batch)):
                if r["variant"] == "tied-pretraining":  # what the stacks run, where measured
                    found[(run["name"], r["precision"])] = r
                else:
                    found.setdefault((run["name"], r["precision"]), r)
    return found


def _throughput_panel(ax, steps, title):
    runners = [name for name in RUNNERS if any((name, p) in steps for p in PRECISIONS)]
    width = 0.8 / max(len(runners), 1)
    for i, name in enumerate(runners):
        for j, precision in enumerate(PRECISIONS):
            r = steps.get((name, precision))
            if r is None:
                continue
            x = j + (i - (len(runners) - 1) / 2) * width
            bar = ax.bar(x, r["samples_per_second"], width * 0.9, color=COLORS[name],
                         label=name if j == 0 or (name, "float32") not in steps else None)
            ax.bar_label(bar, [_short_rate(r["samples_per_second"])], fontsize=7, padding=2)
            ax.hlines(r["floor_samples_per_second"], x - width * 0.45, x + width * 0.45,
                      colors="black", linewidth=2,
                      label="matrix-product floor" if (i, j) == (0, 0) else None)
    ax.set_xticks(range(len(PRECISIONS)), PRECISIONS)
    ax.set_ylabel("samples / s (tied 784-1000-1000-1000)")
    ax.set_title(title)
    ax.yaxis.set_major_formatter(lambda v, _: _short_rate(v))


def _short_rate(v):
    return f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 or v == 0 else f"{v / 1e3:.1f}k"


def throughput(stored, path):
    panels = []
    if "speed" in stored:
        cpus = stored["speed"]["machine"]["logical_cpus"]
        panels.append((_default_steps(stored["speed"]), f"CPU ({cpus} cores), batch 256"))
    if "gpu" in stored:
        steps = _default_steps(stored["gpu"])
        large = max((r["batch_size"] for r in steps.values()), default=None)
        gpu = (stored["gpu"]["machine"].get("gpus") or ["GPU"])[0].split(",")[0]
        panels.append((_default_steps(stored["gpu"], large), f"{gpu}, batch {large}"))
    panels = [(steps, title) for steps, title in panels if steps]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (steps, title) in zip(axes[0], panels):
        _throughput_panel(ax, steps, title)
    handles = {label: h for ax in axes[0] for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle("Training throughput: tiedae's pretraining step per backend and a hand-written "
                 "PyTorch loop (bars)\nagainst their matrix products alone (black line); GPU bars: "
                 "the plain Keras model", fontsize=10)
    if "gpu" in stored:
        fig.text(0.99, 0.005, "GPU float32: jax multiplies in TF32, torch in true float32 "
                 "(see the GPU section)", ha="right", va="bottom", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return _save(plt, fig, path)


def _raw(stored, name):
    return next((run["payload"]["raw"] for run in stored.get(name, {}).get("runs", [])
                 if "raw" in run.get("payload", {})), {})


def accuracy_curves(stored):
    """[(label, style, {labels: [accuracies]})] from the quality and semi sections."""
    quality, semi = _raw(stored, "quality"), _raw(stored, "semi")
    all_n = stored.get("quality", {}).get("settings", {}).get("all_labels_n")
    few = {int(n): rows for n, rows in quality.get("few_labels", {}).items()}

    def points(rows_by_n, method):
        return {n: rows[method] for n, rows in rows_by_n.items() if rows.get(method)}

    curves = []
    for label, method, style in ((FINE_TUNED + " (Adam)", FINE_TUNED, "-o"),
                                 (RANDOM_INIT, RANDOM_INIT, "--o"),
                                 ("logistic regression", "sklearn LogisticRegression", ":s")):
        values = points(few, method)
        if all_n and quality.get("all_labels", {}).get(method):
            values[all_n] = quality["all_labels"][method]
        curves.append((label, style, values))
    semi_few = {int(n): rows for n, rows in semi.get("few_labels", {}).items()}
    curves += [("SdA pretrained, semi-supervised", "-^", points(semi_few, PRETRAINED)),
               ("same, random init", "--^", points(semi_few, CONTROL))]
    mlp = [m for m in quality.get("all_labels", {}) if m.startswith("sklearn MLPClassifier")]
    if all_n and mlp:
        curves.append(("scikit-learn MLPClassifier", "D", {all_n: quality["all_labels"][mlp[0]]}))
    return [c for c in curves if c[2]]


def accuracy(stored, path):
    curves = accuracy_curves(stored)
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = ["#4C72B0", "#4C72B0", "#8C8C8C", "#C44E52", "#C44E52", "#8172B3"]
    for (label, style, values), color in zip(curves, colors):
        ns = sorted(values)
        ax.errorbar(ns, [statistics.fmean(values[n]) * 100 for n in ns],
                    yerr=[statistics.pstdev(values[n]) * 100 for n in ns], fmt=style, color=color,
                    capsize=3, label=label, markersize=5)
    ax.set_xscale("log")
    ns = sorted({n for _, _, values in curves for n in values})
    ax.set_xticks(ns, [f"{n:,}" for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel("test accuracy, % (mean ± sd over seeds)")
    ax.set_title("Fashion-MNIST: accuracy against the number of labels")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(plt, fig, path)


CLUSTER_ROWS = (("AE + k-means", AE_KMEANS), ("DEC", DEC), ("N2D (UMAP of code)", N2D),
                ("UMAP of pixels", N2D_RAW), ("k-means on PCA-10", "k-means on PCA-10"),
                ("k-means on pixels", KMEANS_RAW))


def clustering(stored, path):
    recipes = []  # (label, {row: [accuracies]})
    for name, label in (("clustering", "short CPU recipe"), ("gpu_clustering", "DEC-keras recipe (GPU)")):
        runs = stored.get(name, {}).get("runs", [])
        if runs and "raw" in runs[0].get("payload", {}):
            rows = runs[0]["payload"]["raw"]["clustering"]
            recipes.append((label, {row: rows[row]["accuracy"] for row in rows}))
    if not recipes:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    height = 0.8 / len(recipes)
    for i, ((label, rows), color) in enumerate(zip(recipes, ("#4C72B0", "#DD8452"))):
        for k, (_, row) in enumerate(CLUSTER_ROWS):
            if rows.get(row):
                y = k + (i - (len(recipes) - 1) / 2) * height
                ax.barh(y, statistics.fmean(rows[row]) * 100, height * 0.9, color=color,
                        xerr=statistics.pstdev(rows[row]) * 100, capsize=2,
                        label=label if k == 0 else None)
    ax.axvline(TARGET_ACCURACY * 100, color="#C44E52", linestyle="--", label="target 62%")
    rows = [row for _, row in CLUSTER_ROWS]
    ax.scatter([v * 100 for v in DEC_KERAS_PUBLISHED.values()],
               [rows.index(row) for row in DEC_KERAS_PUBLISHED], marker="D", color="black",
               zorder=3, s=22, label="DEC-keras, published")
    ax.set_yticks(range(len(CLUSTER_ROWS)), [label for label, _ in CLUSTER_ROWS])
    ax.invert_yaxis()
    ax.set_xlim(40, 70)
    ax.set_xlabel("clustering accuracy, % (10 clusters, mean ± sd over seeds)")
    ax.set_title("Fashion-MNIST: clustering accuracy per method")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(plt, fig, path)


def _save(plt, fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


FIGURES = (("Throughput against the matrix-product floor", "throughput.png", throughput),
           ("Test accuracy against the number of labels", "accuracy_vs_labels.png", accuracy),
           ("Clustering accuracy per method", "clustering.png", clustering))


def write_figures(stored, folder):
    """Draw every figure whose sections are stored into `folder`; [(title, path)]."""
    drawn = [(title, draw(stored, Path(folder) / filename)) for title, filename, draw in FIGURES]
    return [(title, path) for title, path in drawn if path is not None]
