"""Does the default recipe generalise? Fashion-MNIST with all and few labels, seed by seed.

    KERAS_BACKEND=torch python -m benchmarks.generalise [--seeds 5] [--quick] [--out docs/generalise.json]
    python -m benchmarks.generalise --render        # print the section from the stored file

Nothing here looks at the test images before the end. `PretrainedMLPClassifier`'s
defaults were chosen by `benchmarks.recipe_selection` on validation rows of other
splits (10,000 Fashion-MNIST training images, digits, breast cancer); every epoch
count below is a maximum that early stopping cuts on validation rows; each fitted
model scores the 10,000 test images once.

Per seed: one stack (the estimator's recipe, SdA-3 of 1,000 units) is pretrained
greedily on 90% of the 60,000 training images without their labels, stopping on the
reconstruction loss of the other 10% (drawn without the labels). It initialises
every pretrained network of the seed (`fit(..., pretrained_stack=...)`):

* all 60,000 labels: the pretrained network against the same network from random
  init (each fit holds out a stratified 10% of the labelled rows to stop on);
* 100 and 1,000 labels (a stratified sample): the same pair, stopping on a stratified
  20% of the labelled sample only, against logistic regression on the sample.

Once per run (they do not depend on the seed): scikit-learn's `SVC()` and
`LogisticRegression` on all labels, and, on seed 0, what early stopping changed: the
previous fixed-schedule defaults (10 greedy and 50 supervised epochs, no stopping).
Results are rewritten after every step; a rerun skips what the file already holds.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks._util import quiet_backends, write_json

quiet_backends()

import numpy as np  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from benchmarks.data import load_fashion_mnist, stratified_indices  # noqa: E402
from benchmarks.markdown import table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "full": dict(seeds=5, layer_sizes=[1000, 1000, 1000], pretrain_epochs=20, epochs=100,
                 few_labels=[100, 1000], few_validation_fraction=0.2, n_train=60000, n_test=10000),
    "quick": dict(seeds=1, layer_sizes=[32, 32, 32], pretrain_epochs=2, epochs=3,
                  few_labels=[100], few_validation_fraction=0.2, n_train=3000, n_test=1000),
}
PRETRAINED, RANDOM = "pretrained (default recipe)", "same network, random init"
LOGREG, SVC_ROW = "LogisticRegression", "SVC() (RBF)"
# The estimator's defaults before early stopping existed (benchmarks.recipe_selection).
PREVIOUS = dict(activation="sigmoid", corruption_level=0.2, learning_rate=1e-3,
                pretrain_epochs=10, epochs=50, early_stopping=False)


def classifier(settings, seed, **overrides):
    from tiedae.estimators import PretrainedMLPClassifier

    params = dict(layer_sizes=tuple(settings["layer_sizes"]), pretrain_epochs=settings["pretrain_epochs"],
                  epochs=settings["epochs"], precision="auto", random_state=seed)
    return PretrainedMLPClassifier(**{**params, **overrides})


def pretrain_stack(settings, seed, x):
    """The seed's stack: the estimator's recipe, stopping on 10% of the images (no labels)."""
    from tiedae.estimators._base import resolve_early_stopping, sda_params
    from tiedae.pretraining import StackedDenoisingAutoencoder

    template = classifier(settings, seed, early_stopping=True)
    fit_rows, val_rows = train_test_split(np.arange(len(x)), test_size=0.1, random_state=seed)
    stopping = resolve_early_stopping(template, len(fit_rows))
    sda = StackedDenoisingAutoencoder(**sda_params(template, settings["pretrain_epochs"], seed, stopping))
    started = time.perf_counter()
    sda.pretrain(x[fit_rows], validation_data=x[val_rows])
    return sda, dict(seconds=round(time.perf_counter() - started, 1),
                     greedy_epochs=[int(e) for e in sda.n_iter_],
                     best_epochs=[int(e) for e in sda.best_epoch_])


def scored(model, fit_args, test, **fit_kwargs):
    """Fit `model`, score it once on the test rows; the row of the results."""
    started = time.perf_counter()
    model.fit(*fit_args, **fit_kwargs)
    row = dict(accuracy=float(model.score(*test)), seconds=round(time.perf_counter() - started, 1))
    if hasattr(model, "n_iter_") and not isinstance(model.n_iter_, np.ndarray):
        row.update(epochs=int(model.n_iter_), best_epoch=int(model.best_epoch_))
    if hasattr(model, "sda_") and fit_kwargs.get("pretrained_stack") is None and model.pretrained:
        row.update(greedy_epochs=[int(e) for e in model.sda_.n_iter_])
    return row


def run_seed(seed, settings, train, test, log):
    (x, y), results = train, {}
    sda, results["pretraining"] = pretrain_stack(settings, seed, x)
    log(f"seed {seed}: pretrained in {results['pretraining']['seconds']} s, greedy epochs "
        f"{results['pretraining']['greedy_epochs']}")
    for name, kwargs in ((PRETRAINED, dict(pretrained_stack=sda)), (RANDOM, {})):
        model = classifier(settings, seed, pretrained=bool(kwargs))
        results.setdefault("all", {})[name] = row = scored(model, (x, y), test, **kwargs)
        log(f"seed {seed}: all labels, {name}: {row}")
    rng = np.random.default_rng(seed)
    for n in settings["few_labels"]:
        idx = stratified_indices(y, n, rng)
        few = results.setdefault(str(n), {})
        for name, kwargs in ((PRETRAINED, dict(pretrained_stack=sda)), (RANDOM, {})):
            model = classifier(settings, seed, pretrained=bool(kwargs), early_stopping=True,
                               validation_fraction=settings["few_validation_fraction"])
            few[name] = scored(model, (x[idx], y[idx]), test, **kwargs)
            log(f"seed {seed}: {n} labels, {name}: {few[name]}")
        few[LOGREG] = scored(logistic_regression(), (x[idx], y[idx]), test)
    return results


def logistic_regression():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


def svc_row(train, test):
    """SVC() on all labels (one core, tens of minutes: it runs beside the seeds)."""
    from sklearn.svm import SVC

    return scored(SVC(cache_size=2000), train, test)


def start_svc(train, test, stored, log):
    """Fit the SVC in a process of its own; its row lands in `stored["once"]` when done."""
    from concurrent.futures import ProcessPoolExecutor

    once = stored.setdefault("once", {})
    if SVC_ROW in once:
        return None
    pool = ProcessPoolExecutor(1)
    future = pool.submit(svc_row, train, test)

    def done(f):
        once[SVC_ROW] = f.result()
        log(f"all labels, {SVC_ROW}: {once[SVC_ROW]}")

    future.add_done_callback(done)
    pool.shutdown(wait=False)
    return future


def run_once(settings, train, test, stored, save, log):
    """The seed-free rows: logistic regression on all labels, the previous defaults."""
    once = stored.setdefault("once", {})
    if LOGREG not in once:
        once[LOGREG] = scored(logistic_regression(), train, test)
        log(f"all labels, {LOGREG}: {once[LOGREG]}")
        save()
    if "previous defaults" not in once:
        x, y = train
        rows = {"all": scored(classifier(settings, 0, **PREVIOUS), train, test)}
        for n in settings["few_labels"]:
            idx = stratified_indices(y, n, np.random.default_rng(0))
            rows[str(n)] = scored(classifier(settings, 0, **PREVIOUS), (x[idx], y[idx]), test)
        once["previous defaults"] = rows
        log(f"previous defaults (seed 0): {rows}")
        save()


def mean_sd(values):
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def summary(stored):
    """{task: {model: (mean accuracy, sd, n seeds)}} over the stored seeds, with the once-rows."""
    out = {}
    for seed_results in stored["seeds"].values():
        for task, rows in seed_results.items():
            if task == "pretraining":
                continue
            for name, row in rows.items():
                out.setdefault(task, {}).setdefault(name, []).append(row["accuracy"])
    once = stored.get("once", {})
    for name in (LOGREG, SVC_ROW):
        if name in once:
            out.setdefault("all", {})[name] = [once[name]["accuracy"]]
    return {task: {name: (*mean_sd(v), len(v)) for name, v in rows.items()} for task, rows in out.items()}


def targets(stored):
    """The issue's targets: the pretrained network ahead of each baseline, per task."""
    found = []
    rivals = {"all": (SVC_ROW, RANDOM), **{n: (RANDOM, LOGREG) for n in ("100", "1000")}}
    for task, rows in summary(stored).items():
        if PRETRAINED not in rows:
            continue
        ours = rows[PRETRAINED][0]
        for rival in rivals.get(task, ()):
            if rival in rows:
                found.append(dict(task=task, rival=rival, ours=ours, theirs=rows[rival][0],
                                  met=ours > rows[rival][0], seeds=rows[PRETRAINED][2]))
    return found


def task_name(task, n_train=60000):
    return f"all {n_train:,} labels" if task == "all" else f"{int(task):,} labels"


def render(stored):
    """The report's body for this section, from the stored results alone."""
    settings = stored["settings"]
    lines = [f"Backend {stored.get('backend')}, `precision=\"auto\"` "
             f"({stored.get('precision', '?')} greedy pretraining); SdA of "
             f"{'-'.join(map(str, settings['layer_sizes']))} units, at most "
             f"{settings['pretrain_epochs']} greedy epochs per layer and {settings['epochs']} "
             f"supervised ones, early stopping on validation rows only; "
             f"{len(stored['seeds'])} seed(s); test accuracy on {settings['n_test']:,} images, "
             "each model scored once. `python -m benchmarks.generalise`.", ""]
    rows = []
    for task, models in summary(stored).items():
        for name, (mean, sd, n) in sorted(models.items(), key=lambda kv: -kv[1][0]):
            rows.append([task_name(task, settings["n_train"]), name, f"{mean * 100:.2f}%",
                         f"{sd * 100:.2f}" if n > 1 else "(one run)", str(n)])
    lines += [table(["labels", "model", "test accuracy", "sd (points)", "runs"], rows)]
    lines += ["", "**What early stopping changed** (seed 0; the previous defaults ran a fixed "
              "schedule: 10 greedy epochs per layer and 50 supervised, sigmoid, masking 0.2, Adam 0.001)",
              "", *stopping_table(stored)]
    return lines


def stopping_table(stored):
    seed0 = stored["seeds"].get("0")
    previous = stored.get("once", {}).get("previous defaults")
    if not seed0 or not previous:
        return ["(not measured yet)"]
    pre, n_train = seed0["pretraining"], stored["settings"]["n_train"]
    rows = []
    for task, before in previous.items():
        after = seed0[task][PRETRAINED]
        greedy_after = pre["greedy_epochs"]
        seconds_after = after["seconds"] + pre["seconds"]
        rows.append([task_name(task, n_train), "previous defaults, fixed", str(before.get("greedy_epochs", "")),
                     str(before.get("epochs", "")), f"{before['seconds']:.0f}",
                     f"{before['accuracy'] * 100:.2f}%"])
        rows.append([task_name(task, n_train), "new defaults, early stopping", str(greedy_after),
                     f"{after['epochs']} (best {after['best_epoch']})", f"{seconds_after:.0f}",
                     f"{after['accuracy'] * 100:.2f}%"])
    return [table(["labels", "recipe", "greedy epochs per layer", "supervised epochs", "wall s",
                   "test accuracy"], rows),
            "", "Wall time of the new defaults counts the shared pretraining once per row."]


def load_data(settings):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    return ((x_train[: settings["n_train"]], y_train[: settings["n_train"]]),
            (x_test[: settings["n_test"]], y_test[: settings["n_test"]]))


def main(argv=None):
    import keras

    from tiedae.precision import resolve_precision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "generalise.json"))
    parser.add_argument("--quick", action="store_true", help="small settings: checks the pipeline")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the mode's)")
    parser.add_argument("--render", action="store_true", help="print the stored section and exit")
    args = parser.parse_args(argv)
    path = Path(args.out)
    if args.render:
        print("\n".join(render(json.loads(path.read_text()))))
        return
    settings = dict(MODES["quick" if args.quick else "full"])
    if args.seeds is not None:
        settings["seeds"] = args.seeds
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("settings", settings) | {"seeds": 0} != settings | {"seeds": 0}:
        raise SystemExit(f"{path} holds results of other settings; pass another --out.")
    stored.update(settings=settings, backend=keras.backend.backend(),
                  precision=resolve_precision("auto"), seeds=stored.get("seeds", {}))

    def save():
        stored["targets"] = targets(stored)
        write_json(path, stored, sort_keys=False)

    def log(message):
        print(f"[generalise {stored['backend']}] {message}", flush=True)

    train, test = load_data(settings)
    svc = start_svc(train, test, stored, log)
    for seed in range(settings["seeds"]):
        if str(seed) not in stored["seeds"]:
            stored["seeds"][str(seed)] = run_seed(seed, settings, train, test, log)
            keras.backend.clear_session()
            save()
    run_once(settings, train, test, stored, save, log)
    if svc is not None:
        svc.result()
    save()
    print("\n".join(render(stored)))


if __name__ == "__main__":
    main()
