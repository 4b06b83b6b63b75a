"""`tiedae demo`: the main job on scikit-learn's bundled digits (1,797 images of 8x8).

Pretrain a stacked denoising autoencoder on the training images without labels,
then fine-tune it with 10% of the training labels, and train the same network
from random initialisation on the same labels; print both test accuracies.
The labelled 10% is drawn `REPEATS` times (the pretraining, which sees no
labels, is done once), so the comparison does not rest on one lucky draw.
"""

import time

import numpy as np
from sklearn.datasets import load_digits

from tiedae import runs
from tiedae.cli.commands import build_stack, print_summary, pretrain_stack, split_rows, train_classifier
from tiedae.io import DataError

DEMO_CONFIG = {
    "layers": [256, 128, 64],
    "activation": "sigmoid",
    "corruption": "masking",
    "corruption_level": [0.2, 0.3, 0.3],
    "loss": "auto",
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "epochs": 40,
    "batch_size": 32,
    "finetune_epochs": 0,
    "finetune_denoising": True,
    "validation_split": 0.1,
    "early_stopping": False,
    "patience": 10,
    "seed": 0,
    "precision": "auto",
}
LABEL_FRACTION = 0.10
FINETUNE_EPOCHS = 150
REPEATS = 5


def demo_run_directory(path, overwrite):
    """The run directory, refused (like `pretrain`) unless it is new, empty, a demo's, or --overwrite.

    A demo run is known by its "demo" metrics section, written before pretraining,
    so an interrupted demo can be run again into the same folder.
    """
    if runs.RunDirectory.holds_run(path) and not overwrite:
        if "demo" not in runs.RunDirectory(path, must_exist=True).read_metrics():
            raise DataError(
                f"{path!r} holds a tiedae run that is not the demo's; choose another --run-dir "
                "or pass --overwrite to replace it."
            )
    run = runs.RunDirectory(path, overwrite=overwrite)
    if "demo" not in run.read_metrics():
        run.update_metrics("demo", {"finished": False})
    return run


def cmd_demo(args):
    started = time.perf_counter()
    run = demo_run_directory(args.run_dir, args.overwrite)
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # pixel intensities 0..16 -> [0, 1]
    y = digits.target.astype(np.int32)
    train, test = split_rows(len(X), 0.3, args.seed, labels=y)

    config = dict(DEMO_CONFIG, seed=args.seed)
    stack = build_stack(config, verbose=0 if args.quiet else 1)
    print(f"Pretraining {config['layers']} on {len(train)} unlabelled digit images ...")
    stack, metrics = pretrain_stack(stack, X[train], y[train], config, run, image_shape=(8, 8))

    accuracies = {"pretrained": [], "random_init": []}
    for repeat in range(REPEATS):
        labelled, _ = split_rows(len(train), 1.0 - LABEL_FRACTION, args.seed + repeat, labels=y[train])
        labelled = train[np.sort(labelled)]
        print(f"Draw {repeat + 1}/{REPEATS}: training both classifiers on {len(labelled)} labels ...")
        for name, pretrained in (("pretrained", True), ("random_init", False)):
            _, accuracy, _, _ = train_classifier(
                stack, X[labelled], y[labelled], X[test], y[test], n_classes=10, pretrained=pretrained,
                epochs=FINETUNE_EPOCHS, batch_size=32, seed=args.seed + repeat,
            )
            accuracies[name].append(accuracy)
    mean = {name: float(np.mean(values)) for name, values in accuracies.items()}
    std = {name: float(np.std(values)) for name, values in accuracies.items()}
    run.update_metrics("demo", {
        "finished": True,
        "n_labelled": int(len(labelled)),
        "n_test": int(len(test)),
        "repeats": REPEATS,
        "test_accuracy_pretrained": mean["pretrained"],
        "test_accuracy_random_init": mean["random_init"],
        "test_accuracy_pretrained_std": std["pretrained"],
        "test_accuracy_random_init_std": std["random_init"],
        "test_accuracies": accuracies,
    })
    print_summary(f"tiedae demo: digits, 10% of the labels, mean of {REPEATS} draws", [
        ("pretraining", f"{len(train)} images, layers {config['layers']}, {metrics['seconds']:.1f} s"),
        ("labelled images", f"{len(labelled)} per draw (test: {len(test)})"),
        ("test accuracy, pretrained", f"{100 * mean['pretrained']:.2f}% (std {100 * std['pretrained']:.2f})"),
        ("test accuracy, random init", f"{100 * mean['random_init']:.2f}% (std {100 * std['random_init']:.2f})"),
        ("total time", f"{time.perf_counter() - started:.1f} s"),
        ("run directory", run.path),
    ])
    return 0
