"""`tiedae demo`: the main job on scikit-learn's bundled digits (1,797 images of 8x8).

Pretrain a stacked denoising autoencoder on the training images without labels,
then fine-tune it with 10% of the training labels, and train the same network
from random initialisation on the same labels; print both test accuracies.
"""

import time

import numpy as np
from sklearn.datasets import load_digits

from tiedae import runs
from tiedae.cli.commands import build_stack, print_summary, pretrain_stack, split_rows, train_classifier

DEMO_CONFIG = {
    "layers": [256, 128],
    "activation": "sigmoid",
    "corruption": "masking",
    "corruption_level": [0.2, 0.3],
    "loss": "auto",
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "epochs": 25,
    "batch_size": 32,
    "finetune_epochs": 0,
    "validation_split": 0.1,
    "seed": 0,
}
LABEL_FRACTION = 0.10
FINETUNE_EPOCHS = 150


def cmd_demo(args):
    started = time.perf_counter()
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # pixel intensities 0..16 -> [0, 1]
    y = digits.target.astype(np.int32)
    train, test = split_rows(len(X), 0.3, args.seed, labels=y)
    labelled, _ = split_rows(len(train), 1.0 - LABEL_FRACTION, args.seed, labels=y[train])
    labelled = train[np.sort(labelled)]

    config = dict(DEMO_CONFIG, seed=args.seed)
    run = runs.RunDirectory(args.run_dir, overwrite=True)
    stack = build_stack(config, verbose=0 if args.quiet else 1)
    print(f"Pretraining {config['layers']} on {len(train)} unlabelled digit images ...")
    stack, metrics = pretrain_stack(stack, X[train], y[train], config, run, image_shape=(8, 8))

    accuracies = {}
    for name, pretrained in (("pretrained", True), ("random_init", False)):
        print(f"Training the classifier ({name.replace('_', ' ')}) on {len(labelled)} labels ...")
        _, accuracies[name], _ = train_classifier(
            stack, X[labelled], y[labelled], X[test], y[test], n_classes=10, pretrained=pretrained,
            epochs=FINETUNE_EPOCHS, batch_size=32,
        )
    run.update_metrics("demo", {
        "n_labelled": int(len(labelled)),
        "n_test": int(len(test)),
        "test_accuracy_pretrained": accuracies["pretrained"],
        "test_accuracy_random_init": accuracies["random_init"],
    })
    print_summary("tiedae demo: digits, 10% of the labels", [
        ("pretraining", f"{len(train)} images, layers {config['layers']}, {metrics['seconds']:.1f} s"),
        ("labelled images", f"{len(labelled)} (test: {len(test)})"),
        ("test accuracy, pretrained", f"{100 * accuracies['pretrained']:.2f}%"),
        ("test accuracy, random init", f"{100 * accuracies['random_init']:.2f}%"),
        ("total time", f"{time.perf_counter() - started:.1f} s"),
        ("run directory", run.path),
    ])
    return 0
