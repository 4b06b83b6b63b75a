"""Options of the pretraining job: command-line flags, TOML files, and the effective config.

One table (`OPTIONS`) describes every option once; the argparse flags, the
TOML validation and the config written into the run directory derive from it.
"""

import numbers
import os

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import tomli_w

from tiedae.io.errors import DataError

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


def _listed(convert):
    """Accept a scalar, a list, or a comma-separated string of `convert`ed items."""

    def parse(value, name):
        if isinstance(value, str) and "," in value:
            value = [item.strip() for item in value.split(",") if item.strip()]
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise DataError(f"option {name!r} must not be empty.")
        return [convert(item, name) for item in items]

    return parse


def _positive(convert):
    def parse(value, name):
        values = convert(value, name)
        for v in values if isinstance(values, list) else [values]:
            if v <= 0:
                raise DataError(f"option {name!r} must be positive; received {value!r}.")
        return values

    return parse


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


def _scalar_or_list(convert):
    def parse(value, name):
        values = convert(value, name)
        return values if len(values) > 1 else values[0]

    return parse


# name -> (parser, default, help)
OPTIONS = {
    "layers": (_positive(_listed(_int)), [256, 128, 64], "encoder widths, e.g. 256,128,64"),
    "activation": (_scalar_or_list(_listed(_str)), "sigmoid", "hidden activation (one, or one per layer)"),
    "corruption": (_choice(CORRUPTION_CHOICES), "masking", "corruption kind (one, or one per layer)"),
    "corruption_level": (
        _scalar_or_list(_listed(_float)),
        0.2,
        "corruption rate, or stddev for gaussian (one, or one per layer)",
    ),
    "loss": (_choice(LOSS_CHOICES), "auto", "reconstruction loss; auto = BCE for data in [0, 1], else MSE"),
    "optimizer": (_str, "adam", "Keras optimizer name"),
    "learning_rate": (_positive(_float), 1e-3, "learning rate"),
    "epochs": (_scalar_or_list(_positive(_listed(_int))), 10, "epochs per layer (one, or one per layer)"),
    "batch_size": (_positive(_int), 128, "batch size"),
    "finetune_epochs": (_int, 0, "epochs of end-to-end fine-tuning of the deep autoencoder"),
    "validation_split": (_fraction, 0.1, "fraction of rows held out to report validation loss"),
    "seed": (_int, 0, "random seed (same seed, same weights)"),
}


def add_pretraining_flags(parser):
    group = parser.add_argument_group("pretraining options (also settable in --config TOML)")
    for name, (_, default, help_text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        group.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=f"{help_text} (default: {shown})")


def load_toml(path):
    """Read a TOML config; its keys are the option names (a [pretrain] table is also accepted)."""
    if not os.path.isfile(path):
        raise DataError(f"config file {path!r} does not exist.")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise DataError(f"cannot read config {path!r}: {err}") from None
    data = data.get("pretrain", data)
    unknown = sorted(set(data) - set(OPTIONS))
    if unknown:
        raise DataError(
            f"unknown option(s) {', '.join(unknown)} in {path!r}; known: {', '.join(OPTIONS)}."
        )
    return data


def effective_config(args):
    """Flags override the TOML file, which overrides the defaults; every value validated."""
    from_file = load_toml(args.config) if getattr(args, "config", None) else {}
    config = {}
    for name, (parse, default, _) in OPTIONS.items():
        given = getattr(args, name, None)
        value = given if given is not None else from_file.get(name, default)
        config[name] = parse(value, name)
    return config


def dump_toml(config):
    return tomli_w.dumps({"pretrain": config})
