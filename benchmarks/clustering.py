"""Clustering on Fashion-MNIST: k-means on the code of a stack built for clustering.

    KERAS_BACKEND=jax python -m benchmarks.clustering --json out.json --settings '{...}'

The quality section's stack (3 x 1000 sigmoid units) is built for classification;
its 1,000-wide code clusters little better than raw pixels. This section uses
the recipe of the DEC papers instead (Xie et al. 2016; DEC-keras): a
500-500-2000-10 stack with relu hidden layers and a linear 10-unit code,
greedily pretrained with masking noise, then fine-tuned end to end as a plain
(clean-input, `finetune_denoising=False`) deep autoencoder with mean squared
error. For every seed: k-means (10 clusters) on the test images' codes, on raw
pixels and on PCA-10, scored by Hungarian-matched accuracy and NMI.
"""

import statistics
import time

from benchmarks._util import quiet_backends

quiet_backends()

import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from benchmarks.quality import kmeans_rows  # noqa: E402
from benchmarks.seeded import mean_seconds_note, run_seeded  # noqa: E402

CODE = "k-means on the clustering stack's 10-d code"


def pretrain_for_clustering(x, settings, seed):
    from tiedae.pretraining import StackedDenoisingAutoencoder

    n = len(settings["layer_sizes"])
    sda = StackedDenoisingAutoencoder(
        settings["layer_sizes"],
        activation=["relu"] * (n - 1) + ["linear"],
        corruption="masking",
        corruption_level=settings["corruption_level"],
        loss="mse",
        epochs=settings["pretrain_epochs"],
        finetune_epochs=settings["finetune_epochs"],
        finetune_denoising=False,
        batch_size=256,
        seed=seed,
        verbose=0,
    )
    start = time.perf_counter()
    sda.pretrain(x)
    return sda, time.perf_counter() - start


def run_seed(seed, data, settings, out, log):
    (x_train, _), (x_test, y_test) = data
    order = np.random.default_rng(seed).permutation(len(x_train))
    x_pre = x_train[order[: settings["n_pretrain"]]]
    sda, seconds = pretrain_for_clustering(x_pre, settings, seed)
    out["pretrain_seconds"].append(seconds)
    log(f"seed {seed}: pretrained and fine-tuned on {len(x_pre)} images in {seconds:.0f} s")
    pca = PCA(settings["n_clusters"], random_state=seed).fit(x_pre)
    kmeans_rows(seed, (
        (CODE, sda.transform(x_test)),
        ("k-means on raw pixels", x_test),
        (f"k-means on PCA-{settings['n_clusters']}", pca.transform(x_test)),
    ), y_test, settings["kmeans_n_init"], out, log)


def tables(out, settings):
    return [{
        "title": f"Clustering: k-means (10 clusters) on the {settings['n_test']:,} test images",
        "columns": ["accuracy", "NMI"],
        "pct": {"NMI": False},
        "rows": [{"method": m, **v} for m, v in out["clustering"].items()],
    }]


def targets(out, settings):
    if CODE not in out["clustering"]:
        return []
    return [{"what": "k-means on the clustering stack's code, clustering accuracy >= 62%",
             "measured": statistics.fmean(out["clustering"][CODE]["accuracy"]), "target": 0.62}]


def notes(out, settings):
    return mean_seconds_note(out, "pretraining + fine-tuning")


def describe(settings):
    import keras

    sizes = "-".join(str(v) for v in [784] + list(settings["layer_sizes"]))
    return (
        f"Backend {keras.backend.backend()}. SdA {sizes}, relu hidden layers and a linear code, "
        f"masking noise {settings['corruption_level']}, mean squared error, Adam 1e-3, batch 256, "
        f"{settings['pretrain_epochs']} greedy epochs per layer, then {settings['finetune_epochs']} "
        f"epochs of end-to-end fine-tuning on clean input, on {settings['n_pretrain']:,} training "
        f"images (no labels). k-means with {settings['kmeans_n_init']} initialisations. Mean ± "
        f"standard deviation over {settings['seeds']} seed(s), on the first "
        f"{settings['n_test']:,} test images."
    )


def main(argv=None):
    out = {"pretrain_seconds": [], "clustering": {}}
    run_seeded(__doc__, "clustering", out, run_seed, tables, targets, describe, notes=notes,
               argv=argv)


if __name__ == "__main__":
    main()
