"""Checks of the arguments alone, run before Keras loads (a mistake is answered at once).

Besides the option values (and the --config file), a flag that would have no
effect in the given combination is refused: a user who types it expects it to
change the run. Only flags are refused this way; a config file, e.g. a run's
own config.toml given back, may hold settings its other settings leave unused.
"""

import os

from tiedae.cli.config import effective_config
from tiedae.cli.mapping_args import HANDLERS as MAPPING_HANDLERS
from tiedae.cli.mapping_args import check_mapping_arguments
from tiedae.io.errors import DataError

# What --backed can leave on disk; every other input is read into memory.
STREAMED_SUFFIXES = (".npy", ".h5ad")


def check_arguments(args):
    """Refuse, with one sentence, arguments that are wrong or would be ignored."""
    if args.handler == "cmd_pretrain":
        _check_pretrain(args)
    elif args.handler == "cmd_finetune":
        if args.unfreeze_after is not None and not args.freeze:
            raise DataError("--unfreeze-after has no effect without --freeze; add --freeze or leave it out.")
    elif args.handler == "cmd_embed":
        _check_backed(args)
    elif args.handler in MAPPING_HANDLERS:
        check_mapping_arguments(args)


def _check_pretrain(args):
    # Which flags were typed: `effective_config` fills the rest in from the file and the defaults.
    typed = {name for name in ("target_sum", "min_genes", "validation_split") if getattr(args, name) is not None}
    config = effective_config(args)
    if "target_sum" in typed and not args.normalize:
        raise DataError("--target-sum has no effect without --normalize; add --normalize or leave it out.")
    if "min_genes" in typed and not args.gmt:
        raise DataError("--min-genes has no effect without --gmt; add --gmt FILE or leave it out.")
    _check_backed(args)
    if args.backed and "validation_split" in typed and config["validation_split"] > 0:
        raise DataError(
            "--validation-split has no effect with --backed: data streamed from disk is not split; "
            "drop one of them."
        )


def _check_backed(args):
    if args.backed and not os.fspath(args.data).lower().endswith(STREAMED_SUFFIXES):
        raise DataError(
            f"--backed streams only a .npy or .h5ad file from disk, and {args.data!r} would be read "
            "into memory anyway; drop --backed, or save the matrix with numpy.save."
        )
