"""Flags and early checks of `tiedae reference` and `tiedae map` (no Keras here).

`tiedae reference REF.h5ad --label-column cell_type --run-dir RUN` pretrains on
a labelled reference, fine-tunes on its labels and saves the `ReferenceModel`
in RUN; `tiedae map QUERY.h5ad --run-dir RUN --output annotated.h5ad` maps new
cells onto it (`tiedae.mapping`).
"""

import argparse
import os

from tiedae.io.errors import DataError

HANDLERS = ("cmd_reference", "cmd_map")
REFERENCE_MODEL = "reference.keras"  # inside the run directory
MARKER = "tiedae-run.json"  # tiedae.runs.MARKER; runs imports nothing heavy, but stays unimported here


def _option(name):
    """An argparse type from the pretraining option table (same checks, same messages)."""
    from tiedae.cli.config import OPTIONS

    def parse(text):
        try:
            return OPTIONS[name][0](text, name)
        except DataError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _unit_interval(include_zero):
    """An argparse type: a number in [0, 1], or in (0, 1] without `include_zero`."""
    interval = "[0, 1]" if include_zero else "(0, 1]"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (0.0 <= value <= 1.0 and (include_zero or value > 0.0)):
            raise argparse.ArgumentTypeError(f"expected a number in {interval}; received {text!r}")
        return value

    return parse


_probability = _unit_interval(include_zero=True)


def add_mapping_commands(commands, data_args, positive_int, open_fraction, seed):
    """The two subcommands, on the parser's `commands` (helpers passed in from `tiedae.cli`)."""
    p = commands.add_parser(
        "reference", help="train a reference model on labelled cells (.h5ad) for `tiedae map`",
        description="Pretrain greedily on a labelled reference .h5ad, fine-tune on its --label-column "
                    "(early stopping on held-out reference cells) and save the model, metrics and "
                    "plots to --run-dir.")
    data_args(p, labels=False)
    p.add_argument("--label-column", required=True, help="obs column of the cell types")
    p.add_argument("--layer", help="use adata.layers[LAYER] instead of X (also for the queries mapped later)")
    p.add_argument("--query", metavar="H5AD",
                   help="unlabelled cells (.h5ad, e.g. the query) to pretrain on as well; never fine-tuned on")
    p.add_argument("--layers", type=_option("layers"), default=[256, 64],
                   help="encoder widths; the last is the embedding's size (default: 256,64)")
    p.add_argument("--epochs", type=_option("epochs"), default=10,
                   help="pretraining epochs per layer (one, or one per layer; default: %(default)s)")
    p.add_argument("--finetune-epochs", type=positive_int, default=100,
                   help="most epochs of fine-tuning on the labels (default: %(default)s)")
    p.add_argument("--patience", type=positive_int, default=10,
                   help="fine-tuning (and, with --early-stopping, each pretrained layer) stops after this "
                        "many epochs without improvement of the held-out loss (default: %(default)s)")
    p.add_argument("--validation-split", type=open_fraction, default=0.1,
                   help="fraction of the reference cells (stratified) held out for early stopping "
                        "(default: %(default)s)")
    p.add_argument("--early-stopping", action="store_true",
                   help="also stop each pretrained layer early (--epochs becomes a maximum)")
    p.add_argument("--random-init", action="store_true",
                   help="skip pretraining: train the same network from random init (a baseline)")
    p.add_argument("--corruption-level", type=_option("corruption_level"), default=0.2,
                   help="masking-noise rate of pretraining (one, or one per layer; default: %(default)s)")
    p.add_argument("--dropout", type=_probability, default=0.0,
                   help="dropout before the classifier head during fine-tuning (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default: %(default)s)")
    p.add_argument("--learning-rate", type=_option("learning_rate"), default=1e-3,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --run-dir")
    group = p.add_argument_group("count preprocessing (recorded in the model, reapplied by `tiedae map`)")
    group.add_argument("--normalize", action="store_true", help="scale every cell to --target-sum counts")
    group.add_argument("--log1p", action="store_true", help="then take log(1 + x)")
    group.add_argument("--target-sum", type=float, default=None,
                       help="counts per cell after --normalize (default: 10000; 0: the median)")
    p.set_defaults(handler="cmd_reference")

    p = commands.add_parser(
        "map", help="annotate query cells (.h5ad) with a reference run's labels",
        description="Map a query .h5ad onto the reference of --run-dir (genes aligned by name, missing ones "
                    "zero) and write a new annotated .h5ad: obsm['X_tiedae'], obs['tiedae_label'] "
                    "('Unknown' below --confidence-threshold), obs['tiedae_confidence'], and the --k "
                    "nearest reference cells. Plots go to RUN_DIR/plots/map_<output name>/.")
    data_args(p, labels=False)
    p.add_argument("--output", "-o", required=True, help="the annotated .h5ad to write (a new file)")
    p.add_argument("--confidence-threshold", type=_probability, default=0.5,
                   help="with --unknown softmax/both/either: cells whose largest class probability is below "
                        "this are 'Unknown' (default: %(default)s)")
    group = p.add_argument_group(
        "the Unknown rule (tiedae.mapping.unknown_mask; docs/benchmarks.md, mapping, says which rule the "
        "benchmark chose on validation cells: distance, --novelty-k 15, --novelty-quantile 0.99)")
    group.add_argument("--unknown", choices=("softmax", "distance", "both", "either"), default="softmax",
                       help="softmax: low confidence; distance: far from every reference cell in the "
                            "embedding (novelty); both: the two at once; either: one of them (default: %(default)s)")
    group.add_argument("--novelty-quantile", type=_unit_interval(include_zero=False), default=0.99,
                       help="a cell is novel above this quantile of the held-out reference cells' novelty "
                            "(default: %(default)s)")
    group.add_argument("--novelty-k", type=positive_int, default=10,
                       help="novelty: mean distance to this many nearest reference cells (default: %(default)s)")
    group.add_argument("--novelty-metric", choices=("euclidean", "cosine"), default="euclidean",
                       help="distance of the novelty score (default: %(default)s)")
    group.add_argument("--novelty-calibration", choices=("held-out", "all"), default="held-out",
                       help="reference cells whose novelty sets the threshold: those held out from fine-tuning, "
                            "or all (default: %(default)s)")
    group.add_argument("--novelty-per-type", action="store_true",
                       help="one threshold per predicted cell type (types with few calibration cells use the "
                            "overall one)")
    p.add_argument("--label-column",
                   help="obs column of the query's own cell types: report accuracy, macro-F1 and retrieval MAP")
    p.add_argument("--k", type=positive_int, default=10,
                   help="nearest reference cells kept per query cell, and the depth of the retrieval MAP "
                        "(default: %(default)s)")
    p.add_argument("--min-overlap", type=_probability, default=0.5,
                   help="refuse a query that has fewer than this fraction of the model's genes (default: %(default)s)")
    p.add_argument("--layer", help="use the query's adata.layers[LAYER] (default: the reference's choice)")
    p.add_argument("--backed", action="store_true", help="read the query's X from disk in batches")
    p.add_argument("--batch-size", type=positive_int, default=1024, help="cells per batch (default: %(default)s)")
    p.set_defaults(handler="cmd_map")


def _check_h5ad(path, what):
    if not os.fspath(path).lower().endswith(".h5ad"):
        raise DataError(f"{what} {path!r} must be an AnnData .h5ad file (genes named in var_names).")
    if not os.path.isfile(path):
        raise DataError(f"{what} {path!r} does not exist; check the path.")


def check_mapping_arguments(args):
    """The checks that need no data: file kinds, the run directory, flags without effect."""
    if args.handler == "cmd_reference":
        _check_h5ad(args.data, "the reference")
        if args.query:
            _check_h5ad(args.query, "--query")
        if args.target_sum is not None and not args.normalize:
            raise DataError("--target-sum has no effect without --normalize; add --normalize or leave it out.")
        if args.target_sum is not None and args.target_sum < 0:
            raise DataError(f"--target-sum must be positive (or 0: the median); received {args.target_sum}.")
        run_dir = os.fspath(args.run_dir)
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise DataError(f"run directory {run_dir!r} exists and is a file.")
        if os.path.isdir(run_dir) and os.listdir(run_dir) and not args.overwrite:
            previous = os.path.isfile(os.path.join(run_dir, MARKER))
            raise DataError(
                f"{run_dir!r} already holds {'a run' if previous else 'files'}; choose another "
                "--run-dir or pass --overwrite."
            )
        return
    _check_h5ad(args.data, "the query")
    run_dir = os.fspath(args.run_dir)
    if not os.path.isdir(run_dir):
        raise DataError(f"reference run directory {run_dir!r} does not exist; build it with `tiedae reference`.")
    if not os.path.isfile(os.path.join(run_dir, REFERENCE_MODEL)):
        raise DataError(
            f"{run_dir!r} holds no {REFERENCE_MODEL}; pass the --run-dir of a `tiedae reference` run."
        )
    if not os.fspath(args.output).endswith(".h5ad"):
        raise DataError(f"--output {args.output!r} must end in '.h5ad'.")
