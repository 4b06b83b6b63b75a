"""Options of the pretraining job: command-line flags, TOML files, and the effective config.

One table (`OPTIONS`) describes every option once; the argparse flags, the
TOML validation and the config written into the run directory derive from it.
"""

import argparse
import math
import numbers
import os

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import tomli_w

from tiedae._validation import AUTO_EARLY_STOPPING_ROWS
from tiedae.io.errors import DataError
from tiedae.precision import PRECISIONS

CORRUPTION_CHOICES = ("masking", "salt_and_pepper", "gaussian", "none")
LOSS_CHOICES = ("auto", "binary_crossentropy", "mse")


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
        except ValueError:
            pass
        raise DataError(f"option {name!r} must be an integer; received {value!r}.")
    return int(value)


def _float(value, name):
    if isinstance(value, bool):
        raise DataError(f"option {name!r} must be a number; received {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"option {name!r} must be a number; received {value!r}.") from None


def _str(value, name):
    if not isinstance(value, str):
        raise DataError(f"option {name!r} must be a string; received {value!r}.")
    return value


def _flag(value, name):
    if not isinstance(value, bool):
        raise DataError(f"option {name!r} must be true or false; received {value!r}.")
    return value


def _flag_or_auto(value, name):
    if value == "auto":
        return value
    if not isinstance(value, bool):
        raise DataError(f"option {name!r} must be true, false or \"auto\"; received {value!r}.")
    return value


def _listed(convert):
    """Accept a scalar, a list, or a comma-separated string of `convert`ed items."""

    def parse(value, name):
        if isinstance(value, str) and "," in value:
            value = [item.strip() for item in value.split(",")]
            if not all(value):  # "32,,8" is more likely a typo than "32,8"
                raise DataError(f"option {name!r} has an empty item in {','.join(value)!r}.")
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise DataError(f"option {name!r} must not be empty.")
        return [convert(item, name) for item in items]

    return parse


def _positive(convert):
    def parse(value, name):
        values = convert(value, name)
        for v in values if isinstance(values, list) else [values]:
            if not v > 0 or not math.isfinite(v):  # `not v > 0` also catches NaN
                raise DataError(f"option {name!r} must be positive and finite; received {value!r}.")
        return values

    return parse


def check_seed(value, name):
    """A seed as the option `name`: an integer the splits and Keras both accept."""
    value = _int(value, name)
    # The seed reaches scikit-learn's splits, which take 0 .. 2**32 - 1.
    if not 0 <= value < 2**32:
        raise DataError(f"option {name!r} must be an integer from 0 to {2**32 - 1}; received {value}.")
    return value


def _fraction(value, name):
    value = _float(value, name)
    if not 0.0 <= value < 1.0:
        raise DataError(f"option {name!r} must be in [0, 1); received {value}.")
    return value


def _choice(choices):
    def parse(value, name):
        values = _listed(_str)(value, name)
        for v in values:
            if v not in choices:
                raise DataError(f"option {name!r}: unknown value {v!r}; use one of {', '.join(choices)}.")
        return values if len(values) > 1 else values[0]

    return parse


def _devices(value, name):
    """false, true (every device) or a number of devices."""
    return value if isinstance(value, bool) else _positive(_int)(value, name)


def _scalar_or_list(convert):
    def parse(value, name):
        values = convert(value, name)
        return values if len(values) > 1 else values[0]

    return parse


# name -> (parser, default, help)
OPTIONS = {
    "layers": (_positive(_listed(_int)), [256, 128, 64], "encoder widths, e.g. 256,128,64"),
    # The recipe (activation, corruption level, learning rate, epochs as maxima with early
    # stopping) is TiedAutoencoderTransformer's, chosen on validation rows of three datasets
    # (docs/recipe_selection.md).
    "activation": (_scalar_or_list(_listed(_str)), "relu", "hidden activation (one, or one per layer)"),
    "corruption": (_choice(CORRUPTION_CHOICES), "masking", "corruption kind (one, or one per layer)"),
    "corruption_level": (
        _scalar_or_list(_listed(_float)),
        0.3,
        "corruption rate, or stddev for gaussian (one, or one per layer)",
    ),
    "loss": (_choice(LOSS_CHOICES), "auto", "reconstruction loss; auto = BCE for data in [0, 1], else MSE"),
    "optimizer": (_str, "adam", "Keras optimizer name"),
    "learning_rate": (_positive(_float), 3e-3, "learning rate"),
    "epochs": (
        _scalar_or_list(_positive(_listed(_int))),
        50,
        "epochs per layer (one, or one per layer); maxima when early stopping is on",
    ),
    "batch_size": (_positive(_int), 128, "batch size"),
    "finetune_epochs": (_int, 0, "epochs of end-to-end fine-tuning of the deep autoencoder"),
    "finetune_denoising": (
        _flag,
        True,
        "corrupt the input during that fine-tuning (--no-finetune-denoising: clean input)",
    ),
    "validation_split": (_fraction, 0.1, "fraction of rows held out to report validation loss"),
    "early_stopping": (
        _flag_or_auto,
        "auto",
        "stop each layer (and the fine-tuning) once the loss of the --validation-split rows stops "
        "improving, keeping its best epoch; --epochs and --finetune-epochs become maxima. auto: "
        f"on for at least {AUTO_EARLY_STOPPING_ROWS} rows in memory with --validation-split above 0",
    ),
    "patience": (_positive(_int), 10, "with early stopping: epochs without improvement before a layer stops"),
    "seed": (check_seed, 0, "random seed (same seed, same weights)"),
    "precision": (
        _choice(PRECISIONS),
        "auto",
        "float32, bfloat16 (float32 weights, bfloat16 products) or auto: bfloat16 where the "
        "backend runs its products on bfloat16 hardware here (a recent GPU; AMX or AVX512-BF16 "
        "on PyTorch/TensorFlow; never JAX on a CPU)",
    ),
}


# Tables of a config file besides [pretrain]: the single-cell flags of `tiedae pretrain`.
# They are the tables a run writes into its own config.toml, so that file given back as
# --config repeats the run. table -> {option: (parser, default)}; the flag overrides the file.
TABLE_OPTIONS = {
    "preprocessing": {
        "normalize": (_flag, False),
        "log1p": (_flag, False),
        # Its range (0: the median) is checked once, by CountPreprocessing.
        "target_sum": (_float, 1e4),
    },
    "gene_sets": {
        "gmt": (_str, None),
        "min_genes": (_positive(_int), 5),
    },
    # How the rows reach the model: both change the batches, hence the weights.
    "training": {
        "backed": (_flag, False),
        "data_parallel": (_devices, False),
    },
}
# Written into a run's config.toml for the record, derived from the data when read back.
DERIVED_KEYS = {"gene_sets": {"set_names"}}


def add_pretraining_flags(parser):
    group = parser.add_argument_group("pretraining options (also settable in --config TOML)")
    for name, (parse, default, help_text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        if parse in (_flag, _flag_or_auto):  # --name / --no-name
            group.add_argument(flag, dest=name, default=None, action=argparse.BooleanOptionalAction,
                               help=f"{help_text} (default: {shown})")
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=f"{help_text} (default: {shown})")


def _read_toml(path):
    if not os.path.isfile(path):
        raise DataError(f"config file {path!r} does not exist.")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except UnicodeDecodeError:
        raise DataError(f"config {path!r} is not a TOML text file (it is not UTF-8 text).") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise DataError(f"cannot read config {path!r}: {err}") from None


def load_toml(path):
    """Read a TOML config.

    The pretraining options are its top-level keys or a [pretrain] table; the
    [preprocessing] and [gene_sets] tables (see `TABLE_OPTIONS`) are returned
    under their own names.
    """
    data = _read_toml(path)
    tables = {}
    for table, options in TABLE_OPTIONS.items():
        values = data.pop(table, {})
        if not isinstance(values, dict):
            raise DataError(f"{table!r} in {path!r} must be a table ([{table}]).")
        unknown = sorted(set(values) - set(options) - DERIVED_KEYS.get(table, set()))
        if unknown:
            raise DataError(
                f"unknown option(s) {', '.join(unknown)} in [{table}] of {path!r}; known: "
                f"{', '.join(options)}."
            )
        tables[table] = {k: v for k, v in values.items() if k in options}
    data = data.get("pretrain", data)
    unknown = sorted(set(data) - set(OPTIONS))
    if unknown:
        raise DataError(
            f"unknown option(s) {', '.join(unknown)} in {path!r}; known: {', '.join(OPTIONS)}, "
            f"and the tables {', '.join(f'[{t}]' for t in TABLE_OPTIONS)}."
        )
    return {**data, **tables}


def effective_config(args):
    """Flags override the TOML file, which overrides the defaults; every value validated.

    Returns the [pretrain] options. The single-cell options of the file's other
    tables are resolved the same way and set on `args` (flags left unset are
    `None`), where the commands read them.
    """
    from_file = load_toml(args.config) if getattr(args, "config", None) else {}
    config = {}
    for name, (parse, default, _) in OPTIONS.items():
        given = getattr(args, name, None)
        value = given if given is not None else from_file.get(name, default)
        config[name] = parse(value, name)
    for table, options in TABLE_OPTIONS.items():
        for name, (parse, default) in options.items():
            if not hasattr(args, name):
                continue  # a command without these flags
            value = getattr(args, name)
            if value is None:
                value = from_file.get(table, {}).get(name, default)
            setattr(args, name, None if value is None else parse(value, name))
    return config


def dump_toml(config):
    return tomli_w.dumps({"pretrain": config})
