"""The subcommands. Imported only after the Keras backend has been chosen."""

import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import scipy.sparse
import tomli_w

from tiedae import plots, runs
from tiedae._validation import AUTO_EARLY_STOPPING_ROWS
from tiedae.cli.config import OPTIONS, dump_toml, effective_config
from tiedae.io import (
    DataError,
    load_labels,
    load_matrix,
    save_keras_model,
    save_npy,
    write_json,
    write_text,
)
from tiedae.io.atomic import atomic_path
from tiedae.precision import resolve_precision
from tiedae.preprocessing import CountPreprocessing
from tiedae.pretraining import PretrainingCheckpoint, StackedDenoisingAutoencoder
from tiedae.pretraining.interrupt import (
    PretrainingInterrupted,
    StopOnInterrupt,
    TrainingDiverged,
    graceful_interrupt,
)
from tiedae.pretraining.streaming import as_streamed, dense_rows, is_streamed
from tiedae.seeding import set_random_seed

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# What a fresh pretraining replaces: fine-tuning results of the previous stack are meaningless for the new one.
STALE_SECTIONS = ("finetune", "evaluate")


def read_data(args, labels_required=False, with_names=False):
    """Features and (optional) labels as the flags describe them (and feature names, `with_names`).

    A sparse matrix (.mtx, sparse .h5ad) stays a float32 CSR matrix; with
    --backed, a .npy or .h5ad stays on disk as a `StreamedMatrix`.
    """
    X, y, names = load_matrix(args.data, label_column=getattr(args, "label_column", None),
                              mmap=getattr(args, "backed", False))
    if getattr(args, "labels", None):
        y = load_labels(args.labels, n_rows=X.shape[0])
    if y is not None and len(y) != X.shape[0]:
        raise DataError(f"{len(y)} labels but {X.shape[0]} rows; they must match one to one.")
    if labels_required and y is None:
        raise DataError("this command needs labels: pass --labels FILE or --label-column NAME.")
    X = as_float_matrix(X)
    return (X, y, names) if with_names else (X, y)


def as_float_matrix(X):
    """float32 without densifying: CSR stays CSR, data on disk is streamed."""
    if is_streamed(X):
        return as_streamed(X)
    if scipy.sparse.issparse(X):
        return scipy.sparse.csr_matrix(X, dtype=np.float32)
    return np.asarray(X, dtype=np.float32)


def in_memory_dense(X, command):
    """A dense array for the supervised commands (their labelled rows are few)."""
    if is_streamed(X):
        raise DataError(f"`tiedae {command}` needs the data in memory; drop --backed.")
    return X.toarray() if scipy.sparse.issparse(X) else X


def preprocessing_from_flags(args, X):
    """The count preprocessing the flags ask for, with its target sum fixed on `X`."""
    target = getattr(args, "target_sum", 1e4)
    prep = CountPreprocessing(
        normalize=getattr(args, "normalize", False), log1p=getattr(args, "log1p", False),
        target_sum=None if target == 0 else target,
    )
    return prep.resolve(X)


def run_settings(run):
    """The tables of the run's config.toml other than [pretrain] (preprocessing, gene sets)."""
    path = run.file(runs.CONFIG)
    if not os.path.isfile(path):
        return {}
    with open(path, "rb") as handle:
        return {k: v for k, v in tomllib.load(handle).items() if k != "pretrain"}


def run_preprocessing(run):
    """The preprocessing a run was pretrained with (none for runs that predate it)."""
    return CountPreprocessing.from_dict(run_settings(run).get("preprocessing"))


def reconstruction_mse(stack, X, batch_size=1024):
    """Mean squared reconstruction error, one dense batch at a time."""
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        block = dense_rows(X, start, start + batch_size)
        total += float(np.sum((stack.reconstruct(block).astype(np.float64) - block) ** 2))
    return total / (X.shape[0] * X.shape[1])


def gene_set_mask(args, names, n_features):
    """The (genes x sets) adjacency of --gmt matched to the data's feature names."""
    from tiedae.genesets import gmt_adjacency

    if names is None:
        raise DataError(
            f"--gmt needs gene names, but {args.data!r} has none; use an .h5ad, .mtx/10x folder, "
            "a .csv/.tsv with a header or an .npz with feature_names."
        )
    if len(names) != n_features:
        raise DataError(f"{len(names)} feature names for {n_features} features.")
    if not os.path.isfile(args.gmt):
        raise DataError(f"gene-set file {args.gmt!r} does not exist.")
    adjacency, set_names, report = gmt_adjacency(args.gmt, names, min_genes=args.min_genes,
                                                 on_unknown="ignore")
    print(report.summary(), flush=True)
    return adjacency, set_names


def write_annotated(args, X, names, stack, codes, preprocessing, set_names=None):
    """--write-h5ad: the input as AnnData with the embedding, loadings and parameters added."""
    from tiedae.io import read_h5ad, write_h5ad
    from tiedae.io.anndata import _anndata
    from tiedae.io.mtx import read_barcodes
    from tiedae.sc import SingleCellAutoencoder, annotate

    source = os.fspath(args.data)
    if source.lower().endswith(".h5ad"):
        adata = read_h5ad(source, backed=True)  # X is copied from the file when written
    else:
        import pandas as pd

        var = pd.DataFrame(index=[str(n) for n in names] if names else [str(i) for i in range(X.shape[1])])
        barcodes = read_barcodes(source) if source.lower().endswith((".mtx", ".mtx.gz")) or os.path.isdir(source) else None
        obs = pd.DataFrame(index=barcodes or [str(i) for i in range(X.shape[0])])
        matrix = None if is_streamed(X) else X
        adata = _anndata().AnnData(X=matrix, obs=obs, var=var)
    model = SingleCellAutoencoder(stack, preprocessing, adata.var_names, set_names=set_names)
    annotate(adata, model, codes)
    write_h5ad(adata, args.write_h5ad)
    print(f"wrote {args.write_h5ad} (obsm['X_tiedae'], varm['tiedae_loadings'], uns['tiedae'])")


def split_rows(n_rows, fraction, seed, labels=None):
    """Indices (kept, held_out) with `fraction` of the rows held out (stratified by labels)."""
    if fraction <= 0:
        return np.arange(n_rows), np.arange(0)
    from sklearn.model_selection import train_test_split

    stratify = labels if labels is not None and _can_stratify(labels, fraction) else None
    return train_test_split(np.arange(n_rows), test_size=fraction, random_state=seed, stratify=stratify)


def _can_stratify(labels, fraction):
    _, counts = np.unique(labels, return_counts=True)
    return counts.min() >= 2 and int(len(labels) * fraction) >= len(counts)


def build_stack(config, verbose=1, data_parallel=False, adjacency=None):
    """The stack the config describes; with a gene-set `adjacency`, a masked first layer before `layers`."""
    if adjacency is not None:
        from tiedae.sc import GeneSetStackedAutoencoder

        return GeneSetStackedAutoencoder(
            adjacency, config["layers"], **_stack_kwargs(config, verbose, data_parallel)
        )
    return StackedDenoisingAutoencoder(
        layer_sizes=config["layers"], **_stack_kwargs(config, verbose, data_parallel)
    )


def _stack_kwargs(config, verbose, data_parallel):
    return dict(
        activation=config["activation"],
        corruption=config["corruption"],
        corruption_level=config["corruption_level"],
        loss=config["loss"],
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        finetune_epochs=config["finetune_epochs"],
        finetune_denoising=config["finetune_denoising"],
        seed=config["seed"],
        verbose=verbose,
        data_parallel=data_parallel,
        early_stopping=config["early_stopping"],
        n_iter_no_change=config["patience"],
        precision=config["precision"],
    )


def load_stack(run):
    path = run.file(runs.PRETRAINED_MODEL)
    if not os.path.isfile(path):
        raise DataError(f"{run.path!r} holds no pretrained stack yet; run `tiedae pretrain` first.")
    try:
        return StackedDenoisingAutoencoder.load(path)
    except DataError:
        raise
    except Exception as err:  # a truncated or foreign file: say so, no traceback
        raise DataError(f"cannot load {path!r} ({type(err).__name__}: {err}); the file may be corrupted.") from None


def check_features(stack, X, source):
    expected = stack.autoencoder_.input_dim
    if X.shape[1] != expected:
        raise DataError(
            f"{source} has {X.shape[1]} features but the model was trained on {expected}; "
            "use data with the same columns as at pretraining."
        )


def check_image_shape(image_shape, n_features):
    if image_shape is not None and image_shape[0] * image_shape[1] != n_features:
        height, width = image_shape
        raise DataError(
            f"--image-shape {height}x{width} has {height * width} pixels but the data has {n_features} "
            f"features; give a height and width whose product is {n_features}."
        )


def check_output_file(path, flag, suffix, source=None):
    """Refuse an output path that would fail only after the work: wrong suffix, missing folder, the input."""
    if not path:
        return
    if suffix and not os.fspath(path).endswith(suffix):
        raise DataError(f"{flag} {path!r} must end in {suffix!r}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DataError(f"{flag} {path!r}: the folder {folder!r} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise DataError(f"{flag} {path!r}: the folder {folder!r} is not writable; choose another path.")
    if os.path.isdir(path):
        raise DataError(f"{flag} {path!r} is a folder; give a file name.")
    if source is not None and os.path.abspath(path) == os.path.abspath(os.fspath(source)):
        raise DataError(f"{flag} {path!r} is the input file; write to another path.")


def check_write_h5ad(args):
    if getattr(args, "write_h5ad", None):
        from tiedae.io.anndata import _anndata

        check_output_file(args.write_h5ad, "--write-h5ad", ".h5ad", source=args.data)
        _anndata()  # anndata missing: say so now, not after training


def check_early_stopping_options(args, config):
    """Refuse early-stopping options that would have no effect (before the data is read)."""
    if config["early_stopping"] is True and config["validation_split"] <= 0:
        raise DataError(
            "--early-stopping needs validation rows to decide when to stop; set --validation-split "
            "above 0 (e.g. 0.1)."
        )
    # Only an explicit --no-early-stopping can be judged before the rows are counted.
    early_stopping_on(config["early_stopping"], True,
                      "--patience" if getattr(args, "patience", None) is not None else None, None)


def early_stopping_on(choice, possible, typed, when):
    """Early stopping as True or False: `choice` (True, False, or "auto"/None: on where
    `possible`), refusing a `typed` early-stopping flag (e.g. "--patience") that has no effect;
    `when` says where "auto" turns it on."""
    on = possible if choice in ("auto", None) else choice
    if typed and not on:
        if choice is False:
            raise DataError(f"{typed} has no effect without --early-stopping; add --early-stopping.")
        raise DataError(
            f"{typed} has no effect here: early stopping is on by default only {when}; add "
            f"--early-stopping or leave out {typed}."
        )
    return bool(on)


def resolve_early_stopping(args, config, X):
    """`config["early_stopping"]` as True or False for the rows `X` ("auto": on for at least
    AUTO_EARLY_STOPPING_ROWS rows in memory with validation rows), refused where it cannot work."""
    streamed = is_streamed(X)
    if config["early_stopping"] is True and streamed:
        raise DataError(
            "--early-stopping needs validation rows, but data read from disk (--backed) is not "
            "split; load it into memory (drop --backed) or leave out --early-stopping."
        )
    config["early_stopping"] = early_stopping_on(
        config["early_stopping"],
        not streamed and config["validation_split"] > 0 and X.shape[0] >= AUTO_EARLY_STOPPING_ROWS,
        "--patience" if getattr(args, "patience", None) is not None else None,
        f"for at least {AUTO_EARLY_STOPPING_ROWS} rows in memory with --validation-split above 0",
    )
    return config["early_stopping"]


def check_split(n_rows, fraction, flag):
    """Refuse a split that leaves a side without rows (scikit-learn rounds the held-out side up)."""
    if fraction <= 0:
        return
    if n_rows - math.ceil(fraction * n_rows) < 1:
        largest = math.floor((n_rows - 1) / n_rows * 1e4) / 1e4
        raise DataError(
            f"{flag} {fraction} holds out all {n_rows} rows, leaving none to train on; "
            + (f"use at most {largest}." if n_rows > 1 else "use more rows.")
        )


def check_label_fraction(n_train, fraction):
    """--label-fraction must keep at least one of the `n_train` training rows' labels."""
    if fraction < 1.0 and n_train - math.ceil((1.0 - fraction) * n_train) < 1:
        smallest = math.ceil(1e4 / n_train) / 1e4
        raise DataError(
            f"--label-fraction {fraction} keeps no labels of the {n_train} training rows; "
            f"use at least {smallest}."
        )


def check_training_labels(y):
    """Labels a classifier can learn: none missing, at least two classes."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        missing = np.isnan(y)
    elif y.dtype.kind in "OUS":
        missing = np.array([v is None or v == "" or (isinstance(v, float) and v != v) for v in y.tolist()],
                           dtype=bool)
    else:
        missing = np.zeros(len(y), dtype=bool)
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} label(s) are missing (NaN or empty), the first at row "
            f"{int(np.argmax(missing))}; drop those rows or give them a class."
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"every label is {classes[0].item() if hasattr(classes[0], 'item') else classes[0]!r}; "
            "fine-tuning a classifier needs at least two classes."
        )


def label_positions(y, classes):
    """Each label's index in `classes`, -1 for none of them. Numbers compare as numbers (1.0 is 1)."""
    try:
        labels, known = np.asarray(y).astype(np.float64), np.asarray(classes).astype(np.float64)
    except (TypeError, ValueError):  # text labels
        labels, known = np.asarray(y).astype(str), np.asarray(classes).astype(str)
    lookup = {value: index for index, value in enumerate(known.tolist())}
    return np.array([lookup.get(value, -1) for value in labels.tolist()], dtype=np.int64)


def feature_names_of(run):
    """The feature names the run was pretrained on; None for unnamed data and older runs."""
    path = run.file(runs.FEATURE_NAMES)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return [str(name) for name in json.load(handle)]
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path!r}: {err}") from None


def check_feature_names(run, names, source):
    """The same genes in the same order as at pretraining (as `tiedae.sc` requires)."""
    recorded = feature_names_of(run)
    if recorded is None or names is None:
        return
    names = [str(name) for name in names]
    if names != recorded:
        missing = [name for name in recorded if name not in set(names)]
        raise DataError(
            f"{source}'s features differ from the run's ({len(missing)} of its {len(recorded)} missing, "
            f"e.g. {missing[:5]}; otherwise in another order); subset and order them as at pretraining "
            f"(the names are in {run.file(runs.FEATURE_NAMES)!r}), e.g. adata[:, names]."
        )


def forget_previous_results(run):
    """A fresh pretraining replaces the stack: the old run's classifier, its metrics and plots go."""
    for path in (run.file(runs.FINETUNED_MODEL), run.file(runs.FEATURE_NAMES)):
        if os.path.isfile(path):
            os.remove(path)
    shutil.rmtree(run.file(runs.PLOTS), ignore_errors=True)  # only tiedae's own plots live there
    metrics = run.read_metrics()
    if any(section in metrics for section in STALE_SECTIONS):
        write_json(run.file(runs.METRICS), {k: v for k, v in metrics.items() if k not in STALE_SECTIONS})


def pretrain_stack(stack, X, y, config, run, resume=False, image_shape=None, settings=None,
                   feature_names=None):
    """The main job: greedy pretraining, then every file of the run directory.

    `settings`: further config.toml tables (preprocessing, gene sets);
    `feature_names`: recorded for the commands that read the run. Data on
    disk (a `StreamedMatrix`) is not split: it trains on every row.
    """
    started = time.perf_counter()
    check_image_shape(image_shape, X.shape[1])
    fraction = 0.0 if is_streamed(X) else config["validation_split"]
    check_split(X.shape[0], fraction, "option 'validation_split'")
    if not resume:  # a fresh start: an old checkpoint (and results) of this run must not be picked up
        shutil.rmtree(PretrainingCheckpoint(run.path).directory, ignore_errors=True)
        forget_previous_results(run)
    kept, held_out = split_rows(X.shape[0], fraction, config["seed"])
    validation = X[held_out] if len(held_out) else None
    # Ctrl-C stops after the current batch (a NaN loss already stops the layer unsaved).
    with graceful_interrupt():
        stack.pretrain(X[kept] if len(held_out) else X, validation_data=validation, run_dir=run.path,
                       resume=resume, callbacks=[StopOnInterrupt()])
    seconds = time.perf_counter() - started

    with atomic_path(run.file(runs.PRETRAINED_MODEL)) as tmp:
        stack.save(tmp)
    write_text(run.file(runs.CONFIG), dump_toml(config) + ("\n" + tomli_w.dumps(settings) if settings else ""))
    if feature_names is not None:
        write_json(run.file(runs.FEATURE_NAMES), [str(name) for name in feature_names])
    codes = stack.transform(X)
    save_npy(run.file(runs.EMBEDDING), codes)
    run.write_history(stack.history_, stack.finetune_history_)
    metrics = {
        "backend": keras.backend.backend(),
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "code_size": int(codes.shape[1]),
        "seconds": round(seconds, 3),
        "precision": stack.precision_,
        "layers": [
            {
                "width": width,
                "final_loss": _last(history.get("loss")),
                "final_val_loss": _last(history.get("val_loss")),
                "epochs_run": run_epochs,
                "best_epoch": best_epoch,
            }
            for width, history, run_epochs, best_epoch in zip(
                stack.layer_sizes, stack.history_, stack.n_iter_, stack.best_epoch_
            )
        ],
    }
    if stack.finetune_n_iter_ is not None:
        metrics["finetune"] = {"epochs_run": stack.finetune_n_iter_,
                               "best_epoch": stack.finetune_best_epoch_}
    if settings and "preprocessing" in settings:
        metrics["preprocessing"] = settings["preprocessing"]
    if settings and "gene_sets" in settings:
        metrics["gene_sets"] = len(settings["gene_sets"]["set_names"])
    if validation is not None:
        metrics["validation_reconstruction_mse"] = reconstruction_mse(stack, validation)
    run.update_metrics("pretrain", metrics)
    write_plots(stack, X, y, codes, run, image_shape)
    return stack, metrics


def write_plots(stack, X, y, codes, run, image_shape=None):
    image_shape = image_shape or plots.infer_image_shape(X.shape[1])
    plots.plot_loss_curves(stack.history_, run.plot("loss_curves.png"), stack.finetune_history_)
    if image_shape is not None:
        kernel = keras.ops.convert_to_numpy(stack.autoencoder_.kernels[0])
        plots.plot_filters(kernel, image_shape, run.plot("filters.png"))
    sample = dense_rows(X, 0, 10)
    plots.plot_reconstructions(sample, stack.reconstruct(sample), run.plot("reconstructions.png"), image_shape)
    plots.plot_embedding(codes, run.plot("embedding.png"), labels=y)


def train_classifier(stack, x_train, y_train, x_test, y_test, n_classes, pretrained, epochs,
                     batch_size, learning_rate=1e-3, freeze=False, unfreeze_after=None, verbose=0,
                     validation=None, patience=10, seed=None):
    """Fine-tune (pretrained=True) or train from random init the same network; return
    (model, accuracy, history, stopping). With `validation` (x_val, y_val), stop early on its loss.
    `seed` fixes the new layers' initialisation, dropout and the batch order."""
    from tiedae.pretraining import fit_with_unfreezing
    from tiedae.pretraining.early_stopping import BestEpochStopping

    if seed is not None:
        set_random_seed(seed)

    model = stack.to_classifier(n_classes, freeze=freeze and pretrained, pretrained=pretrained)
    compile_kwargs = dict(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit_kwargs = dict(epochs=epochs, batch_size=batch_size, verbose=verbose)
    stopper = None
    if validation is not None:
        stopper = BestEpochStopping(patience)
        fit_kwargs.update(validation_data=validation, callbacks=[stopper])
    if pretrained and freeze and unfreeze_after:
        history = fit_with_unfreezing(model, x_train, y_train, unfreeze_after=unfreeze_after,
                                      compile_kwargs=compile_kwargs, **fit_kwargs)
    else:
        model.compile(**compile_kwargs)
        history = model.fit(x_train, y_train, **fit_kwargs).history
    accuracy = float(np.mean(predict_classes(model, x_test) == y_test)) if len(x_test) else None
    run_epochs = len(history.get("loss", []))
    best = stopper.best_epoch_ if stopper is not None and stopper.best_epoch_ else run_epochs
    return model, accuracy, history, {"epochs_run": run_epochs, "best_epoch": best}


def predict_classes(model, X, batch_size=1024):
    if scipy.sparse.issparse(X) or is_streamed(X):  # one dense batch at a time
        return np.concatenate([
            predict_classes(model, dense_rows(X, start, start + batch_size), batch_size)
            for start in range(0, X.shape[0], batch_size)
        ])
    return np.argmax(model.predict(X, batch_size=batch_size, verbose=0), axis=-1)


def encode_labels(y):
    classes, indices = np.unique(np.asarray(y), return_inverse=True)
    return classes, indices.astype(np.int32)


def _last(values):
    return float(values[-1]) if values else None


# ---------------------------------------------------------------- subcommands


def cmd_pretrain(args):
    # Everything that can be checked is checked before the run directory exists.
    config = effective_config(args)
    check_early_stopping_options(args, config)
    raw, y, names = read_data(args, with_names=True)
    check_image_shape(args.image_shape, raw.shape[1])
    resolve_early_stopping(args, config, raw)  # config.toml records what the run did
    if not is_streamed(raw):  # data on disk is not split
        check_split(raw.shape[0], config["validation_split"], "option 'validation_split'")
    else:
        config["validation_split"] = 0.0  # what the run does, in its config.toml
    check_write_h5ad(args)
    preprocessing = preprocessing_from_flags(args, raw)
    X = preprocessing(raw)
    settings = {"preprocessing": preprocessing.to_dict(),
                "training": {"backed": bool(args.backed), "data_parallel": args.data_parallel}}
    adjacency = set_names = None
    if args.gmt:
        adjacency, set_names = gene_set_mask(args, names, X.shape[1])
        settings["gene_sets"] = {"gmt": os.path.abspath(args.gmt), "min_genes": args.min_genes,
                                 "set_names": list(set_names)}
    stack = build_stack(config, verbose=0 if args.quiet else 1, data_parallel=args.data_parallel,
                        adjacency=adjacency)
    try:  # bfloat16 the backend cannot run is refused before the run directory exists
        resolve_precision(config["precision"])
    except ValueError as err:
        raise DataError(str(err)) from None
    if runs.RunDirectory.holds_run(args.run_dir) and not (args.resume or args.overwrite):
        raise DataError(
            f"{args.run_dir!r} already holds a run; pass --resume to continue it "
            "or --overwrite to start it again."
        )
    resume = args.resume
    if resume and not runs.RunDirectory.holds_run(args.run_dir):
        print(f"tiedae: no run to resume in {args.run_dir}; starting a new run.", file=sys.stderr)
        resume = False
    run = runs.RunDirectory(args.run_dir, overwrite=args.overwrite)
    try:
        stack, metrics = pretrain_stack(stack, X, y, config, run, resume=resume,
                                        image_shape=args.image_shape, settings=settings, feature_names=names)
    except PretrainingInterrupted:
        done = (PretrainingCheckpoint(run.path).read_manifest() or {}).get("completed_layers", 0)
        print(f"tiedae: interrupted; {done} of {len(stack.layer_sizes)} layers are saved in "
              f"{run.path}. Continue with the same command plus --resume.", file=sys.stderr)
        return 130
    except TrainingDiverged:
        raise  # the finished layers stay in the checkpoint
    except ValueError:
        run.discard_if_new()  # a run that failed on bad input leaves nothing behind
        raise
    if args.write_h5ad:
        codes = np.load(run.file(runs.EMBEDDING))
        write_annotated(args, raw, names, stack, codes, preprocessing, set_names)
    summary = [("run directory", run.path), ("time", f"{metrics['seconds']:.1f} s"),
               ("data", f"{X.shape[0]} x {X.shape[1]} -> code {metrics['code_size']}"),
               ("precision", metrics["precision"])]
    for k, layer in enumerate(metrics["layers"]):
        summary.append((f"layer {k + 1} ({layer['width']})", _loss_text(layer)))
    print_summary("tiedae pretrain", summary)
    return 0


def cmd_finetune(args):
    OPTIONS["learning_rate"][0](args.learning_rate, "learning_rate")  # pretrain's check: positive, finite
    run = runs.RunDirectory(args.run_dir, must_exist=True)
    stack = load_stack(run)
    X, y, names = read_data(args, labels_required=True, with_names=True)
    X = in_memory_dense(run_preprocessing(run)(X), "finetune")
    check_features(stack, X, args.data)
    check_feature_names(run, names, args.data)
    check_training_labels(y)
    check_split(len(X), args.test_split, "--test-split")
    check_label_fraction(len(X) - math.ceil(args.test_split * len(X)), args.label_fraction)
    classes, targets = encode_labels(y)
    started = time.perf_counter()
    train, test = split_rows(len(X), args.test_split, args.seed, labels=targets)
    if args.label_fraction < 1.0:
        train, _ = split_rows(len(train), 1.0 - args.label_fraction, args.seed, labels=targets[train])
        train = np.sort(train)
    typed = next((flag for flag, value in (("--patience", args.patience),
                                           ("--validation-split", args.validation_split))
                  if value is not None), None)
    # "auto" also needs two training rows of every class (one of them validates).
    fewest = int(np.unique(targets[train], return_counts=True)[1].min())
    early_stopping = early_stopping_on(
        args.early_stopping, len(train) >= AUTO_EARLY_STOPPING_ROWS and fewest >= 2, typed,
        f"from {AUTO_EARLY_STOPPING_ROWS} labelled training rows with two or more of every class "
        f"(here {len(train)}, the rarest class {fewest})")
    validation = None
    if early_stopping:
        from tiedae.pretraining.early_stopping import validation_rows

        # Held out from the labelled training rows only; the test rows stay for the report.
        fit_rows, val_rows = validation_rows(
            len(train), args.validation_split or 0.1, args.seed, y=classes[targets[train]],
            what="labelled training rows", off="pass --no-early-stopping",
        )
        validation = (X[train[val_rows]], targets[train[val_rows]])
        train = train[fit_rows]
    results = {}
    models = {}
    for name, pretrained in (("pretrained", True), ("random_init", False)):
        if name == "random_init" and not args.compare:
            continue
        model, accuracy, history, stopping = train_classifier(
            stack, X[train], targets[train], X[test], targets[test], len(classes), pretrained,
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            freeze=args.freeze, unfreeze_after=args.unfreeze_after, verbose=0 if args.quiet else 1,
            validation=validation, patience=args.patience or 10, seed=args.seed,
        )
        losses = history.get("loss") or []
        if not np.all(np.isfinite(losses)):
            # Before anything is written: the previous finetuned.keras and metrics stay as they were.
            bad = int(np.argmin(np.isfinite(losses)))
            raise TrainingDiverged(
                f"fine-tuning ({name.replace('_', ' ')}) diverged: the loss became {float(losses[bad])} at "
                f"epoch {bad + 1}; nothing was saved. Lower --learning-rate."
            )
        results[name] = {"test_accuracy": accuracy, "final_loss": _last(losses), **stopping}
        models[name] = model
    save_keras_model(run.file(runs.FINETUNED_MODEL), models["pretrained"])
    metrics = {
        "classes": [c.item() if hasattr(c, "item") else c for c in classes],
        "n_train_labels": int(len(train)),
        "n_validation_labels": 0 if validation is None else int(len(validation[1])),
        "n_test": int(len(test)),
        "seconds": round(time.perf_counter() - started, 3),
        **results,
    }
    run.update_metrics("finetune", metrics)
    rows = [("run directory", run.path), ("labelled rows", str(len(train)))]
    if validation is not None:
        rows.append(("validation rows", f"{metrics['n_validation_labels']} (early stopping)"))
    rows.append(("test rows", str(len(test))))
    for name, r in results.items():
        epochs = f"{r['epochs_run']} epochs"
        if validation is not None:
            epochs += f", kept epoch {r['best_epoch']}"
        rows.append((f"test accuracy ({name})", f"{_pct(r['test_accuracy'])} ({epochs})"))
    print_summary("tiedae finetune", rows)
    return 0


def cmd_embed(args):
    run = runs.RunDirectory(args.run_dir, must_exist=True)
    stack = load_stack(run)
    check_output_file(args.output, "--output", None, source=args.data)
    check_write_h5ad(args)
    raw, _, names = read_data(args, with_names=True)
    preprocessing = run_preprocessing(run)
    X = preprocessing(raw)
    check_features(stack, X, args.data)
    check_feature_names(run, names, args.data)
    codes = stack.transform(X, batch_size=args.batch_size)
    output = args.output or run.file(runs.EMBEDDING)
    save_npy(output, codes)
    print(f"wrote {codes.shape[0]} x {codes.shape[1]} embedding to {output}")
    if args.write_h5ad:
        set_names = run_settings(run).get("gene_sets", {}).get("set_names")
        write_annotated(args, raw, names, stack, codes, preprocessing, set_names)
    return 0


def cmd_evaluate(args):
    run = runs.RunDirectory(args.run_dir, must_exist=True)
    stack = load_stack(run)
    X, y, names = read_data(args, with_names=True)
    X = run_preprocessing(run)(X)
    check_features(stack, X, args.data)
    check_feature_names(run, names, args.data)
    finetuned = run.file(runs.FINETUNED_MODEL)
    model = positions = None
    if y is not None and os.path.isfile(finetuned):
        model = keras.models.load_model(finetuned, safe_mode=True)
        # The classes the classifier was trained on; older runs without them: its output indices.
        classes = run.read_metrics().get("finetune", {}).get("classes") or range(model.output_shape[-1])
        positions = label_positions(y, classes)
        unknown = int(np.sum(positions < 0))
        if unknown == len(positions):
            raise DataError(
                f"none of the labels is one of the {len(classes)} classes the classifier was trained on "
                f"(e.g. {list(classes)[:5]}); pass the labels used with `tiedae finetune`."
            )
        if unknown:
            print(f"tiedae: warning: {unknown} of {len(positions)} labels are none of the classes the "
                  "classifier was trained on; they count as misclassified.", file=sys.stderr)
    results = {"reconstruction_mse": reconstruction_mse(stack, X), "n_samples": int(X.shape[0])}
    if model is not None:
        results["accuracy"] = float(np.mean(predict_classes(model, X) == positions))
    run.update_metrics("evaluate", results)
    rows = [("reconstruction MSE", f"{results['reconstruction_mse']:.5f}")]
    if "accuracy" in results:
        rows.append(("accuracy", _pct(results["accuracy"])))
    elif y is not None:
        rows.append(("accuracy", f"n/a: no fine-tuned model in {run.path}; run `tiedae finetune` first"))
    elif os.path.isfile(finetuned):
        rows.append(("accuracy", "n/a: no labels; pass --labels FILE or --label-column NAME"))
    print_summary("tiedae evaluate", rows)
    return 0


def print_summary(title, rows):
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}\n" + "-" * len(title))
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


def _loss_text(layer):
    text = f"loss {layer['final_loss']:.4f}" if layer["final_loss"] is not None else "loss n/a"
    if layer["final_val_loss"] is not None:
        text += f", val_loss {layer['final_val_loss']:.4f}"
    if layer.get("best_epoch") and layer["best_epoch"] != layer.get("epochs_run"):
        text += f"; stopped after {layer['epochs_run']} epochs, kept epoch {layer['best_epoch']}"
    return text


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"
