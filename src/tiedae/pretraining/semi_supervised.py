"""Semi-supervised fine-tuning: the classifier keeps reconstructing the unlabelled data.

With few labels, fine-tuning a pretrained stack on the labelled images alone
soon forgets what pretraining learnt from the unlabelled ones. Here the
pretrained hidden stack feeds two outputs, trained together:

* `classifier`: a softmax head, with cross-entropy on the labelled rows only;
* `reconstruction`: the tied decoder of the same hidden layers (each decoder
  is a `DenseTranspose` of the classifier's own `Dense` layer, starting from
  the pretrained decoder biases), with the stack's layer-0 reconstruction
  loss on every row, labelled or not.

The loss is `cross_entropy + reconstruction_weight * reconstruction`, the
"reconstruction as a regulariser" recipe of Ranzato & Szummer (2008) and of
the semi-supervised variants of stacked autoencoders. Each batch mixes
labelled and unlabelled rows: the labelled images are repeated so that they
make up `labeled_fraction` of every epoch. Unlabelled rows carry the label
`UNLABELED` (-1), which `masked_sparse_categorical_crossentropy` skips.

Example:

>>> sda = StackedDenoisingAutoencoder([1000, 1000, 1000]).pretrain(x_unlabeled)
>>> classifier, history = fit_semi_supervised(sda, x_few, y_few, x_unlabeled, epochs=10)
>>> classifier.evaluate(x_test, y_test)  # [loss, accuracy]
"""

import numbers

import keras
import numpy as np
from keras import ops

from tiedae._validation import check_non_negative, check_positive, check_positive_int
from tiedae.pretraining.data import check_matrix, is_sparse
from tiedae.pretraining.handoff import build_hidden_stack
from tiedae.pretraining.streaming import is_streamed
from tiedae.seeding import set_random_seed

UNLABELED = -1


@keras.saving.register_keras_serializable(package="tiedae")
def masked_sparse_categorical_crossentropy(y_true, y_pred):
    """Sparse categorical cross-entropy over the labelled rows of a batch.

    Rows labelled `UNLABELED` (any negative label) contribute nothing; the
    per-row values are scaled so that Keras's mean over the batch is the mean
    over its labelled rows (0 for a batch without any).
    """
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    per_row = keras.losses.sparse_categorical_crossentropy(ops.maximum(labels, 0), y_pred)
    return _over_labelled_rows(per_row, labels, y_pred.dtype)


def _over_labelled_rows(per_row, labels, dtype):
    """`per_row` with unlabelled rows zeroed and the rest scaled so that Keras's mean over
    the batch is the mean over its labelled rows (0 for a batch without any)."""
    labeled = ops.cast(labels >= 0, dtype)
    n_rows = ops.cast(ops.shape(labeled)[0], dtype)
    return ops.cast(per_row, dtype) * labeled * n_rows / ops.maximum(ops.sum(labeled), 1.0)


@keras.saving.register_keras_serializable(package="tiedae")
def masked_sparse_categorical_accuracy(y_true, y_pred):
    """Per-row accuracy (1 or 0) of the labelled rows, scaled like
    `masked_sparse_categorical_crossentropy` so that the batch mean counts them only."""
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    hits = ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels)
    return _over_labelled_rows(hits, labels, "float32")


def to_semi_supervised(sda, n_classes, pretrained=True, dropout=0.0):
    """The two-output training model and the classifier that shares its layers.

    Args:
        sda: A pretrained `StackedDenoisingAutoencoder`.
        n_classes: Number of classes.
        pretrained: If `False`, the same architecture from random weights
            (decoder biases zero): the control.
        dropout: Dropout rate after every hidden layer (both outputs see it).

    Returns:
        `(train_model, classifier)`: `train_model` maps the input to a dict
        `{"classifier": probabilities, "reconstruction": reconstruction}`;
        `classifier` maps the input to the probabilities and shares every
        variable with it. Neither is compiled.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"`n_classes` must be an integer >= 2; received {n_classes!r}.")
    inputs = keras.Input(shape=(sda.input_dim_,), name="input")
    hidden, dense_layers = build_hidden_stack(sda, inputs, pretrained=pretrained, dropout=dropout)
    probabilities = keras.layers.Dense(int(n_classes), activation="softmax", name="classifier")(hidden)

    from tiedae.layers import DenseTranspose

    autoencoder = sda.autoencoder_
    reconstruction = hidden
    for k in reversed(range(len(dense_layers))):
        decoder = DenseTranspose(
            dense_layers[k],
            activation=autoencoder.decoder_activations[k],
            name="reconstruction" if k == 0 else f"decoder_{k}",
        )
        reconstruction = decoder(reconstruction)
        if pretrained:
            decoder.bias.assign(ops.convert_to_numpy(autoencoder.decoder_biases[k]))
    train_model = keras.Model(
        inputs, {"classifier": probabilities, "reconstruction": reconstruction},
        name="semi_supervised_" + ("pretrained" if pretrained else "random_init"),
    )
    classifier = keras.Model(inputs, probabilities, name=train_model.name + "_classifier")
    return train_model, classifier


def _in_memory(x, name, n_features):
    if is_streamed(x):
        raise ValueError(
            f"`{name}` is on disk (memory-mapped or backed); semi-supervised fine-tuning mixes "
            "labelled and unlabelled rows in memory, so load it first (np.asarray)."
        )
    x = check_matrix(x, name, n_features=n_features)
    return x.toarray() if is_sparse(x) else np.asarray(x, dtype="float32")


def mix_labeled_and_unlabeled(x_labeled, y_labeled, x_unlabeled, labeled_fraction):
    """Rows and labels of one epoch: the labelled rows repeated to `labeled_fraction`
    (at least once), then every unlabelled row with the label `UNLABELED`."""
    n_lab, n_unlab = len(x_labeled), len(x_unlabeled)
    repeats = max(1, int(round(labeled_fraction / (1.0 - labeled_fraction) * n_unlab / n_lab)))
    x = np.concatenate([np.tile(x_labeled, (repeats, 1)), x_unlabeled])
    y = np.concatenate([np.tile(y_labeled, repeats), np.full(n_unlab, UNLABELED, dtype="int64")])
    return x, y


def fit_semi_supervised(
    sda,
    x_labeled,
    y_labeled,
    x_unlabeled,
    n_classes=None,
    epochs=10,
    reconstruction_weight=1.0,
    labeled_fraction=0.25,
    batch_size=128,
    learning_rate=1e-3,
    cosine_decay=True,
    pretrained=True,
    dropout=0.0,
    seed=None,
    verbose=0,
    validation_data=None,
    callbacks=None,
):
    """Fine-tune a classifier on few labels while reconstructing the unlabelled data.

    Args:
        sda: A pretrained `StackedDenoisingAutoencoder`.
        x_labeled: 2-D array of labelled samples.
        y_labeled: Integer labels `0..n_classes-1`, one per labelled sample.
        x_unlabeled: 2-D array of unlabelled samples (the pretraining data
            is the natural choice; it may include `x_labeled`).
        n_classes: Number of classes; default `max(y_labeled) + 1`.
        epochs: Passes over the unlabelled data.
        reconstruction_weight: Weight of the reconstruction loss (>= 0; 0 is
            plain supervised fine-tuning on the repeated labelled rows).
        labeled_fraction: Share of labelled rows in an epoch, in (0, 1).
        batch_size: Batch size.
        learning_rate: Adam's learning rate (its start, with `cosine_decay`).
        cosine_decay: Decay the learning rate to 0 over the run (cosine).
        pretrained: If `False`, start from random weights (the control).
        dropout: Dropout rate after every hidden layer.
        seed: Optional seed for `keras.utils.set_random_seed` (initialisation,
            dropout, shuffling).
        verbose: Keras `fit` verbosity.
        validation_data: Optional `(x_val, y_val)` labelled held-out rows; their
            classification loss is logged as `val_classifier_loss` and their
            accuracy as `val_classifier_accuracy` (the ones to monitor for
            early stopping, e.g. with
            `tiedae.pretraining.early_stopping.BestEpochStopping(10,
            monitor="val_classifier_accuracy", mode="max")`), their
            reconstruction loss as `val_reconstruction_loss`.
        callbacks: Optional list of Keras callbacks.

    Returns:
        `(classifier, history)`: the classifier (input -> class probabilities),
        compiled with sparse categorical cross-entropy and accuracy for
        `evaluate`, and the training `History.history` dict.
    """
    sda._check_fitted("fit_semi_supervised")
    x_labeled = _in_memory(x_labeled, "x_labeled", sda.input_dim_)
    x_unlabeled = _in_memory(x_unlabeled, "x_unlabeled", sda.input_dim_)
    y = np.asarray(y_labeled)
    if y.ndim != 1 or len(y) != len(x_labeled):
        raise ValueError(
            f"`y_labeled` must hold one label per row of `x_labeled` ({len(x_labeled)}); "
            f"received shape {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(
            "`y_labeled` must hold integer labels 0..n_classes-1; encode other labels first "
            "(e.g. sklearn.preprocessing.LabelEncoder)."
        )
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    if isinstance(n_classes, numbers.Integral) and y.max() >= n_classes:
        raise ValueError(f"`y_labeled` holds label {int(y.max())} but `n_classes` is {n_classes}.")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    reconstruction_weight = check_non_negative(reconstruction_weight, "reconstruction_weight")
    learning_rate = check_positive(learning_rate, "learning_rate")
    if isinstance(labeled_fraction, bool) or not isinstance(labeled_fraction, numbers.Real) or not (
        0 < labeled_fraction < 1
    ):
        raise ValueError(f"`labeled_fraction` must be in (0, 1); received {labeled_fraction!r}.")

    if seed is not None:
        set_random_seed(seed)
    train_model, classifier = to_semi_supervised(sda, n_classes, pretrained=pretrained, dropout=dropout)
    x, y_mixed = mix_labeled_and_unlabeled(x_labeled, y.astype("int64"), x_unlabeled, labeled_fraction)
    steps = epochs * -(-len(x) // batch_size)
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps) if cosine_decay else learning_rate
    train_model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss={"classifier": masked_sparse_categorical_crossentropy,
              "reconstruction": sda.losses_[0]},
        loss_weights={"classifier": 1.0, "reconstruction": reconstruction_weight},
        # Logged as `classifier_accuracy` / `val_classifier_accuracy`: over labelled rows only.
        metrics={"classifier": [keras.metrics.MeanMetricWrapper(
            masked_sparse_categorical_accuracy, name="accuracy")]},
    )
    validation = None
    if validation_data is not None:
        x_val, y_val = validation_data
        x_val = _in_memory(x_val, "validation_data", sda.input_dim_)
        y_val = np.asarray(y_val).astype("int64")
        if y_val.shape != (len(x_val),):
            raise ValueError(
                f"`validation_data` must be (x_val, y_val) with one label per row; received "
                f"{len(x_val)} rows and labels of shape {y_val.shape}."
            )
        validation = (x_val, {"classifier": y_val, "reconstruction": x_val})
    history = train_model.fit(
        x, {"classifier": y_mixed, "reconstruction": x},
        batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose,
        validation_data=validation, callbacks=callbacks,
    )
    classifier.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return classifier, history.history
