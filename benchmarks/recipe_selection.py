"""Choosing the estimators' default recipe on validation rows of several datasets.

No test set is read: each dataset's development rows (Fashion-MNIST's
training file, or a fixed stratified 80% of a scikit-learn set) are split
again into fit rows and validation rows (stratified, 80/20), every candidate
recipe of `PretrainedMLPClassifier` is fitted on the fit rows (its own early
stopping holds out a further tenth of them) and scored on the validation
rows. The recipe with the best mean validation accuracy over the datasets
becomes the default; the per-dataset scores are kept for the record.

    python -m benchmarks.recipe_selection [--seeds 2] [--out docs/recipe_selection.json]
    python -m benchmarks.recipe_selection --compare   # the chosen defaults against baselines
    python -m benchmarks.recipe_selection --transformer  # TiedAutoencoderTransformer's recipe

`--transformer` chooses `TiedAutoencoderTransformer`'s recipe the same way, with
the codes scored by a linear probe (logistic regression fitted on the fit rows'
codes, accuracy on the validation rows' codes) beside PCA of the same width.

`--compare` scores, on the same fit and validation rows, the estimator's
default constructor (the chosen recipe), the previous defaults, the same
network from random init, scikit-learn's `SVC()` and logistic regression.
"""

import argparse
import itertools
import json
import os
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from benchmarks._util import write_text

# The fixed-schedule recipe the estimators had before early stopping (the baseline).
FIXED = dict(pretrain_epochs=10, epochs=50, early_stopping=False)
# Candidates: epochs are maxima, early stopping decides.
GRID = dict(
    activation=("sigmoid", "relu"),
    corruption_level=(0.1, 0.3),
    learning_rate=(1e-3, 3e-3),
)
# The grid above ran with the supervised phase stopping on validation loss; `--refine` then
# fits the grid's best recipe with each of these, in one run (stage two of the search).
REFINE = dict(scoring=("loss", "accuracy"))
STOPPING = dict(pretrain_epochs=50, epochs=300, early_stopping=True, n_iter_no_change=10)


def development_rows():
    """name -> (x, y) development rows, scaled to [0, 1] on those rows only."""
    from benchmarks.data import load_fashion_mnist

    sets = {}
    (x, y), _ = load_fashion_mnist()  # the training file only; its test file is not used
    keep = train_test_split(np.arange(len(y)), train_size=10000, stratify=y, random_state=0)[0]
    sets["fashion_mnist_10k"] = (x[keep], y[keep])
    for name, loader in (("digits", load_digits), ("breast_cancer", load_breast_cancer)):
        data, labels = loader(return_X_y=True)
        dev, _ = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                  random_state=0)  # the other 20%: a test split, never read here
        x = MinMaxScaler().fit_transform(data[dev]).astype(np.float32)
        sets[name] = (x, labels[dev])
    return sets


def candidates():
    yield "fixed schedule (previous default)", dict(FIXED)
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        recipe = dict(zip(keys, values), **STOPPING)
        yield ", ".join(f"{k}={v}" for k, v in zip(keys, values)), recipe


def validation_splits(seeds):
    """(dataset, seed, fit rows, validation rows) of every dataset and seed: a stratified 80/20."""
    for dataset, (x, y) in development_rows().items():
        for seed in range(seeds):
            fit_rows, val_rows = train_test_split(
                np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed
            )
            yield dataset, seed, (x[fit_rows], y[fit_rows]), (x[val_rows], y[val_rows])


def scored_row(dataset, seed, name, model, fit, validation, started, **extra):
    """One result row, printed as it comes: `model` fitted on `fit`, scored on `validation`."""
    row = dict(dataset=dataset, seed=seed, recipe=name,
               validation_accuracy=float(model.score(*validation)), **extra,
               seconds=round(time.perf_counter() - started, 2))
    print(json.dumps(row), flush=True)
    return row


def fitted_row(dataset, seed, name, recipe, fit, validation):
    """`PretrainedMLPClassifier(**recipe)` fitted on `fit`, as a result row with its epochs."""
    from tiedae.estimators import PretrainedMLPClassifier

    started = time.perf_counter()
    clf = PretrainedMLPClassifier(random_state=seed, **recipe).fit(*fit)
    return scored_row(dataset, seed, name, clf, fit, validation, started,
                      supervised_epochs=int(clf.n_iter_),
                      greedy_epochs=[int(e) for e in clf.sda_.n_iter_])


def run(seeds, out):
    import keras

    results = [fitted_row(dataset, seed, name, recipe, fit, validation)
               for dataset, seed, fit, validation in validation_splits(seeds)
               for name, recipe in candidates()]
    summary = summarise(results)
    write_text(out, json.dumps({"backend": keras.backend.backend(), "results": results,
                                      "summary": summary}, indent=1))
    return summary


def refine(seeds, out):
    """Stage two: the stored search's best recipe with each `REFINE` value, same rows; the
    results join the stored ones (the grid's own rows ran with `scoring="loss"`)."""
    import keras

    with open(out) as handle:
        stored = json.load(handle)
    best = next(item["recipe"] for item in stored["summary"] if "fixed" not in item["recipe"])
    recipe = dict(candidates())[best]
    rows = [fitted_row(dataset, seed, f"{best}, {key}={value} (stage two)",
                       dict(recipe, **{key: value}), fit, validation)
            for dataset, seed, fit, validation in validation_splits(seeds)
            for key, values in REFINE.items() for value in values]
    return store(out, "refine", rows, backend=keras.backend.backend())


def store(out, key, rows, **extra):
    """`rows` and their summary joined to the stored results under `key`; the summary."""
    with open(out) as handle:
        stored = json.load(handle)
    stored[key] = {**extra, "results": rows, "summary": summarise(rows)}
    write_text(out, json.dumps(stored, indent=1))
    return stored[key]["summary"]


def transformer_candidates(width):
    """(name, factory(seed)) of the transformer's recipes and PCA of the code's width."""
    from sklearn.decomposition import PCA

    from tiedae.estimators import TiedAutoencoderTransformer

    yield "TiedAutoencoderTransformer() (current default)", \
        lambda seed: TiedAutoencoderTransformer(random_state=seed)
    for name, recipe in candidates():
        if "fixed" in name:
            continue
        recipe = {k: v for k, v in recipe.items() if k not in ("epochs",)}
        yield name, lambda seed, recipe=recipe: TiedAutoencoderTransformer(random_state=seed,
                                                                          **recipe)
    yield "PCA, as many components as the code", lambda seed: PCA(width, random_state=seed)


def select_transformer(seeds, out):
    """The transformer's recipes on every split, each code scored by a linear probe (a logistic
    regression fitted on the fit rows' codes, scored on the validation rows'); joins the stored
    results."""
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rows = []
    for dataset, seed, fit, validation in validation_splits(seeds):
        # The default code width (32), or fewer where the data has fewer features (PCA's bound).
        width = min(32, fit[0].shape[1] - 1)
        for name, make in transformer_candidates(width):
            started = time.perf_counter()
            encoder = make(seed)
            if width < 32 and hasattr(encoder, "layer_sizes"):
                encoder.set_params(layer_sizes=(64, width))
            probed = make_pipeline(encoder, LogisticRegression(max_iter=2000)).fit(*fit)
            epochs = ({"greedy_epochs": [int(e) for e in encoder.n_iter_]}
                      if hasattr(encoder, "n_iter_") else {})
            rows.append(scored_row(dataset, seed, name, probed, fit, validation, started, **epochs))
    return store(out, "transformer", rows, backend=keras.backend.backend())


def baselines():
    """name -> estimator factory(seed) for the comparison of the defaults."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from tiedae.estimators import PretrainedMLPClassifier

    previous = dict(FIXED, activation="sigmoid", corruption_level=0.2, learning_rate=1e-3)
    return {
        "PretrainedMLPClassifier() (new defaults)": lambda seed: PretrainedMLPClassifier(
            random_state=seed),
        "same network, random init": lambda seed: PretrainedMLPClassifier(
            pretrained=False, random_state=seed),
        "previous defaults": lambda seed: PretrainedMLPClassifier(random_state=seed, **previous),
        "SVC() (RBF)": lambda seed: SVC(),
        "LogisticRegression": lambda seed: LogisticRegression(max_iter=2000),
    }


def compare(seeds, out):
    rows = []
    for dataset, seed, fit, validation in validation_splits(seeds):
        for name, make in baselines().items():
            started = time.perf_counter()
            rows.append(scored_row(dataset, seed, name, make(seed).fit(*fit), fit, validation,
                                   started))
    return store(out, "comparison", rows)


def summarise(results):
    """Mean validation accuracy per recipe and dataset, and over datasets; best first."""
    table = {}
    for row in results:
        table.setdefault(row["recipe"], {}).setdefault(row["dataset"], []).append(row)
    summary = []
    for recipe, per_dataset in table.items():
        means = {d: float(np.mean([r["validation_accuracy"] for r in rows]))
                 for d, rows in per_dataset.items()}
        seconds = {d: float(np.mean([r["seconds"] for r in rows])) for d, rows in per_dataset.items()}
        summary.append(dict(recipe=recipe, mean=float(np.mean(list(means.values()))),
                            per_dataset=means, seconds=seconds))
    return sorted(summary, key=lambda s: -s["mean"])


def _mean(rows, key):
    values = [np.mean(r[key]) if isinstance(r[key], list) else r[key] for r in rows]
    return float(np.mean(values))


def _table_head(first, datasets, *tail):
    columns = [first, "mean", *datasets, *tail]
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _row(item, datasets, *tail):
    """A summary item as a table row: recipe, mean, each dataset's accuracy, then `tail`."""
    cells = [item["recipe"], f"{item['mean']:.4f}",
             *(f"{item['per_dataset'][d]:.4f}" for d in datasets), *tail]
    return "| " + " | ".join(cells) + " |"


def render(stored):
    """docs/recipe_selection.md from the stored results (no rerun)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in stored["results"]))
    lines = [
        "# Default recipe of `PretrainedMLPClassifier`, chosen on validation rows",
        "",
        "Written by `python -m benchmarks.recipe_selection --render` from "
        "`docs/recipe_selection.json`. No test rows are read: each dataset's development rows "
        "(Fashion-MNIST: 10,000 images of its training file; digits and breast cancer: a fixed "
        "stratified 80%) are split 80/20 into fit and validation rows, per seed "
        f"({len({r['seed'] for r in stored['results']})} seeds). Accuracies are validation "
        "accuracies, means over seeds.",
        "",
        "## Search (best first)",
        "",
        *_table_head("recipe", datasets, "supervised epochs run", "s per fit"),
    ]
    for item in stored["summary"]:
        rows = [r for r in stored["results"] if r["recipe"] == item["recipe"]]
        lines.append(_row(item, datasets, f"{_mean(rows, 'supervised_epochs'):.0f}",
                          f"{_mean(rows, 'seconds'):.1f}"))
    lines += [
        "",
        "The chosen recipe, the first row, is the estimator's default; the fixed schedule is what "
        "the estimator did before (10 greedy and 50 supervised epochs, sigmoid, masking 0.2, Adam "
        "0.001, no early stopping). With early stopping the epochs are maxima (50 greedy per "
        "layer, 300 supervised, patience 10).",
    ]
    staged = stored.get("refine")
    if staged:
        lines += ["", "## Stage two: what the supervised phase stops on", "",
                  f"The best recipe above, refitted on the same rows ({staged['backend']}) "
                  "with its supervised early stopping watching the validation cross-entropy "
                  "(`scoring=\"loss\"`, as in the search) or the validation accuracy "
                  "(`scoring=\"accuracy\"`, as scikit-learn's `MLPClassifier`).", "",
                  *_table_head("recipe", datasets, "supervised epochs run", "s per fit")]
        for item in staged["summary"]:
            rows = [r for r in staged["results"] if r["recipe"] == item["recipe"]]
            lines.append(_row(item, datasets, f"{_mean(rows, 'supervised_epochs'):.0f}",
                              f"{_mean(rows, 'seconds'):.1f}"))
        winner = staged["summary"][0]["recipe"].split("scoring=")[1].split(" ")[0]
        lines += ["", f"The default is `scoring=\"{winner}\"`, the better of the two here."]
    comparison = stored.get("comparison")
    if comparison:
        lines += ["", "## The defaults against baselines, same rows", "",
                  *_table_head("model", datasets, "s per fit")]
        for item in comparison["summary"]:
            lines.append(_row(item, datasets, f"{np.mean(list(item['seconds'].values())):.1f}"))
    lines += _transformer_section(stored.get("transformer"), datasets)
    return "\n".join(lines) + "\n"


def _transformer_section(staged, datasets):
    if not staged:
        return []
    lines = ["", "## `TiedAutoencoderTransformer`: linear probe of the codes", "",
             f"Each recipe's transformer ({staged['backend']}; widths 64, 32, or 64 and one "
             "fewer than the features) fitted on the fit rows; a logistic regression fitted on "
             "the fit rows' codes is scored on the validation rows' codes. Same splits as above.",
             "", *_table_head("recipe", datasets, "greedy epochs run", "s per fit")]
    for item in staged["summary"]:
        rows = [r for r in staged["results"] if r["recipe"] == item["recipe"]]
        epochs = f"{_mean(rows, 'greedy_epochs'):.0f}" if "greedy_epochs" in rows[0] else ""
        lines.append(_row(item, datasets, epochs, f"{_mean(rows, 'seconds'):.1f}"))
    best = next(i["recipe"] for i in staged["summary"] if i["recipe"].startswith("activation"))
    lines += ["", f"The transformer's and `tiedae pretrain`'s defaults are the best tied recipe, "
              f"{best}, at most {STOPPING['pretrain_epochs']} greedy epochs per layer with early "
              "stopping."]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=os.path.join("docs", "recipe_selection.json"))
    parser.add_argument("--compare", action="store_true",
                        help="score the chosen defaults against baselines (after the search)")
    parser.add_argument("--refine", action="store_true",
                        help="stage two: the best recipe with each REFINE value (after the search)")
    parser.add_argument("--transformer", action="store_true",
                        help="choose TiedAutoencoderTransformer's recipe (linear probe of the codes)")
    parser.add_argument("--render", action="store_true",
                        help="write docs/recipe_selection.md from the stored results")
    args = parser.parse_args()
    if args.render:
        with open(args.out) as handle:
            text = render(json.load(handle))
        write_text(os.path.splitext(args.out)[0] + ".md", text)
        return
    step = (compare if args.compare else refine if args.refine
            else select_transformer if args.transformer else run)
    for item in step(args.seeds, args.out):
        print(f"{item['mean']:.4f}  {item['recipe']}  "
              + "  ".join(f"{d}={v:.4f}" for d, v in item["per_dataset"].items()))


if __name__ == "__main__":
    main()
