"""Where the supervised phase should stop: per-epoch validation loss and accuracy, no test rows.

    KERAS_BACKEND=torch python -m benchmarks.stopping_curves [--out docs/stopping_curves.json]

The diagnosis behind the generalisation misses (docs/benchmarks.md, *Generalisation*):
one SdA-3 of 1,000 units is pretrained with `PretrainedMLPClassifier`'s recipe on
54,000 of Fashion-MNIST's training images; its classifier is then fine-tuned, without
early stopping, on 100, 1,000 and all of those labels, at the default learning rate and
at 0.001, and scored after every epoch on the other 6,000 training images. The test
file is not read. `epochs_at` says, per curve, the epoch of the lowest validation loss
(where `scoring="loss"` keeps the weights) and of the highest validation accuracy.
"""

import argparse
from pathlib import Path

from benchmarks._util import quiet_backends, write_json

quiet_backends()

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CURVES = {"100 labels": (100, 100), "1,000 labels": (1000, 100), "all labels": (None, 40)}
LEARNING_RATES = {"100 labels": (None, 1e-3), "1,000 labels": (None, 1e-3), "all labels": (None,)}


def epochs_at(curve):
    """{"lowest loss": (epoch, accuracy there), "highest accuracy": (epoch, accuracy)}, 1-based,
    the first epoch on ties."""
    i, j = int(np.argmin(curve["val_loss"])), int(np.argmax(curve["val_accuracy"]))
    return {"lowest loss": (i + 1, curve["val_accuracy"][i]),
            "highest accuracy": (j + 1, curve["val_accuracy"][j])}


def main(argv=None):
    import keras
    from sklearn.model_selection import train_test_split

    from benchmarks.data import load_fashion_mnist
    from benchmarks.generalise import MODES, pretrain_stack
    from benchmarks.data import stratified_indices

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "stopping_curves.json"))
    args = parser.parse_args(argv)
    (x, y), _ = load_fashion_mnist()  # the training file only
    fit, scoring = train_test_split(np.arange(len(y)), test_size=6000, stratify=y, random_state=0)
    x_fit, y_fit = x[fit], y[fit].astype(np.int32)
    validation = (x[scoring], y[scoring].astype(np.int32))
    sda, pretraining = pretrain_stack(MODES["full"], 0, x_fit)
    out = {"backend": keras.backend.backend(), "pretraining": pretraining, "curves": {}}
    rng = np.random.default_rng(0)
    for name, (n_labels, epochs) in CURVES.items():
        rows = np.arange(len(y_fit)) if n_labels is None else stratified_indices(y_fit, n_labels, rng)
        for lr in LEARNING_RATES[name]:
            keras.utils.set_random_seed(1)
            model = sda.to_classifier(10, learning_rate=lr)
            history = model.fit(x_fit[rows], y_fit[rows], batch_size=128, epochs=epochs,
                                validation_data=validation, verbose=0).history
            curve = {k: [round(float(v), 4) for v in history[k]] for k in ("val_loss", "val_accuracy")}
            key = f"{name}, learning rate {lr or sda.learning_rate:g}"
            out["curves"][key] = dict(curve, epochs_at=epochs_at(curve))
            print(key, out["curves"][key]["epochs_at"], flush=True)
    write_json(args.out, out, sort_keys=False)


if __name__ == "__main__":
    main()
