"""Quality on Fashion-MNIST: classification (all and few labels) and clustering.

    KERAS_BACKEND=jax python -m benchmarks.quality --json out.json --settings '{...}'

For every seed: greedy pretraining of a sigmoid SdA (masking noise 0.1 / 0.2 /
0.3 per layer) on unlabelled training images, then

* all labels: the pretrained network fine-tuned (`to_classifier`) against the
  same network from random initialisation, scikit-learn's `MLPClassifier`
  (256-128-100, the dataset's benchmark-table architecture) and
  `LogisticRegression`;
* few labels: the same comparison with a stratified sample of 100 / 1,000
  labelled images (pretraining still uses the unlabelled images);
* clustering: k-means (10 clusters) on the code, on raw pixels and on PCA-50,
  scored by Hungarian-matched accuracy and NMI on the test images;
* a one-seed sweep of corruption kind / level and activation on the 1,000-label task.

The settings (`run.py` MODES) decide how much of the data and how many epochs.
"""

import json
import statistics
import time

from benchmarks._util import quiet_backends

quiet_backends()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from benchmarks.row_names import (  # noqa: E402
    FINE_TUNED,
    KMEANS_PCA,
    KMEANS_RAW,
    KMEANS_SDA_CODE,
    RANDOM_INIT,
)
from benchmarks.data import stratified_indices  # noqa: E402
from benchmarks.metrics import clustering_accuracy  # noqa: E402
from benchmarks.seeded import mean_seconds_note, run_seeded  # noqa: E402

N_CLASSES = 10
BASE_RECIPE = {"corruption": "masking", "corruption_level": [0.1, 0.2, 0.3], "activation": "sigmoid"}
# Fine-tuning schedules (the same for the pretrained network and its random-init control).
SCHEDULES = {
    "adam": {"dropout": 0.0, "cosine": False, "frozen_fraction": 0.0},
    "adam, dropout 0.2, cosine decay": {"dropout": 0.2, "cosine": True, "frozen_fraction": 0.0},
    "adam, dropout 0.3, cosine decay": {"dropout": 0.3, "cosine": True, "frozen_fraction": 0.0},
    "frozen for half the epochs, then all layers": {"dropout": 0.0, "cosine": False,
                                                    "frozen_fraction": 0.5},
    "sgd momentum 0.9 (lr 0.01)": {"dropout": 0.0, "cosine": False, "frozen_fraction": 0.0,
                                   "optimizer": "sgd"},
}
# The sweep: one change at a time from the base recipe and the few-label schedule.
SWEEP = [
    {"name": "masking 0.1/0.2/0.3, sigmoid (base)", **BASE_RECIPE},
    {"name": "no corruption (plain AE), sigmoid", "corruption": "none", "corruption_level": 0.0,
     "activation": "sigmoid"},
    {"name": "masking 0.4, sigmoid", "corruption": "masking", "corruption_level": 0.4,
     "activation": "sigmoid"},
    {"name": "salt_and_pepper 0.25, sigmoid", "corruption": "salt_and_pepper",
     "corruption_level": 0.25, "activation": "sigmoid"},
    {"name": "gaussian 0.3, sigmoid", "corruption": "gaussian", "corruption_level": 0.3,
     "activation": "sigmoid"},
    {"name": "masking 0.1/0.2/0.3, relu", "corruption": "masking",
     "corruption_level": [0.1, 0.2, 0.3], "activation": "relu"},
    {"name": "base recipe; schedule: frozen for half the epochs, then all layers", **BASE_RECIPE,
     "schedule": "frozen for half the epochs, then all layers"},
    {"name": "base recipe; schedule: sgd momentum 0.9 (lr 0.01)", **BASE_RECIPE,
     "schedule": "sgd momentum 0.9 (lr 0.01)"},
]


def _recipe_key(recipe):
    return json.dumps({k: recipe[k] for k in BASE_RECIPE}, sort_keys=True)


def pretrain(x, settings, seed, recipe):
    from tiedae.pretraining import StackedDenoisingAutoencoder

    sda = StackedDenoisingAutoencoder(
        settings["layer_sizes"],
        activation=recipe["activation"],
        corruption=recipe["corruption"],
        corruption_level=recipe["corruption_level"],
        epochs=settings["pretrain_epochs"],
        batch_size=128,
        seed=seed,
        verbose=0,
    )
    start = time.perf_counter()
    sda.pretrain(x)
    return sda, time.perf_counter() - start


def finetune_accuracy(sda, pretrained, x, y, x_test, y_test, epochs, batch_size, seed, schedule):
    """Test accuracy after fine-tuning `sda.to_classifier` with a named schedule."""
    from tiedae.pretraining import fit_with_unfreezing

    plan = SCHEDULES[schedule]
    keras.utils.set_random_seed(seed)
    model = sda.to_classifier(N_CLASSES, pretrained=pretrained, dropout=plan["dropout"],
                              compile=False)
    if plan.get("optimizer") == "sgd":
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    else:
        steps = epochs * -(-len(x) // batch_size)
        rate = keras.optimizers.schedules.CosineDecay(1e-3, steps) if plan["cosine"] else 1e-3
        optimizer = keras.optimizers.Adam(rate)
    fit_with_unfreezing(
        model, x, y, epochs=epochs, unfreeze_after=int(epochs * plan["frozen_fraction"]),
        compile_kwargs={"optimizer": optimizer, "loss": "sparse_categorical_crossentropy",
                        "metrics": ["accuracy"]},
        batch_size=batch_size, shuffle=True, verbose=0,
    )
    accuracy = float(model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])
    keras.backend.clear_session()
    return accuracy


def kmeans_labels(features, seed, n_init):
    return KMeans(N_CLASSES, n_init=n_init, random_state=seed).fit_predict(features)


def clustering_scores(y, labels):
    """(Hungarian-matched accuracy, NMI) of cluster `labels` against `y`."""
    return clustering_accuracy(y, labels), float(normalized_mutual_info_score(y, labels))


def kmeans_scores(features, y, seed, n_init):
    return clustering_scores(y, kmeans_labels(features, seed, n_init))


def sklearn_accuracy(kind, x, y, x_test, y_test, seed, max_iter):
    import warnings

    if kind == "mlp":
        # Early stopping on a 10% validation split (scikit-learn's own option).
        model = MLPClassifier(hidden_layer_sizes=(256, 128, 100), max_iter=max_iter,
                              early_stopping=True, random_state=seed)
    else:
        model = LogisticRegression(max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return float(model.score(x_test, y_test))


def pretrain_seed(seed, x_train, settings, out, log):
    """The seed's draws and its base-recipe stack. `semi_supervised` calls this too, so both
    sections fine-tune the same stacks on the same labelled subsets (drawn next from `rng`).

    Returns:
        `(sda, rng, order, x_pre)`: the stack, the seed's generator, the permutation of the
        training images and the unlabelled images it was pretrained on.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    x_pre = x_train[order[: settings["n_pretrain"]]]
    sda, seconds = pretrain(x_pre, settings, seed, BASE_RECIPE)
    out["pretrain_seconds"].append(seconds)
    log(f"seed {seed}: pretrained on {len(x_pre)} images in {seconds:.0f} s")
    return sda, rng, order, x_pre


def add_clustering_scores(seed, name, y, labels, out, log):
    """Append the accuracy and NMI of cluster `labels` against `y` to `out["clustering"][name]`."""
    acc, nmi = clustering_scores(y, labels)
    row = out["clustering"].setdefault(name, {"accuracy": [], "NMI": []})
    row["accuracy"].append(acc)
    row["NMI"].append(nmi)
    log(f"seed {seed}: {name}: accuracy {acc:.3f}, NMI {nmi:.3f}")


def kmeans_rows(seed, named_features, y, n_init, out, log):
    """k-means on each `(name, features)`; append accuracy and NMI to `out["clustering"]`."""
    for name, features in named_features:
        add_clustering_scores(seed, name, y, kmeans_labels(features, seed, n_init), out, log)


def run_seed(seed, data, settings, out, log):
    (x_train, y_train), (x_test, y_test) = data
    sda, rng, order, x_pre = pretrain_seed(seed, x_train, settings, out, log)

    # Clustering of the test images.
    pca = PCA(50, random_state=seed).fit(x_pre)
    kmeans_rows(seed, (
        (KMEANS_SDA_CODE, sda.transform(x_test)),
        (KMEANS_RAW, x_test),
        (KMEANS_PCA.format(pca.n_components), pca.transform(x_test)),
    ), y_test, settings.get("kmeans_n_init", 10), out, log)

    # All labels (or the mode's subsample of them).
    lab = order[: settings["all_labels_n"]]
    x_lab, y_lab = x_train[lab], y_train[lab]
    for name, pretrained in ((FINE_TUNED, True), (RANDOM_INIT, False)):
        acc = finetune_accuracy(sda, pretrained, x_lab, y_lab, x_test, y_test,
                                settings["finetune_epochs"], 128, seed,
                                settings["all_labels_schedule"])
        out["all_labels"].setdefault(name, []).append(acc)
        log(f"seed {seed}: all labels ({len(lab)}), {name}: {acc:.4f}")
    for name, kind in (("sklearn MLPClassifier 256-128-100", "mlp"),
                       ("sklearn LogisticRegression", "logreg")):
        acc = sklearn_accuracy(kind, x_lab, y_lab, x_test, y_test, seed, settings["sklearn_max_iter"])
        out["all_labels"].setdefault(name, []).append(acc)
        log(f"seed {seed}: all labels ({len(lab)}), {name}: {acc:.4f}")

    # Few labels: stratified samples, pretraining on all unlabelled images.
    for n in settings["few_labels"]:
        idx = stratified_indices(y_train, n, rng)
        x_few, y_few = x_train[idx], y_train[idx]
        for name, pretrained in ((FINE_TUNED, True), (RANDOM_INIT, False)):
            acc = finetune_accuracy(sda, pretrained, x_few, y_few, x_test, y_test,
                                    settings["few_label_epochs"], 32, seed,
                                    settings["few_labels_schedule"])
            out["few_labels"].setdefault(str(n), {}).setdefault(name, []).append(acc)
            log(f"seed {seed}: {n} labels, {name}: {acc:.4f}")
        acc = sklearn_accuracy("logreg", x_few, y_few, x_test, y_test, seed, settings["sklearn_max_iter"])
        out["few_labels"][str(n)].setdefault("sklearn LogisticRegression", []).append(acc)
        log(f"seed {seed}: {n} labels, LogisticRegression: {acc:.4f}")


def run_sweep(data, settings, out, log):
    """One seed, 1,000 labels: change one thing at a time (pretraining recipe or schedule)."""
    (x_train, y_train), (x_test, y_test) = data
    seed = 0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    x_pre = x_train[order[: settings["n_pretrain"]]]
    n = max(settings["few_labels"])
    idx = stratified_indices(y_train, n, np.random.default_rng(1000 + seed))
    pretrained = {}  # recipe -> (sda, seconds, k-means scores): schedules reuse the base SdA
    controls = {}  # (activation, schedule) -> accuracy of the random-init control
    sweep_settings = {**settings,
                      "pretrain_epochs": settings.get("sweep_pretrain_epochs",
                                                      settings["pretrain_epochs"])}
    for recipe in SWEEP[: settings.get("sweep_size", len(SWEEP))]:
        key = _recipe_key(recipe)
        if key not in pretrained:
            sda, seconds = pretrain(x_pre, sweep_settings, seed, recipe)
            km = kmeans_scores(sda.transform(x_test), y_test, seed, settings.get("kmeans_n_init", 10))
            pretrained[key] = (sda, seconds, km)
        sda, seconds, (km_acc, km_nmi) = pretrained[key]
        schedule = recipe.get("schedule", settings["few_labels_schedule"])
        few = (x_train[idx], y_train[idx], x_test, y_test, settings["few_label_epochs"], 32, seed,
               schedule)
        accuracy = finetune_accuracy(sda, True, *few)
        # The random-init control depends on the network and the schedule only, not on the
        # pretraining recipe: train it once per (activation, schedule).
        control_key = (recipe["activation"], schedule)
        if control_key not in controls:
            controls[control_key] = finetune_accuracy(sda, False, *few)
        control = controls[control_key]
        out["sweep"].append({"recipe": recipe["name"], "schedule": schedule,
                             "few_label_accuracy": accuracy, "random_init_accuracy": control,
                             "kmeans_accuracy": km_acc, "kmeans_nmi": km_nmi,
                             "pretrain_seconds": seconds})
        log(f"sweep {recipe['name']}: {n} labels {accuracy:.4f} (random init {control:.4f}), "
            f"k-means {km_acc:.3f}")
    keras.backend.clear_session()


def summarize_tables(out, settings):
    s = settings
    tables = []
    tables.append({
        "title": f"All labels: fine-tuned on {s['all_labels_n']:,} labelled images, "
                 f"test accuracy on {s['n_test']:,} test images",
        "columns": ["test accuracy"],
        "rows": [{"method": m, "test accuracy": v} for m, v in out["all_labels"].items()],
    })
    for n, methods in out["few_labels"].items():
        tables.append({
            "title": f"Few labels: {int(n):,} labelled images (stratified), pretraining on "
                     f"{s['n_pretrain']:,} unlabelled images",
            "columns": ["test accuracy"],
            "rows": [{"method": m, "test accuracy": v} for m, v in methods.items()],
        })
    tables.append({
        "title": f"Clustering: k-means (10 clusters) on the {s['n_test']:,} test images",
        "columns": ["accuracy", "NMI"],
        "pct": {"NMI": False},
        "rows": [{"method": m, **v} for m, v in out["clustering"].items()],
    })
    if out["sweep"]:
        tables.append({
            "title": f"Recipe sweep (seed 0, {max(s['few_labels']):,} labels, "
                     f"{s.get('sweep_pretrain_epochs', s['pretrain_epochs'])} pretraining epochs "
                     "per layer, one change at a time)",
            "columns": ["few-label accuracy", "same schedule, random init", "k-means accuracy"],
            "rows": [{"method": r["recipe"], "few-label accuracy": [r["few_label_accuracy"]],
                      "same schedule, random init": [r["random_init_accuracy"]],
                      "k-means accuracy": [r["kmeans_accuracy"]]} for r in out["sweep"]],
        })
    return tables


def evaluate_targets(out, settings=None):
    mean = statistics.fmean
    targets = []
    pre, ctl = FINE_TUNED, RANDOM_INIT
    if pre in out["all_labels"]:
        targets.append({"what": "all labels, pretrained network test accuracy >= 90%",
                        "measured": mean(out["all_labels"][pre]), "target": 0.90})
    targets += few_label_targets(out["few_labels"], pre, ctl)
    code = KMEANS_SDA_CODE
    if code in out["clustering"]:
        targets.append({"what": "k-means on the code, clustering accuracy >= 62%",
                        "measured": mean(out["clustering"][code]["accuracy"]), "target": 0.62})
    return targets


def few_label_targets(few, pretrained, control, label=""):
    """The issue's few-label targets for one (pretrained, control) pair of rows."""
    mean = statistics.fmean
    targets = []
    if "100" in few:
        p, c = mean(few["100"][pretrained]), mean(few["100"][control])
        targets.append({"what": f"100 labels, pretrained network{label} >= 65%", "measured": p,
                        "target": 0.65})
        targets.append({"what": f"100 labels, pretrained minus random init{label} >= 10 points "
                                f"(random init {c:.2%})", "measured": p - c, "target": 0.10})
    if "1000" in few:
        targets.append({"what": f"1,000 labels, pretrained network{label} >= 83%",
                        "measured": mean(few["1000"][pretrained]), "target": 0.83})
    return targets


def describe(settings):
    sizes = "-".join(str(v) for v in [784] + list(settings["layer_sizes"]))
    return (
        f"Backend {keras.backend.backend()}. SdA {sizes}, sigmoid, masking noise 0.1/0.2/0.3, Adam "
        f"1e-3, batch 128, {settings['pretrain_epochs']} pretraining epochs per layer on "
        f"{settings['n_pretrain']:,} unlabelled training images; fine-tuning "
        f"{settings['finetune_epochs']} epochs (all labels, batch 128, schedule "
        f"'{settings['all_labels_schedule']}') or {settings['few_label_epochs']} epochs "
        f"(few labels, batch 32, schedule '{settings['few_labels_schedule']}'); the random-init "
        "control gets the same schedule. Mean ± standard deviation over "
        f"{settings['seeds']} seed(s); test accuracy on the first {settings['n_test']:,} test images."
    )


def summarize_notes(out, settings):
    notes = []
    if out["sweep"]:
        best = max(out["sweep"], key=lambda r: r["few_label_accuracy"])
        worst = min(out["sweep"], key=lambda r: r["few_label_accuracy"])
        notes.append(
            f"Sweep: best few-label recipe '{best['recipe']}' ({best['few_label_accuracy']:.2%}), "
            f"worst '{worst['recipe']}' ({worst['few_label_accuracy']:.2%}); one seed, so "
            "differences of a point or two are within noise."
        )
    return notes + mean_seconds_note(out)


def main(argv=None):
    def sweep(data, settings, out, log):
        if settings.get("sweep_size", len(SWEEP)) > 0:
            run_sweep(data, settings, out, log)

    out = {"pretrain_seconds": [], "clustering": {}, "all_labels": {}, "few_labels": {}, "sweep": []}
    run_seeded(__doc__, "quality", out, run_seed, summarize_tables, evaluate_targets, describe,
               notes=summarize_notes, argv=argv, after_seeds=sweep)


if __name__ == "__main__":
    main()
