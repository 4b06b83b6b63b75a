"""`tiedae reference` and `tiedae map`: reference mapping (`tiedae.mapping`) from the command line.

A reference run directory holds:
- `reference.keras`: the `ReferenceModel` (classifier, genes, preprocessing,
  class names, the reference cells' embedding and labels);
- `metrics.json`: section `reference` (settings, classes, fine-tuning epochs,
  held-out accuracy) and section `map`, one entry per annotated file written;
- `history.csv`: the fine-tuning losses per epoch;
- `reference_cells.txt`: the reference's obs_names, one per line, in the row
  order of the neighbour indices that `map` writes;
- `plots/reference_embedding.png`, and `plots/map_<output name>/` per query
  mapped (confusion matrix, confidence histogram, 2-D view).
"""

import contextlib
import os
import shutil
import sys
import time
import warnings

import keras
import numpy as np

from tiedae import plots, runs
from tiedae.cli.commands import check_output_file, check_split, print_summary, _pct
from tiedae.cli.mapping_args import REFERENCE_MODEL
from tiedae.io import DataError, read_h5ad, write_h5ad, write_json, write_text
from tiedae.mapping import (
    ReferenceModel, evaluate_mapping, fit_reference, map_query, retrieve, validation_split,
)

REFERENCE_CELLS = "reference_cells.txt"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def warnings_as_messages():
    """tiedae's own warnings (e.g. genes missing from the query) as one `tiedae: warning:` line each."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and os.path.abspath(filename).startswith(_PACKAGE_DIR):
            print(f"tiedae: warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _labels_of(adata, column, what):
    if column not in adata.obs.columns:
        known = ", ".join(map(str, adata.obs.columns)) or "none"
        raise DataError(f"{what} has no column {column!r} in obs (columns: {known}).")
    return adata.obs[column]


def cmd_reference(args):
    started = time.perf_counter()
    reference = read_h5ad(args.data)
    _labels_of(reference, args.label_column, "the reference")  # before reading anything else
    check_split(reference.n_obs, args.validation_split, "--validation-split")
    unlabelled = read_h5ad(args.query) if args.query else None
    target_sum = 1e4 if args.target_sum is None else (args.target_sum or None)  # 0: the median
    with warnings_as_messages():
        model = fit_reference(
            reference, args.label_column, layer_sizes=args.layers, layer=args.layer,
            normalize=args.normalize, log1p=args.log1p, target_sum=target_sum, unlabelled=unlabelled,
            pretrained=not args.random_init, epochs=args.epochs, finetune_epochs=args.finetune_epochs,
            patience=args.patience, validation_fraction=args.validation_split, batch_size=args.batch_size,
            learning_rate=args.learning_rate, dropout=args.dropout, seed=args.seed,
            verbose=0 if args.quiet else 1, corruption_level=args.corruption_level,
            early_stopping=args.early_stopping, n_iter_no_change=args.patience,
        )
    # The held-out reference cells of the fine-tuning (the same split): how well it learnt them.
    _, held_out = validation_split(model.reference_labels, args.validation_split, args.seed)
    held = reference[np.sort(held_out)].copy()
    map_query(held, model, confidence_threshold=0.0)
    held_accuracy = float(np.mean(held.obs["tiedae_label"].astype(str) == held.obs[args.label_column].astype(str)))
    seconds = time.perf_counter() - started

    run = runs.RunDirectory(args.run_dir, overwrite=args.overwrite)  # refusals were checked up front
    try:
        shutil.rmtree(run.file(runs.PLOTS), ignore_errors=True)  # a previous run's plots (and maps) go
        model.save(run.file(REFERENCE_MODEL))
        write_text(run.file(REFERENCE_CELLS), "".join(f"{name}\n" for name in reference.obs_names))
        run.write_history([], {k: model.history[k] for k in ("loss", "val_loss")})
        classes, counts = np.unique(model.reference_labels, return_counts=True)
        metrics = {
            "backend": keras.backend.backend(), "data": os.path.abspath(args.data),
            "label_column": args.label_column, "layer": args.layer,
            "n_cells": int(reference.n_obs), "n_genes": int(reference.n_vars),
            "n_unlabelled_cells": int(unlabelled.n_obs) if unlabelled is not None else 0,
            "classes": {str(c): int(n) for c, n in zip(classes, counts)},
            "layers": list(args.layers), "code_size": int(model.reference_embedding.shape[1]),
            "pretrained": not args.random_init, "epochs": args.epochs,
            "preprocessing": model.preprocessing.to_dict(), "seed": args.seed,
            "validation_split": args.validation_split,
            "finetune": {"epochs_run": model.history["epochs_run"], "best_epoch": model.history["best_epoch"],
                         "best_val_loss": float(min(model.history["val_loss"]))},
            "held_out_accuracy": held_accuracy, "seconds": round(seconds, 3),
        }
        write_json(run.file(runs.METRICS), {"reference": metrics})  # earlier maps are of another model
        plots.plot_embedding(model.reference_embedding, run.plot("reference_embedding.png"),
                             labels=model.reference_labels)
    except BaseException:
        run.discard_if_new()
        raise
    print_summary("tiedae reference", [
        ("run directory", run.path), ("time", f"{seconds:.1f} s"),
        ("reference", f"{reference.n_obs} cells x {reference.n_vars} genes, {len(classes)} cell types"),
        ("network", f"{' -> '.join(map(str, [reference.n_vars, *args.layers]))} -> {len(classes)} classes"
                    + ("" if not args.random_init else " (random init)")),
        ("fine-tuning", f"{model.history['epochs_run']} epochs, kept epoch {model.history['best_epoch']}"),
        ("held-out accuracy", f"{_pct(held_accuracy)} ({len(held_out)} reference cells)"),
    ])
    return 0


def load_reference(run_dir):
    path = os.path.join(os.fspath(run_dir), REFERENCE_MODEL)
    try:
        return ReferenceModel.load(path)
    except Exception as err:  # a truncated or foreign file: say so, no traceback
        raise DataError(f"cannot load {path!r} ({type(err).__name__}: {err}); the file may be corrupted.") from None


def _unknown_rule(args):
    """The Unknown rule in words, for the summary."""
    softmax = f"confidence < {args.confidence_threshold:g}"
    novelty = (f"{args.novelty_metric} novelty (k={args.novelty_k}) > q{args.novelty_quantile:g} of "
               f"{args.novelty_calibration} reference cells{' per type' if args.novelty_per_type else ''}")
    return {"softmax": softmax, "distance": novelty, "both": f"{softmax} and {novelty}",
            "either": f"{softmax} or {novelty}"}[args.unknown]


def cmd_map(args):
    check_output_file(args.output, "--output", ".h5ad", source=args.data)
    model = load_reference(args.run_dir)
    query = read_h5ad(args.data, backed=args.backed)
    if query.n_obs == 0:
        raise DataError(f"the query {args.data!r} has no cells.")
    truth = _labels_of(query, args.label_column, "the query") if args.label_column else None
    with warnings_as_messages():  # everything is checked before anything is written
        map_query(query, model, confidence_threshold=args.confidence_threshold, unknown=args.unknown,
                  novelty_quantile=args.novelty_quantile, novelty_k=args.novelty_k,
                  novelty_metric=args.novelty_metric, novelty_calibration=args.novelty_calibration,
                  novelty_per_type=args.novelty_per_type, min_overlap=args.min_overlap,
                  layer=args.layer if args.layer else "fitted", batch_size=args.batch_size)
    codes = query.obsm["X_tiedae"]
    distances, indices, _ = retrieve(codes, model, k=args.k)
    query.obsm["tiedae_neighbors"] = indices.astype(np.int64)
    query.obsm["tiedae_neighbor_distances"] = distances.astype(np.float32)
    predicted = query.obs["tiedae_label"].astype(str).to_numpy()
    confidence = query.obs["tiedae_confidence"].to_numpy()
    summary = query.uns["tiedae_mapping"]
    summary.update(k=int(indices.shape[1]), reference=os.path.abspath(args.run_dir),
                   unknown_fraction=float(np.mean(predicted == "Unknown")) if len(predicted) else 0.0)
    scores = {}
    if truth is not None:
        labelled = truth.notna().to_numpy()
        if labelled.any():
            scores = evaluate_mapping(truth[labelled].astype(str), predicted[labelled], codes[labelled],
                                      model, k=args.k)
            summary.update({k: v for k, v in scores.items() if k != "map_per_type"},
                           label_column=args.label_column, n_labelled=int(labelled.sum()))
    query.uns["tiedae_mapping"] = summary
    write_h5ad(query, args.output)

    stem = os.path.basename(os.fspath(args.output))[: -len(".h5ad")]
    folder = os.path.join(os.fspath(args.run_dir), runs.PLOTS, f"map_{stem}")
    shutil.rmtree(folder, ignore_errors=True)  # the plots of an earlier map to the same name
    os.makedirs(folder)
    if scores:
        plots.plot_confusion_matrix(truth[labelled].astype(str), predicted[labelled],
                                    os.path.join(folder, "confusion_matrix.png"))
    plots.plot_confidence_histogram(confidence, args.confidence_threshold, os.path.join(folder, "confidence.png"))
    plots.plot_mapping_embedding(model.reference_embedding, model.reference_labels, codes, predicted,
                                 os.path.join(folder, "embedding.png"))
    run = runs.RunDirectory(args.run_dir, must_exist=True)
    maps = run.read_metrics().get("map", {})
    maps[os.path.abspath(args.output)] = {"query": os.path.abspath(args.data), "n_cells": int(query.n_obs),
                                          **{k: v for k, v in summary.items() if k != "classes"},
                                          **({"map_per_type": scores["map_per_type"]} if scores else {})}
    run.update_metrics("map", maps)

    rows = [("output", os.fspath(args.output)), ("cells", str(query.n_obs)),
            ("genes matched", f"{summary['genes_found']} of {summary['genes_model']} "
                              f"({summary['genes_found'] / summary['genes_model']:.0%})"),
            ("Unknown", f"{_pct(summary['unknown_fraction'])} ({_unknown_rule(args)})")]
    if scores:
        rows += [("accuracy", _pct(scores["accuracy"])), ("macro-F1", f"{scores['macro_f1']:.3f}"),
                 (f"retrieval MAP@{summary['k']}", f"{scores['map']:.3f}")]
    elif truth is not None:
        rows.append(("accuracy", f"n/a: obs[{args.label_column!r}] has no labels"))
    rows.append(("plots", folder))
    print_summary("tiedae map", rows)
    return 0
