"""Hand-off from a pretrained stack to a supervised Keras model, with freezing.

The supervised model's hidden layers are plain `keras.layers.Dense` layers,
named `pretrained_dense_{k}`. Hidden layer `k` receives kernel `k` and encoder
bias `k` of the pretrained autoencoder by explicit index, and the copy is
checked value for value (the ancestor loaded weights by layer name with
`skip_mismatch=True`, which could silently load nothing).

Staged unfreezing: in Keras 3, setting `layer.trainable` changes what `fit`
trains only after the model is compiled again (the train function and the
optimizer's variable list are fixed at compile time). `fit_with_unfreezing`
therefore recompiles from `model.get_compile_config()` at the start of each
stage, which also gives each stage a fresh optimizer state. To do it by hand:

```python
model = sda.to_classifier(10, freeze=True)          # compiled, stack frozen
model.fit(x, y, epochs=5)
set_pretrained_trainable(model, True)
model.compile_from_config(model.get_compile_config())   # required
model.fit(x, y, epochs=20, initial_epoch=5)
```
"""

import copy
import numbers

import keras
import numpy as np

from tiedae._validation import check_positive_int
from tiedae.pretraining.optimizers import make_optimizer

PRETRAINED_PREFIX = "pretrained_dense_"


def copy_encoder_layer(autoencoder, k, dense):
    """Set `dense`'s kernel and bias to kernel `k` and encoder bias `k` of `autoencoder`.

    Raises:
        ValueError: if the shapes differ.
        RuntimeError: if the copied values are not exactly the pretrained ones.
    """
    pairs = [("kernel", dense.kernel, autoencoder.kernels[k])]
    if dense.use_bias:
        if not autoencoder.use_bias:
            raise ValueError(
                f"Dense layer '{dense.name}' has a bias but the autoencoder has none; "
                "build the Dense layer with use_bias=False."
            )
        pairs.append(("bias", dense.bias, autoencoder.encoder_biases[k]))
    for what, target, source in pairs:
        value = keras.ops.convert_to_numpy(source)
        if tuple(target.shape) != value.shape:
            raise ValueError(
                f"Cannot copy encoder {what} {k} of shape {value.shape} into Dense layer "
                f"'{dense.name}' whose {what} has shape {tuple(target.shape)}."
            )
        target.assign(value)
        if not np.array_equal(keras.ops.convert_to_numpy(target), value):
            raise RuntimeError(
                f"Copying encoder {what} {k} into '{dense.name}' did not reproduce the "
                "pretrained values."
            )


def build_hidden_stack(sda, inputs, pretrained=True, freeze=False, dropout=0.0):
    """Apply the hidden `Dense` stack of `sda` to `inputs`.

    Returns:
        `(outputs, dense_layers)`, with `dense_layers[k]` holding layer `k`.
    """
    sda._check_fitted("to_model")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1); received {dropout!r}.")
    h, layers = inputs, []
    for k, size in enumerate(sda.layer_sizes):
        dense = keras.layers.Dense(
            size, activation=sda._activations[k], name=f"{PRETRAINED_PREFIX}{k}"
        )
        h = dense(h)
        if pretrained:
            copy_encoder_layer(sda.autoencoder_, k, dense)
        dense.trainable = not freeze
        if dropout > 0:
            h = keras.layers.Dropout(dropout, name=f"dropout_{k}")(h)
        layers.append(dense)
    return h, layers


def to_model(sda, head, freeze=False, pretrained=True, dropout=0.0, name=None):
    """A supervised model: input -> pretrained hidden `Dense` stack -> `head`.

    Args:
        sda: A pretrained `StackedDenoisingAutoencoder`.
        head: A Keras layer, or a list of layers applied in order, after the
            last hidden layer (e.g. `keras.layers.Dense(1)` for regression).
        freeze: If `True`, the hidden layers are not trainable.
        pretrained: If `False`, the same architecture with fresh random weights
            (the control for measuring what pretraining brings).
        dropout: Dropout rate after every hidden layer.
        name: Optional model name.

    Returns:
        An uncompiled `keras.Model`.
    """
    sda._check_fitted("to_model")
    heads = list(head) if isinstance(head, (list, tuple)) else [head]
    if not heads or not all(callable(layer) for layer in heads):
        raise ValueError(
            f"`head` must be a Keras layer or a non-empty list of layers; received {head!r}."
        )
    inputs = keras.Input(shape=(sda.input_dim_,), name="input")
    h, _ = build_hidden_stack(sda, inputs, pretrained=pretrained, freeze=freeze, dropout=dropout)
    for layer in heads:
        h = layer(h)
    return keras.Model(inputs, h, name=name or ("pretrained_model" if pretrained else "random_init_model"))


def unroll(sda, name="unrolled_autoencoder"):
    """The stack as an untied deep autoencoder (Hinton and Salakhutdinov, 2006).

    The encoder is the pretrained `Dense` stack (copies of its weights); the
    decoder is one new `Dense` layer per stacked layer, in reverse order,
    initialised with the transposed kernel and the decoder bias of that
    layer and using its reconstruction activation. Before any training the
    model computes what the tied stack computes; trained end to end, encoder
    and decoder kernels move apart (the stack itself is left unchanged).

    Args:
        sda: A pretrained `StackedDenoisingAutoencoder`.
        name: Name of the returned autoencoder.

    Returns:
        `(autoencoder, encoder)`: uncompiled `ReconstructionModel` (input ->
        reconstruction; `fit(x)` uses the input as its target) and the
        `keras.Model` input -> code that shares its encoder layers.
    """
    from tiedae.pretraining.reconstruction_model import ReconstructionModel

    sda._check_fitted("unroll")
    inputs = keras.Input(shape=(sda.input_dim_,), name="input")
    code, _ = build_hidden_stack(sda, inputs)
    h = code
    for k in reversed(range(len(sda.layer_sizes))):
        kernel = keras.ops.convert_to_numpy(sda.autoencoder_.kernels[k])
        bias = keras.ops.convert_to_numpy(sda.autoencoder_.decoder_biases[k])
        dense = keras.layers.Dense(
            kernel.shape[0], activation=sda._reconstruction_activation(k, sda.losses_[k]),
            name=f"decoder_{k}",
        )
        h = dense(h)
        dense.set_weights([kernel.T, bias])
    encoder = keras.Model(inputs, code, name="encoder")
    return ReconstructionModel(inputs, h, name=name), encoder


def to_classifier(
    sda, n_classes, freeze=False, pretrained=True, dropout=0.0, compile=True, learning_rate=None,
):
    """A softmax classifier on the pretrained stack.

    Args:
        sda: A pretrained `StackedDenoisingAutoencoder`.
        n_classes: Number of classes (labels are the integers `0..n_classes-1`).
        freeze, pretrained, dropout: As in `to_model`.
        compile: If `True` (default), compile with a fresh optimizer of the
            `sda`'s kind, sparse categorical cross-entropy and accuracy.
        learning_rate: Learning rate of that optimizer; default `sda.learning_rate`.

    Returns:
        A `keras.Model` ending in `Dense(n_classes, activation="softmax")`.
    """
    check_positive_int(n_classes, "n_classes")
    head = keras.layers.Dense(int(n_classes), activation="softmax", name="classifier")
    model = to_model(
        sda, head, freeze=freeze, pretrained=pretrained, dropout=dropout,
        name="pretrained_classifier" if pretrained else "random_init_classifier",
    )
    if compile:
        lr = sda.learning_rate if learning_rate is None else learning_rate
        optimizer = make_optimizer(sda.optimizer, lr)
        model.compile(
            optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return model


def pretrained_layers(model):
    """The `pretrained_dense_{k}` layers of a model built by `to_model`, in order of `k`."""
    found = [layer for layer in model.layers if layer.name.startswith(PRETRAINED_PREFIX)]
    return sorted(found, key=lambda layer: int(layer.name[len(PRETRAINED_PREFIX):]))


def set_pretrained_trainable(model, trainable, layers=None):
    """Freeze (`trainable=False`) or unfreeze the pretrained layers of `model`.

    Recompile the model afterwards for `fit` to see the change.
    """
    layers = pretrained_layers(model) if layers is None else list(layers)
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no layers named '{PRETRAINED_PREFIX}k'; build it with "
            "`to_model`/`to_classifier` or pass `layers`."
        )
    for layer in layers:
        layer.trainable = bool(trainable)
    return layers


def _merge(total, history):
    for key, values in history.history.items():
        total.setdefault(key, []).extend(float(v) for v in values)


def fit_with_unfreezing(
    model, x, y=None, epochs=1, unfreeze_after=0, layers=None, unfreeze_learning_rate=None,
    compile_kwargs=None, **fit_kwargs,
):
    """Fit with the pretrained layers frozen for `unfreeze_after` epochs, then all trainable.

    Each stage recompiles `model` from its own compile config (see the module
    docstring for why). The epoch numbering runs on across stages.

    Args:
        model: A model built by `to_model`/`to_classifier` (or any model, with
            `layers` given), compiled unless `compile_kwargs` is given.
        x, y: Training data, as for `model.fit`.
        epochs: Total number of epochs.
        unfreeze_after: Epochs to train with the pretrained layers frozen.
        layers: The layers to freeze and unfreeze; default `pretrained_layers(model)`.
        unfreeze_learning_rate: Optional learning rate for the second stage
            (a lower one is common when fine-tuning pretrained layers).
        compile_kwargs: Optional `model.compile` arguments; when given, the
            model is compiled with them first. Where the stages change
            something (`unfreeze_after > 0`, a frozen layer to unfreeze, or
            `unfreeze_learning_rate`), each stage then recompiles from
            `model.get_compile_config()`, so an optimizer instance passed here
            is only used as a template; otherwise the model is fitted as
            compiled.
        **fit_kwargs: Passed to `model.fit` (batch_size, validation_data, callbacks, ...).

    Returns:
        A dict of per-epoch metric lists over both stages, like `History.history`.
    """
    for value, what in ((epochs, "epochs"), (unfreeze_after, "unfreeze_after")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"`{what}` must be a non-negative integer; received {value!r}.")
    if compile_kwargs is not None:
        model.compile(**compile_kwargs)
    if not getattr(model, "compiled", False):
        raise ValueError(
            "Compile the model before `fit_with_unfreezing`, or pass `compile_kwargs`."
        )
    for reserved in ("epochs", "initial_epoch"):
        fit_kwargs.pop(reserved, None)
    layers = pretrained_layers(model) if layers is None else list(layers)
    frozen_epochs = min(int(unfreeze_after), int(epochs))
    # Recompiling goes through Keras's compile config, whose serialization imports TensorFlow
    # on every backend: only where a stage changes something.
    staged = (frozen_epochs > 0 or unfreeze_learning_rate is not None
              or not all(layer.trainable for layer in layers))
    config = model.get_compile_config() if staged else None
    total = {}
    if frozen_epochs > 0:
        set_pretrained_trainable(model, False, layers)
        model.compile_from_config(copy.deepcopy(config))
        _merge(total, model.fit(x, y, epochs=frozen_epochs, **fit_kwargs))
    if epochs > frozen_epochs:
        if staged:
            set_pretrained_trainable(model, True, layers)
            second = copy.deepcopy(config)
            if unfreeze_learning_rate is not None:
                second["optimizer"]["config"]["learning_rate"] = float(unfreeze_learning_rate)
            model.compile_from_config(second)
        _merge(
            total,
            model.fit(x, y, epochs=int(epochs), initial_epoch=frozen_epochs, **fit_kwargs),
        )
    return total
