"""The `tiedae` command: pretrain, finetune, embed, evaluate, reference, map, demo.

Keras reads its backend once, at import; the `tiedae` script (`tiedae_cli`)
settles it before this package loads: `--backend`, else `KERAS_BACKEND`, else
JAX. Here the choice is only checked against the Keras already running.
"""

import argparse
import os
import sys

from tiedae._validation import AUTO_EARLY_STOPPING_ROWS

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT_BACKEND = "jax"
EXIT_USER_ERROR = 2


def _image_shape(text):
    try:
        shape = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image shape must look like 28x28; received {text!r}") from None
    if len(shape) != 2 or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"image shape must be two positive sizes like 28x28; received {text!r}")
    return shape


def _fraction(text, upper_included=True):
    interval = "(0, 1]" if upper_included else "(0, 1)"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in {interval}; received {text!r}") from None
    if not (0.0 < value <= 1.0 if upper_included else 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in {interval}; received {text!r}")
    return value


def _open_fraction(text):
    """A held-out fraction: both sides of the split need rows."""
    return _fraction(text, upper_included=False)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


def _seed(text):
    from tiedae.cli.config import check_seed  # the config file's seed check, one bound for both
    from tiedae.io.errors import DataError

    try:
        return check_seed(text, "seed")
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser():
    from tiedae.cli.config import add_pretraining_flags

    parser = argparse.ArgumentParser(
        prog="tiedae",
        description="Tied-weight denoising autoencoders and greedy layer-wise pretraining (Keras 3).",
    )
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help=f"Keras backend (default: $KERAS_BACKEND, else {DEFAULT_BACKEND})")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def data_args(p, labels=True):
        p.add_argument("data", help="input matrix: .npy, .npz (arrays X[, y]), .csv or .tsv (header allowed), "
                                    ".h5ad (AnnData), .mtx[.gz] or a 10x folder (sparse counts stay sparse)")
        if labels:
            p.add_argument("--labels", help="labels file (.npy, .npz, .csv/.txt: one per row)")
            p.add_argument("--label-column", help="name or 0-based index of the label column in a .csv/.tsv, "
                                                  "or an obs column of an .h5ad")
        p.add_argument("--run-dir", required=True, help="run directory")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def single_cell_args(p, pretrain=False):
        group = p.add_argument_group(
            "single-cell and large data",
            "--normalize, --log1p, --target-sum, --gmt, --min-genes, --backed and --data-parallel "
            "can also be set in the --config TOML, in [preprocessing], [gene_sets] and [training] "
            "tables (a run's own config.toml has them). A flag that would have no effect "
            "(--target-sum without --normalize, --min-genes without --gmt, --backed with another "
            "format or with --validation-split) is refused." if pretrain else None,
        )
        group.add_argument("--backed", action="store_true", default=None,
                           help="stream a .npy (memory-mapped) or .h5ad (backed) from disk instead of loading it"
                                + ("; no validation split" if pretrain else ""))
        group.add_argument("--write-h5ad", metavar="OUT",
                           help="also write an .h5ad with the embedding in obsm['X_tiedae'], the first-layer "
                                "loadings in varm['tiedae_loadings'] and the parameters in uns['tiedae']")
        if not pretrain:
            return
        # Defaults None: unset flags fall back to the --config file ([preprocessing], [gene_sets]).
        group.add_argument("--normalize", action="store_true", default=None,
                           help="scale every row (cell) to --target-sum counts first (recorded in the run)")
        group.add_argument("--log1p", action="store_true", default=None,
                           help="then take log(1 + x) (recorded in the run)")
        group.add_argument("--target-sum", type=float, default=None,
                           help="counts per row after --normalize (default: 10000; 0: the median)")
        group.add_argument("--gmt", metavar="FILE",
                           help="gene sets (GMT): a first layer with one unit per set, connected to its genes "
                                "(needs gene names: .h5ad, .mtx/10x, a .csv header or feature_names in .npz)")
        group.add_argument("--min-genes", type=_positive_int, default=None,
                           help="with --gmt: leave out sets with fewer genes in the data (default: 5)")
        group.add_argument("--data-parallel", nargs="?", type=_positive_int, const=True, default=None,
                           metavar="N", help="train data-parallel on all (or N) devices; JAX backend only")

    p = commands.add_parser("pretrain", help="greedy layer-wise pretraining of a stacked denoising autoencoder",
                            description="Greedy layer-wise pretraining; writes models, metrics, history, embedding and plots to --run-dir.")
    data_args(p)
    p.add_argument("--config", help="TOML file of pretraining options (flags override it)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --run-dir (with no run there, say so and start one)")
    p.add_argument("--overwrite", action="store_true", help="write into a directory that is not a previous run, or restart one")
    p.add_argument("--image-shape", type=_image_shape, help="HxW of image inputs for the filter plot (default: square if possible)")
    add_pretraining_flags(p)
    single_cell_args(p, pretrain=True)
    p.set_defaults(handler="cmd_pretrain")

    p = commands.add_parser("finetune", help="train a classifier from the pretrained stack",
                            description="Hand the pretrained stack to a classifier and fine-tune it on labelled rows.")
    data_args(p)
    # The defaults are PretrainedMLPClassifier's recipe, chosen on validation rows
    # (docs/recipe_selection.md): Adam 0.003, batch 128, at most 300 epochs, early stopping.
    p.add_argument("--epochs", type=_positive_int, default=300,
                   help="epochs of fine-tuning; a maximum with early stopping (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=128, help="batch size (default: %(default)s)")
    # Checked like pretrain's --learning-rate, in the command (one message for both).
    p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--test-split", type=_open_fraction, default=0.2,
                   help="fraction of rows held out for the test accuracy (default: %(default)s)")
    p.add_argument("--label-fraction", type=_fraction, default=1.0,
                   help="use only this fraction of the training labels (default: %(default)s)")
    p.add_argument("--freeze", action="store_true", help="freeze the pretrained layers")
    p.add_argument("--unfreeze-after", type=_positive_int, help="with --freeze (required): unfreeze after N epochs")
    p.add_argument("--compare", action="store_true", help="also train the same network from random init")
    p.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                   help="hold out --validation-split of the labelled training rows (stratified) and stop "
                        "once their loss stops improving, keeping the best epoch; --epochs becomes a maximum "
                        f"(default: on from {AUTO_EARLY_STOPPING_ROWS} labelled training rows, two or more per class)")
    p.add_argument("--patience", type=_positive_int, default=None,
                   help="with early stopping: epochs without improvement before stopping (default: 10)")
    p.add_argument("--validation-split", type=_open_fraction, default=None,
                   help="with early stopping: fraction of the labelled training rows held out (default: 0.1)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the splits and the classifier (default: %(default)s)")
    p.set_defaults(handler="cmd_finetune")

    p = commands.add_parser("embed", help="write the code of every row", description="Encode data with a pretrained stack.")
    data_args(p, labels=False)
    p.add_argument("--output", help="output .npy (default: RUN_DIR/embedding.npy)")
    p.add_argument("--batch-size", type=_positive_int, default=1024)
    single_cell_args(p)
    p.set_defaults(handler="cmd_embed")

    p = commands.add_parser("evaluate", help="reconstruction error (and accuracy with labels)",
                            description="Evaluate a run's models on data.")
    data_args(p)
    p.set_defaults(handler="cmd_evaluate")

    from tiedae.cli.mapping_args import add_mapping_commands

    add_mapping_commands(commands, data_args, _positive_int, _open_fraction, _seed)

    p = commands.add_parser("demo", help="the main job on scikit-learn's digits",
                            description="Pretrain on digits, fine-tune with 10% of the labels, and compare with random init.")
    p.add_argument("--run-dir", default=os.path.join("runs", "demo"), help="run directory (default: runs/demo)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a directory that is neither empty nor a previous demo run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(handler="cmd_demo")
    return parser


def _choose_backend(requested):
    backend = requested or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ValueError(f"Keras is already running on {current!r} in this process; cannot switch to {backend!r}.")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return backend


def main(argv=None, load_package=None):
    """Run the command in `argv`; return its exit status.

    `load_package`: called once the arguments are checked, before the command
    needs Keras (the `tiedae` script defers the package's `__init__` to it, so
    that a mistake is answered without loading Keras).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _choose_backend(args.backend)
        from tiedae.cli.checks import check_arguments

        check_arguments(args)
        if load_package is not None:
            load_package()
        if args.handler == "cmd_demo":
            from tiedae.cli import demo as module
        elif args.handler in ("cmd_reference", "cmd_map"):
            from tiedae.cli import mapping as module
        else:
            from tiedae.cli import commands as module
        return getattr(module, args.handler)(args)
    except KeyboardInterrupt:
        print("tiedae: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # user errors: one line, no traceback
        if args.debug:
            raise
        print(f"tiedae: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
