"""Deep Embedded Clustering on Fashion-MNIST under DEC-keras's protocol.

    KERAS_BACKEND=jax python -m benchmarks.deep_clustering --json out.json --settings '{...}'

DEC-keras trains its autoencoder end to end for 200 epochs on all 70,000 images
(train and test: clustering uses no labels) and scores the clusters of those
same images. This module does the same with `tiedae.DeepEmbeddedClustering`:
(optional) greedy pretraining of the 500-500-2000-10 stack, end-to-end
fine-tuning of the unrolled stack on the clean input, k-means on the code (the
"autoencoder + k-means" row), then DEC's refinement (the "DEC" row); k-means on
raw pixels and on PCA-10 of the same images are the baselines. With
`umap_neighbors` in the settings, N2D (McConville et al. 2020) is measured too:
a Gaussian mixture on the UMAP embedding of the autoencoder's code (before DEC's
refinement, `autoencoder_code_`), with the same on raw pixels as its baseline.

Two sections run it: *gpu_clustering* with DEC-keras's long recipe (and a
variant with greedy pretraining first; seeds side by side on the GPU), and the
CPU *clustering* section with a recipe short enough for 2 cores (10 greedy and
10 end-to-end epochs with Adam, at most 2,000 DEC steps, the 60,000 training
images). The settings name the recipe.
"""

import statistics
import time

from benchmarks._util import quiet_backends

quiet_backends()

import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from benchmarks.quality import add_clustering_scores, kmeans_rows  # noqa: E402
from benchmarks.row_names import (  # noqa: E402
    AE_KMEANS,
    DEC,
    KMEANS_PCA,
    KMEANS_RAW,
    N2D,
    N2D_RAW,
)
from benchmarks.seeded import mean_seconds_note, run_seeded  # noqa: E402

ROWS = [AE_KMEANS, DEC, N2D]


def all_images(data, settings):
    """Training and test images together (the first `n_images` of them), with labels."""
    (x_train, y_train), (x_test, y_test) = data
    x = np.concatenate([x_train, x_test])[: settings["n_images"]]
    y = np.concatenate([y_train, y_test])[: settings["n_images"]]
    return x, y


def run_seed(seed, data, settings, out, log):
    from tiedae.estimators import DeepEmbeddedClustering

    x, y = all_images(data, settings)
    dec = DeepEmbeddedClustering(
        settings["n_clusters"], layer_sizes=settings["layer_sizes"],
        corruption_level=settings["corruption_level"], pretrain_epochs=settings["pretrain_epochs"],
        finetune_epochs=settings["finetune_epochs"], batch_size=256,
        early_stopping=False,  # the published recipes' fixed schedules
        kernel_initializer=settings["kernel_initializer"],
        finetune_optimizer=settings["finetune_optimizer"],
        finetune_learning_rate=settings["finetune_learning_rate"],
        n_init=settings["kmeans_n_init"], max_iter=settings["dec_max_iter"],
        update_interval=settings["dec_update_interval"], tol=settings["dec_tol"],
        random_state=seed,
    )
    start = time.perf_counter()
    dec.fit(x)
    out["pretrain_seconds"].append(time.perf_counter() - start)
    out["dec_steps"].append(dec.n_iter_)
    out["dec_converged"].append(bool(dec.converged_))
    out["finetune_final_loss"].append(dec.finetune_history_["loss"][-1])
    log(f"seed {seed}: fitted on {len(x)} images in {out['pretrain_seconds'][-1]:.0f} s, "
        f"{dec.n_iter_} DEC steps")
    add_clustering_scores(seed, AE_KMEANS, y, dec.kmeans_labels_, out, log)
    add_clustering_scores(seed, DEC, y, dec.labels_, out, log)
    pca = PCA(settings["n_clusters"], random_state=seed).fit(x)
    kmeans_rows(seed, (
        (KMEANS_RAW, x),
        (KMEANS_PCA.format(settings["n_clusters"]), pca.transform(x)),
    ), y, settings["baseline_n_init"], out, log)
    if settings.get("umap_neighbors"):
        for name, features in ((N2D, dec.autoencoder_code_), (N2D_RAW, x)):
            start = time.perf_counter()
            labels = umap_mixture_labels(features, settings, seed)
            out.setdefault("umap_seconds", {}).setdefault(name, []).append(
                time.perf_counter() - start)
            add_clustering_scores(seed, name, y, labels, out, log)


def umap_mixture_labels(features, settings, seed):
    """N2D's clustering: a full-covariance Gaussian mixture on a UMAP embedding with as
    many dimensions as clusters (min_dist 0, so that neighbours pack tightly)."""
    import umap  # only the clustering section needs it (requirements-bench.lock)
    from sklearn.mixture import GaussianMixture

    n = settings["n_clusters"]
    embedding = umap.UMAP(n_neighbors=settings["umap_neighbors"], min_dist=0.0, n_components=n,
                          random_state=seed).fit_transform(features)
    return GaussianMixture(n, covariance_type="full", random_state=seed).fit_predict(embedding)


def tables(out, settings):
    recipe = settings.get("recipe", "DEC-keras's recipe")  # run.py names every other recipe
    return [{
        "title": f"Clustering {settings['n_images']:,} images (10 clusters), scored on the same "
                 f"images: {recipe}",
        "columns": ["accuracy", "NMI"],
        "pct": {"NMI": False},
        # The library's rows first, then the baselines (the raw results come back key-sorted).
        "rows": [{"method": m, **out["clustering"][m]}
                 for m in sorted(out["clustering"], key=lambda m: (m not in ROWS, ROWS.index(m)
                                                                   if m in ROWS else m))],
    }]


def targets(out, settings):
    # The greedy variant answers what tiedae's pretraining changes to DEC-keras's
    # recipe; it is not a second attempt at the target.
    if settings.get("variant"):
        return []
    protocol = settings.get("recipe", "DEC-keras protocol")
    return [
        {"what": f"{name}, clustering accuracy >= 62% ({protocol})",
         "measured": statistics.fmean(out["clustering"][name]["accuracy"]), "target": 0.62}
        for name in ROWS if name in out["clustering"]
    ]


def notes(out, settings):
    lines = mean_seconds_note(out, "fitting (pretraining, fine-tuning, k-means and DEC)")
    if out["dec_steps"]:
        converged = sum(out["dec_converged"])
        lines.append(
            f"DEC steps per seed: {', '.join(str(s) for s in out['dec_steps'])} (stopped by "
            f"`tol` in {converged} of {len(out['dec_steps'])} seeds, else at `max_iter`); final "
            "fine-tuning loss (mean squared error): "
            + ", ".join(f"{v:.4f}" for v in out["finetune_final_loss"]) + "."
        )
    for name, seconds in out.get("umap_seconds", {}).items():
        lines.append(f"{name}: {statistics.fmean(seconds):.0f} s per seed (UMAP on one core, "
                     "as a fixed `random_state` makes it; the mixture takes about a second).")
    return lines


def optimizer_text(optimizer, learning_rate):
    """'Adam 0.001' or 'SGD 1 (momentum 0.9)' from an optimizer (or initializer) description."""
    rate = "" if learning_rate is None else f" {learning_rate:g}"
    if isinstance(optimizer, str):
        return f"{optimizer}{rate}"
    extra = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in optimizer.get("config", {}).items())
    return f"{optimizer['class_name']}{rate}" + (f" ({extra})" if extra else "")


def describe(settings):
    import keras

    sizes = "-".join(str(v) for v in [784] + list(settings["layer_sizes"]))
    greedy = (
        f"{settings['pretrain_epochs']} greedy epochs per layer (Adam 0.001, masking noise "
        f"{settings['corruption_level']}, every hidden layer reconstructed through relu), then "
        if settings["pretrain_epochs"] else "no greedy pretraining (as DEC-keras), "
    )
    return (
        f"Backend {keras.backend.backend()}. `DeepEmbeddedClustering` on "
        + ("all 70,000 Fashion-MNIST images" if settings["n_images"] >= 70000 else
           f"the first {settings['n_images']:,} of Fashion-MNIST's 70,000 images")
        + " (training then test; "
        f"no labels are used until scoring), as DEC-keras does: SdA {sizes}, relu hidden "
        f"layers and a linear code, kernels initialised by "
        f"{optimizer_text(settings['kernel_initializer'], None)}, mean squared error, batch 256, "
        f"{greedy}"
        f"{settings['finetune_epochs']} epochs of end-to-end training on clean input of the stack "
        "unrolled into untied encoder and decoder (`unroll=True`; the decoder starts as the "
        "transposed encoder), "
        f"{optimizer_text(settings['finetune_optimizer'], settings['finetune_learning_rate'])}; "
        f"k-means with {settings['kmeans_n_init']} initialisations on the code; then DEC "
        f"(Student's t soft assignments, KL divergence to the sharpened target, SGD 0.01 with "
        f"momentum 0.9, target updated every {settings['dec_update_interval']} steps, at most "
        f"{settings['dec_max_iter']:,} steps, stop when fewer than {settings['dec_tol']:.1%} of "
        f"the images change cluster). Baselines: k-means ({settings['baseline_n_init']} "
        f"initialisations) on raw pixels and on PCA-{settings['n_clusters']}. "
        + (f"N2D (McConville et al. 2020, with its published settings): UMAP of the autoencoder's "
           f"code before DEC's refinement to {settings['n_clusters']} dimensions "
           f"({settings['umap_neighbors']} neighbours, min_dist 0), then a Gaussian mixture "
           f"(full covariance) with {settings['n_clusters']} components; its baseline is the "
           "same on raw pixels. " if settings.get("umap_neighbors") else "")
        + f"Mean ± standard deviation over {settings['seeds']} seed(s)"
        + (", run side by side, one process each" if settings.get("parallel_seeds") else "")
        + "."
    )


def main(argv=None):
    out = {"pretrain_seconds": [], "dec_steps": [], "dec_converged": [],
           "finetune_final_loss": [], "clustering": {}}
    run_seeded(__doc__, "deep_clustering", out, run_seed, tables, targets, describe,
               notes=notes, argv=argv)


if __name__ == "__main__":
    main()
