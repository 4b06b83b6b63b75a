r"""Greedy layer-wise pretraining of a stack of tied denoising autoencoders.

The recipe of Vincent et al. (2010, JMLR 11:3371, §3-4) and Bengio et al.
(2007): hidden layer `k` is trained as a one-hidden-layer denoising
autoencoder on the clean codes of the layers below it. Its training model is

```
clean code of layers < k  --corruption-->  DenseLayerAutoencoder([size_k])  -->  reconstruction
                   \_____________________________ target ___________________________/
```

so the autoencoder sees the corrupted code and is scored against the clean
one (the ancestor package had these reversed, with the noise drawn once).
The corruption layer draws new noise at every step. The clean codes of each
layer are computed once, in batches, before that layer trains.
"""

import copy
import functools
import inspect
import json
import numbers
import zipfile

import keras
import numpy as np

from tiedae._validation import (
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_int,
    check_rate,
    check_seed,
)
from tiedae.corruption import CORRUPTION_KINDS, get_corruption
from tiedae.distribution import (
    batch_multiple,
    check_data_parallel,
    data_parallel_scope,
    process_shard,
)
from tiedae.io.atomic import atomic_path
from tiedae.layers.dense_autoencoder import DenseLayerAutoencoder
from tiedae.precision import POLICY, check_precision, resolve_precision
from tiedae.pretraining.checkpoint import PretrainingCheckpoint, check_resumable, data_signature
from tiedae.pretraining.data import (
    SparseBatches,
    check_matrix,
    data_range,
    densify_if_small,
    is_sparse,
    map_in_batches,
)
from tiedae.pretraining.early_stopping import (
    BestEpochStopping,
    check_early_stopping,
    validation_rows,
)
from tiedae.pretraining.interrupt import StopOnDivergence
from tiedae.pretraining.layerwise_autoencoder import LayerwiseTiedAutoencoder
from tiedae.pretraining.optimizers import (
    INITIALIZER_EXAMPLE,
    check_optimizer,
    check_spec,
    make_initializer,
    make_optimizer,
)
from tiedae.pretraining.reconstruction_model import ReconstructionModel
from tiedae.pretraining.streaming import RowBatches, is_streamed, map_rows
from tiedae.seeding import set_random_seed

LOSS_ALIASES = {
    "auto": "auto",
    "binary_crossentropy": "binary_crossentropy",
    "bce": "binary_crossentropy",
    "mse": "mse",
    "mean_squared_error": "mse",
}
# The reconstruction activation that goes with each loss.
RECONSTRUCTION_ACTIVATION = {"binary_crossentropy": "sigmoid", "mse": "linear"}


# Backends on which the stacks' training models output the logits of a sigmoid
# reconstruction and compute binary cross-entropy on them (`training_loss`). Paired
# steps on a 2-core AMX Xeon, logits over probabilities: PyTorch 0.85-0.93 (bfloat16)
# and 0.90-0.96 (float32), TensorFlow 0.91-1.01, JAX 1.01-1.06 (XLA already fuses the
# sigmoid into the loss; two log-sigmoids cost more), so JAX keeps probabilities.
LOGITS_BACKENDS = ("torch", "tensorflow")


def trains_on_logits(loss):
    """Whether a training model with this resolved `loss` outputs logits (see `training_loss`)."""
    return loss == "binary_crossentropy" and keras.backend.backend() in LOGITS_BACKENDS


def training_loss(loss):
    """The Keras loss the stacks' own training models compile with, for a resolved `loss`.

    Where `trains_on_logits`, binary cross-entropy on the logits of the
    reconstruction: exact where probabilities would be clipped to
    [1e-7, 1 - 1e-7], and cheaper: PyTorch's cross-entropy on probabilities
    took ~0.6 ms of a ~7 ms bfloat16 step of a 784-1000 layer at batch 128.
    """
    if trains_on_logits(loss):
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return loss


SAVED_STATE_NAME = "tiedae_stacked_denoising_autoencoder.json"


def _per_layer(value, n, name):
    """One value for every layer: a scalar is repeated, a list must have `n` entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"`{name}` has {len(value)} entries but `layer_sizes` has {n} layers; pass "
                f"one value or a list of {n}."
            )
        return list(value)
    return [value] * n


def check_activation(act, name):
    """Raise `ValueError` naming `name` unless `act` is a Keras activation."""
    try:
        keras.activations.get(act)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` {act!r} is not a Keras activation; use e.g. 'sigmoid', 'relu' or "
            "'tanh'."
        ) from None


def _check_epochs(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer; received {value!r}.")
    return int(value)


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if callable(value):
        return keras.activations.serialize(value)
    return value


def _layer_arrays(autoencoder, k):
    return {
        "kernel": keras.ops.convert_to_numpy(autoencoder.kernels[k]),
        "encoder_bias": keras.ops.convert_to_numpy(autoencoder.encoder_biases[k]),
        "decoder_bias": keras.ops.convert_to_numpy(autoencoder.decoder_biases[k]),
    }


def _under_data_parallel(method):
    """Run `method` under the object's `data_parallel` distribution (if any)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with data_parallel_scope(self.data_parallel):
            return method(self, *args, **kwargs)

    return wrapper


def _history_dict(history):
    if history is None:
        return {"loss": []}
    return {
        key: [float(v) for v in history.history[key]]
        for key in ("loss", "val_loss")
        if key in history.history
    }


class StackedDenoisingAutoencoder:
    """A stacked denoising autoencoder, pretrained greedily one layer at a time.

    Each hidden layer `k` is trained as a one-hidden-layer tied denoising
    autoencoder (`DenseLayerAutoencoder([layer_sizes[k]])` behind a corruption
    layer) whose input is the corrupted clean code of the layers below and
    whose target is that clean code. The trained kernels and biases are then
    stacked into one deep tied autoencoder (`autoencoder_`), which can be
    fine-tuned end to end and handed to a supervised Keras model.

    Args:
        layer_sizes: Non-empty list of positive integers, the encoder widths.
        activation: Hidden activation, one name for all layers or one per layer.
        corruption: "masking", "salt_and_pepper", "gaussian" or "none", or one
            per layer. Salt-and-pepper uses the minimum and maximum of that
            layer's input as its two values.
        corruption_level: The corrupted fraction (masking, salt-and-pepper) or
            the standard deviation (gaussian); one value or one per layer.
        loss: "auto", "binary_crossentropy" or "mse", or one per layer. With
            "auto", a layer whose input lies in [0, 1] uses binary cross-entropy
            and a sigmoid reconstruction, any other layer mean squared error and
            a linear reconstruction (Vincent et al. 2010, §4.2); a layer whose
            `reconstruction_activation` is set to other than sigmoid uses mean
            squared error.
        reconstruction_activation: "auto", a Keras activation or one per
            layer: the activation of layer `k`'s decoder, in its greedy
            autoencoder and in the deep autoencoder. "auto" follows the loss
            (sigmoid for binary cross-entropy, linear for mean squared error),
            so a relu stack with "mse" gets a linear decoder throughout; DEC's
            recipe instead reconstructs every hidden layer with relu
            (`["linear", "relu", "relu", ...]`). Binary cross-entropy needs
            "sigmoid" (or "auto").
        kernel_initializer: Name of a Keras initializer, or a dict with its
            arguments, e.g. DEC-keras's `{"class_name": "VarianceScaling",
            "config": {"scale": 1/3, "mode": "fan_in", "distribution":
            "uniform"}}`; seeded per layer from `seed`.
        optimizer: Name of a Keras optimizer, or a dict with its other
            arguments, e.g. `{"class_name": "SGD", "config": {"momentum": 0.9}}`;
            every layer and the fine-tuning get a fresh one.
        learning_rate: Positive float.
        epochs: Training epochs per layer; one integer or one per layer.
        batch_size: Positive integer, for training and for computing codes.
        finetune_epochs: If > 0, `pretrain` ends with that many epochs of
            end-to-end fine-tuning of the deep tied autoencoder (see `finetune`).
        finetune_denoising: If `True` (default), end-to-end fine-tuning corrupts
            the input with layer 0's corruption (a deep denoising autoencoder);
            if `False`, it trains on the clean input (a plain deep autoencoder,
            as DEC's recipe does before clustering the code).
        seed: Optional non-negative integer. Layer `k` starts with
            `keras.utils.set_random_seed(seed + k)` and seeds its initializer and
            corruption with `seed + k`, so a run is reproducible and a resumed
            run equals an uninterrupted one. With `None`, a base seed is drawn
            from NumPy's global generator at the start of `pretrain`, recorded
            in the checkpoint and used the same way. Note that this re-seeds
            Python's, NumPy's and the backend's global generators.
        verbose: 0 (silent), 1 (one line per layer and Keras progress bars) or
            2 (one line per epoch).
        data_parallel: `False` (default), `True` (all devices), a number of
            devices or a list of device names: train under a
            `keras.distribution.DataParallel` (JAX backend only; see
            `tiedae.distribution`). `batch_size` must be a multiple of the
            number of devices; a last batch that does not split evenly is cut.
        early_stopping: If `True`, every layer (and the end-to-end
            fine-tuning) stops once the reconstruction loss of held-out rows
            has not improved by `tol` for `n_iter_no_change` epochs, and keeps
            the weights of its best epoch; `epochs` and `finetune_epochs` are
            then maxima. The held-out rows are `validation_data` when given,
            else a random `validation_fraction` of `x` (drawn from the seed;
            not possible for data read from disk, which needs
            `validation_data`). Those rows are not trained on.
        validation_fraction: Share of the rows held out for early stopping
            when no `validation_data` is given, in (0, 1).
        n_iter_no_change: Epochs without improvement before a layer stops (>= 1).
        tol: Smallest decrease of the validation loss that counts as an
            improvement (>= 0).
        precision: `None` (default: the layers follow Keras's global dtype
            policy), `"float32"`, `"bfloat16"` (Keras's `mixed_bfloat16`:
            float32 weights, bfloat16 products) or `"auto"` (bfloat16 where
            the backend runs its products on bfloat16 hardware here, else float32; see
            `tiedae.precision`). Applies to the greedy layers and the
            end-to-end fine-tuning; `precision_` records what ran. The
            fitted `autoencoder_` keeps float32 weights either way.

    Data may be larger than memory: `x` (and the validation data) may be a
    memory-mapped `.npy` (`np.load(path, mmap_mode="r")`), a backed `.h5ad`
    matrix or a `tiedae.pretraining.streaming.StreamedMatrix`. It is then read
    in shuffled windows of batches, and the clean codes of every layer go to
    a temporary memory-mapped file instead of RAM (see
    `tiedae.pretraining.streaming`).

    Attributes (set by `pretrain`):
        autoencoder_: The built `LayerwiseTiedAutoencoder` (a
            `DenseLayerAutoencoder`) holding kernel `k`, encoder bias `k` and
            decoder bias `k` of layer `k`'s autoencoder.
        history_: List with one dict per layer, `{"loss": [...], "val_loss": [...]}`
            (`val_loss` only with validation data).
        n_iter_: Epochs each layer ran (fewer than `epochs` when it stopped early).
        best_epoch_: The epoch of each layer whose weights were kept (1-based;
            the last epoch run without early stopping).
        finetune_history_: Dict of the fine-tuning losses, or `None`.
        finetune_n_iter_, finetune_best_epoch_: The same for the fine-tuning
            (`None` when it did not run).
        losses_: The loss each layer used ("binary_crossentropy" or "mse").
        input_dim_: Number of input features.
        seed_: The base seed actually used.

    Example:

    >>> sda = StackedDenoisingAutoencoder([256, 128, 64], corruption_level=[0.1, 0.2, 0.3])
    >>> sda.pretrain(x_train, validation_data=x_val, run_dir="runs/digits")
    >>> codes = sda.transform(x_train)
    >>> model = sda.to_classifier(10)
    >>> model.fit(x_labeled, y_labeled, epochs=20)
    """

    def __init__(
        self,
        layer_sizes,
        activation="sigmoid",
        corruption="masking",
        corruption_level=0.2,
        loss="auto",
        reconstruction_activation="auto",
        kernel_initializer="glorot_uniform",
        optimizer="adam",
        learning_rate=1e-3,
        epochs=10,
        batch_size=128,
        finetune_epochs=0,
        finetune_denoising=True,
        seed=None,
        verbose=1,
        data_parallel=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        precision=None,
    ):
        self.layer_sizes = check_layer_sizes(layer_sizes)
        n = len(self.layer_sizes)
        # Copies of list and dict arguments: editing the caller's object later
        # must not change what get_config() reports about this stack.
        self.activation = copy.deepcopy(activation)
        self.corruption = copy.deepcopy(corruption)
        self.corruption_level = copy.deepcopy(corruption_level)
        self.loss = copy.deepcopy(loss)
        self.reconstruction_activation = copy.deepcopy(reconstruction_activation)
        self.kernel_initializer = check_spec(
            kernel_initializer, "kernel_initializer", INITIALIZER_EXAMPLE
        )
        self.optimizer = check_optimizer(optimizer)
        self.learning_rate = learning_rate
        self.epochs = copy.deepcopy(epochs)
        self.batch_size = batch_size
        self.finetune_epochs = finetune_epochs
        self.finetune_denoising = finetune_denoising
        self.seed = check_seed(seed)
        self.verbose = verbose

        self._activations = _per_layer(activation, n, "activation")
        for act in self._activations:
            check_activation(act, "activation")
        self._corruptions = []
        for k, kind in enumerate(_per_layer(corruption, n, "corruption")):
            kind = "none" if kind is None else kind
            if kind != "none" and kind not in CORRUPTION_KINDS:
                raise ValueError(
                    f"`corruption` {kind!r} (layer {k}) is not known; use one of "
                    f"{sorted(CORRUPTION_KINDS) + ['none']}."
                )
            self._corruptions.append(kind)
        self._levels = []
        for k, level in enumerate(_per_layer(corruption_level, n, "corruption_level")):
            name = f"corruption_level (layer {k})"
            if self._corruptions[k] == "gaussian":
                self._levels.append(check_non_negative(level, name))
            else:
                self._levels.append(check_rate(level, name))
        self._losses = []
        for k, item in enumerate(_per_layer(loss, n, "loss")):
            if item not in LOSS_ALIASES:
                raise ValueError(
                    f"`loss` {item!r} (layer {k}) is not supported; use 'auto', "
                    "'binary_crossentropy' or 'mse'."
                )
            self._losses.append(LOSS_ALIASES[item])
        self._reconstruction_activations = []
        for k, act in enumerate(
            _per_layer(reconstruction_activation, n, "reconstruction_activation")
        ):
            if act != "auto":
                check_activation(act, "reconstruction_activation")
            self._reconstruction_activations.append(act)
            if self._losses[k] == "binary_crossentropy":
                self._reconstruction_activation(k, "binary_crossentropy")  # fail now
        self._epochs = [
            _check_epochs(e, f"epochs (layer {k})")
            for k, e in enumerate(_per_layer(epochs, n, "epochs"))
        ]
        check_positive(learning_rate, "learning_rate")
        self._make_optimizer()  # fail now on an unknown name or config
        self._initializer(0)  # likewise
        check_positive_int(batch_size, "batch_size")
        _check_epochs(finetune_epochs, "finetune_epochs")
        if not isinstance(finetune_denoising, (bool, np.bool_)):
            raise ValueError(
                f"`finetune_denoising` must be True or False; received {finetune_denoising!r}."
            )
        if verbose not in (0, 1, 2):
            raise ValueError(f"`verbose` must be 0, 1 or 2; received {verbose!r}.")
        self.data_parallel = check_data_parallel(data_parallel, check_backend=False)
        (self.early_stopping, self.validation_fraction, self.n_iter_no_change,
         self.tol) = check_early_stopping(early_stopping, validation_fraction, n_iter_no_change, tol)
        self.precision = check_precision(precision)

    # ------------------------------------------------------------------ config

    def get_config(self):
        """The constructor arguments, JSON-serialisable."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "activation": _jsonable(self.activation),
            "corruption": _jsonable(self.corruption),
            "corruption_level": _jsonable(self.corruption_level),
            "loss": _jsonable(self.loss),
            "reconstruction_activation": _jsonable(self.reconstruction_activation),
            "kernel_initializer": copy.deepcopy(self.kernel_initializer),
            "optimizer": copy.deepcopy(self.optimizer),
            "learning_rate": float(self.learning_rate),
            "epochs": _jsonable(self.epochs),
            "batch_size": int(self.batch_size),
            "finetune_epochs": int(self.finetune_epochs),
            "finetune_denoising": bool(self.finetune_denoising),
            "seed": self.seed,
            "verbose": self.verbose,
            "data_parallel": self.data_parallel,
            "early_stopping": self.early_stopping,
            "validation_fraction": self.validation_fraction,
            "n_iter_no_change": self.n_iter_no_change,
            "tol": self.tol,
            "precision": self.precision,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _resume_config(self):
        # verbose and data_parallel do not change the result (beyond the order
        # of floating-point sums), so a resumed run may change them.
        config = self.get_config()
        config.pop("verbose")
        config.pop("data_parallel")
        return config

    # Options added after checkpoints were first written; their defaults reproduce
    # what the code did before, so older checkpoints resume under them.
    LATER_OPTIONS = (
        "reconstruction_activation", "kernel_initializer", "early_stopping",
        "validation_fraction", "n_iter_no_change", "tol", "precision",
    )

    def _later_option_defaults(self):
        parameters = inspect.signature(type(self).__init__).parameters
        return {key: parameters[key].default for key in self.LATER_OPTIONS}

    # ----------------------------------------------------------------- helpers

    def _make_optimizer(self):
        return make_optimizer(self.optimizer, self.learning_rate, fused=True)

    def _log(self, message):
        if self.verbose:
            print(message, flush=True)

    def _check_fitted(self, method):
        if getattr(self, "autoencoder_", None) is None:
            raise ValueError(
                f"This StackedDenoisingAutoencoder is not pretrained yet; call `pretrain(x)` "
                f"before `{method}()`."
            )

    def _inference_batch_size(self, batch_size=None):
        if batch_size is None:
            return max(int(self.batch_size), 1024)
        return check_positive_int(batch_size, "batch_size")

    def _validation_matrix(self, validation_data, n_features):
        if validation_data is None:
            return None
        if isinstance(validation_data, tuple):
            # (x_val,) or (x_val, y_val): the labels are not used by an autoencoder.
            if len(validation_data) == 0:
                raise ValueError("`validation_data` is empty; pass x_val or (x_val, y_val).")
            validation_data = validation_data[0]
        return check_matrix(validation_data, "validation_data", n_features=n_features)

    def resolve_loss(self, k, x):
        """The loss of layer `k` given its input `x`: "binary_crossentropy" or "mse"."""
        loss = self._losses[k]
        low, high = data_range(x)
        in_unit_interval = low >= 0.0 and high <= 1.0
        if loss == "auto":
            # Binary cross-entropy needs a sigmoid decoder: a chosen other one gets mse.
            act = self._reconstruction_activations[k]
            sigmoid = act == "auto" or keras.activations.get(act) is keras.activations.sigmoid
            return "binary_crossentropy" if in_unit_interval and sigmoid else "mse"
        if loss == "binary_crossentropy" and not in_unit_interval:
            raise ValueError(
                f"loss='binary_crossentropy' for layer {k} needs inputs in [0, 1], but that "
                f"layer's input lies in [{low:.4g}, {high:.4g}]; use loss='mse' or 'auto', or "
                "rescale the data (e.g. sklearn.preprocessing.MinMaxScaler)."
            )
        return loss

    def _corruption_layer(self, k, x, seed, name):
        kind, level = self._corruptions[k], self._levels[k]
        if kind == "salt_and_pepper":
            low, high = data_range(x)
            if not low < high:
                high = low + 1.0
            return get_corruption(kind, level, seed=seed, low=low, high=high, name=name)
        return get_corruption(kind, level, seed=seed, name=name)

    def _seed_everything(self, offset):
        seed = self.seed_ + offset
        set_random_seed(seed)
        return seed

    def _fit(self, model, x, validation, epochs, callbacks):
        if epochs == 0:
            return None
        multiple, shard = batch_multiple(), process_shard()
        if is_streamed(x) or is_streamed(validation) or multiple > 1 or shard is not None:
            # Out-of-core or data-parallel: our batches, in our (shuffled) order.
            data = RowBatches(x, self.batch_size, multiple_of=multiple, shard=shard)
            val = None if validation is None else RowBatches(
                validation, self.batch_size, shuffle=False, multiple_of=multiple, shard=shard
            )
            return model.fit(
                data, epochs=epochs, validation_data=val, callbacks=callbacks, shuffle=False,
                verbose=self.verbose,
            )
        if is_sparse(x):
            data = SparseBatches(x, self.batch_size)
            val = None if validation is None else SparseBatches(validation, self.batch_size, False)
            return model.fit(
                data, epochs=epochs, validation_data=val, callbacks=callbacks,
                verbose=self.verbose,
            )
        # A ReconstructionModel takes its input as the target: one copy per batch.
        val = None if validation is None else (validation,)
        return model.fit(
            x, batch_size=self.batch_size, epochs=epochs, shuffle=True,
            validation_data=val, callbacks=callbacks, verbose=self.verbose,
        )

    def _fit_stopping(self, model, x, validation, epochs, callbacks):
        """`_fit` with early stopping when it is on: `(history dict, stopping summary)`."""
        stopper = None
        if self.early_stopping and epochs > 0:
            if validation is None:
                raise ValueError(
                    "early_stopping=True needs validation rows to decide when to stop; pass "
                    "validation_data or set early_stopping=False."
                )
            stopper = BestEpochStopping(self.n_iter_no_change, self.tol)
            callbacks = [*callbacks, stopper]
        history = _history_dict(self._fit(model, x, validation, epochs, callbacks))
        run = len(history.get("loss", []))
        if stopper is not None:
            return history, stopper.summary(run)
        return history, {"epochs_run": run, "best_epoch": run or None, "stopped_early": False}

    def _log_stopping(self, stage, stopping):
        if stopping["stopped_early"]:
            self._log(
                f"{stage}: stopped after epoch {stopping['epochs_run']}; kept epoch "
                f"{stopping['best_epoch']} (best validation loss)"
            )

    def _hold_out(self, x):
        """Split `validation_fraction` of `x`'s rows off for early stopping: `(x_train, x_val)`."""
        if is_streamed(x):
            raise ValueError(
                "early_stopping=True with data read from disk needs validation_data: rows of a "
                "memory-mapped or backed matrix are not split off automatically."
            )
        train, val = validation_rows(x.shape[0], self.validation_fraction, self.seed_)
        return x[train], x[val]

    # ------------------------------------------------------------ greedy phase

    def _reconstruction_activation(self, k, loss):
        """Layer k's decoder activation for its resolved `loss`."""
        act = self._reconstruction_activations[k]
        if act == "auto":
            return RECONSTRUCTION_ACTIVATION[loss]
        if loss == "binary_crossentropy" and keras.activations.get(act) is not keras.activations.sigmoid:
            raise ValueError(
                f"Layer {k} uses binary cross-entropy, which needs a sigmoid reconstruction, "
                f"but reconstruction_activation is {act!r}; use 'sigmoid' or 'auto', or "
                "loss='mse'."
            )
        return act

    def _initializer(self, seed):
        """A fresh kernel initializer of the configured kind, seeded with `seed`."""
        return make_initializer(self.kernel_initializer, seed)

    def _output_activation(self, k, loss, logits=False):
        """Layer k's reconstruction activation; with `logits`, linear where its loss
        `trains_on_logits` (a training model's output, for `training_loss`)."""
        if logits and trains_on_logits(loss):
            return "linear"
        return self._reconstruction_activation(k, loss)

    def _layer_autoencoder(self, k, loss, seed, logits=False):
        """Layer k's autoencoder (`logits`: see `_output_activation`)."""
        return DenseLayerAutoencoder(
            [self.layer_sizes[k]],
            activation=self._activations[k],
            output_activation=self._output_activation(k, loss, logits),
            kernel_initializer=self._initializer(seed),
            name=f"dae_{k}",
            dtype=POLICY.get(self.precision_),
        )

    def _train_layer(self, k, x, x_val, loss, callbacks):
        """Train layer k's denoising autoencoder on the clean codes `x`."""
        seed = self._seed_everything(k)
        in_dim = x.shape[1]
        inputs = keras.Input(shape=(in_dim,), name=f"clean_code_{k}")
        corruption = self._corruption_layer(k, x, seed, name=f"corruption_{k}")
        corrupted = inputs if corruption is None else corruption(inputs)
        dae = self._layer_autoencoder(k, loss, seed, logits=True)
        model = ReconstructionModel(inputs, dae(corrupted), name=f"greedy_layer_{k}")
        model.compile(optimizer=self._make_optimizer(), loss=training_loss(loss))
        self._log(
            f"Layer {k + 1}/{len(self.layer_sizes)}: {in_dim} -> {self.layer_sizes[k]} "
            f"({_activation_name(self._activations[k])}), "
            f"corruption {self._corruptions[k]} {self._levels[k]:g}, loss {loss}, "
            f"{self._epochs[k]} epochs"
        )
        history, stopping = self._fit_stopping(model, x, x_val, self._epochs[k], callbacks)
        self._log_stopping(f"Layer {k + 1}", stopping)
        return dae, history, stopping

    @_under_data_parallel
    def pretrain(self, x, validation_data=None, callbacks=None, run_dir=None, resume=False):
        """Greedy layer-wise pretraining, then optional end-to-end fine-tuning.

        Args:
            x: 2-D float array (or scipy sparse matrix) of shape
                `(n_samples, n_features)`.
            validation_data: Optional held-out `x_val`, or a tuple whose first
                item is `x_val`; its reconstruction loss is reported per epoch.
            callbacks: Optional list of Keras callbacks, passed to every
                layer's `fit` (and to the fine-tuning's).
            run_dir: Optional folder. After every layer, its weights and the
                run's state are written atomically to `run_dir/checkpoint/`.
            resume: With `run_dir`, skip the layers already completed there and
                load their weights. The checkpoint must come from the same
                configuration and data, else `ValueError`.

        Returns:
            `self`.
        """
        x = densify_if_small(check_matrix(x, "x"))
        x_val = densify_if_small(self._validation_matrix(validation_data, x.shape[1]))
        # A NaN loss stops the layer (naming it and the epoch) before it is checkpointed.
        callbacks = [StopOnDivergence(), *(callbacks or [])]
        n = len(self.layer_sizes)
        if resume and run_dir is None:
            raise ValueError("resume=True needs the `run_dir` of the run to resume.")

        checkpoint = PretrainingCheckpoint(run_dir) if run_dir is not None else None
        config, signature = self._resume_config(), data_signature(x)
        manifest = checkpoint.read_manifest() if checkpoint else None
        if manifest is not None and not resume:
            raise ValueError(
                f"{checkpoint.directory} already holds a pretraining checkpoint; pass "
                "resume=True to continue it, or use an empty run_dir."
            )
        if manifest is not None:
            check_resumable(manifest, config, signature, checkpoint.directory,
                            defaults=self._later_option_defaults())
            self.seed_ = int(manifest["seed"])
            done = int(manifest["completed_layers"])
            self._log(f"Resuming from {checkpoint.directory}: {done}/{n} layers done.")
        else:
            self.seed_ = (
                self.seed if self.seed is not None else int(np.random.randint(0, 2**30))
            )
            done = 0
            manifest = {
                "config": config, "data": signature, "seed": self.seed_,
                "completed_layers": 0, "losses": [], "history": [],
                "finetune": None,
            }
            if checkpoint is not None:
                checkpoint.write_manifest(manifest)

        if self.early_stopping and x_val is None:
            x, x_val = self._hold_out(x)
        self.input_dim_ = int(x.shape[1])
        self.precision_ = resolve_precision(self.precision)
        self.autoencoder_ = None
        self.finetune_history_ = None
        self.finetune_n_iter_ = self.finetune_best_epoch_ = None
        self.history_, self.losses_, arrays = [], [], []
        self.n_iter_, self.best_epoch_ = [], []
        stopping = manifest.setdefault("stopping", [])
        codes, val_codes = x, x_val
        batch = self._inference_batch_size()
        for k in range(n):
            if k < done:
                loss = manifest["losses"][k]
                layer = checkpoint.read_arrays(
                    checkpoint.layer_path(k), ["kernel", "encoder_bias", "decoder_bias"]
                )
                self.history_.append(manifest["history"][k])
                layer_stopping = (stopping[k] if k < len(stopping)
                                  else _stopping_of(manifest["history"][k]))
                dae = self._layer_autoencoder(k, loss, seed=self.seed_ + k)
                dae.build((None, codes.shape[1]))
                _assign(dae, 0, layer)
            else:
                loss = self.resolve_loss(k, codes)
                dae, history, layer_stopping = self._train_layer(
                    k, codes, val_codes, loss, callbacks
                )
                layer = _layer_arrays(dae, 0)
                self.history_.append(history)
                if checkpoint is not None:
                    checkpoint.write_arrays(checkpoint.layer_path(k), layer)
                    manifest["losses"] = manifest["losses"][:k] + [loss]
                    manifest["history"] = manifest["history"][:k] + [history]
                    manifest["stopping"] = manifest["stopping"][:k] + [layer_stopping]
                    manifest["completed_layers"] = k + 1
                    checkpoint.write_manifest(manifest)
            self.losses_.append(loss)
            self.n_iter_.append(layer_stopping["epochs_run"])
            self.best_epoch_.append(layer_stopping["best_epoch"])
            arrays.append(layer)
            if k + 1 < n:  # the next layer's clean codes, once, in batches
                # (to a temporary memory-mapped file when the input is on disk)
                codes = map_rows(dae.encode, codes, batch)
                if val_codes is not None:
                    val_codes = map_rows(dae.encode, val_codes, batch)

        self.autoencoder_ = self._build_autoencoder(arrays)
        if self.finetune_epochs > 0:
            finetuned = manifest.get("finetune") if checkpoint is not None else None
            if finetuned:
                names = _autoencoder_array_names(n)
                flat = checkpoint.read_arrays(checkpoint.finetuned_path, names)
                self._load_autoencoder_arrays(flat)
                self.finetune_history_ = finetuned["history"]
                summary = finetuned.get("stopping") or _stopping_of(self.finetune_history_)
                self.finetune_n_iter_ = summary["epochs_run"]
                self.finetune_best_epoch_ = summary["best_epoch"]
            else:
                self.finetune(x, validation_data=x_val, callbacks=callbacks)
                if checkpoint is not None:
                    checkpoint.write_arrays(
                        checkpoint.finetuned_path, self._autoencoder_arrays()
                    )
                    manifest["finetune"] = {
                        "history": self.finetune_history_,
                        "stopping": {"epochs_run": self.finetune_n_iter_,
                                     "best_epoch": self.finetune_best_epoch_},
                    }
                    checkpoint.write_manifest(manifest)
        return self

    def _build_autoencoder(self, arrays, dtype=None, logits=False):
        """Stack the per-layer weights into one deep tied autoencoder (explicit mapping);
        with `logits`, its output is the reconstruction's logits where layer 0's loss
        `trains_on_logits` (for training with `training_loss`)."""
        autoencoder = LayerwiseTiedAutoencoder(
            self.layer_sizes,
            activations=self._activations,
            decoder_activations=[  # only layer 0's reconstruction is the deep model's output
                self._output_activation(k, loss, logits and k == 0)
                for k, loss in enumerate(self.losses_)
            ],
            name="stacked_autoencoder",
            dtype=dtype,
        )
        autoencoder.build((None, self.input_dim_))
        for k, layer in enumerate(arrays):
            _assign(autoencoder, k, layer)
        return autoencoder

    def _autoencoder_arrays(self):
        flat = {}
        for k in range(len(self.layer_sizes)):
            for name, value in _layer_arrays(self.autoencoder_, k).items():
                flat[f"{name}_{k}"] = value
        return flat

    def _load_autoencoder_arrays(self, flat):
        for k in range(len(self.layer_sizes)):
            _assign(
                self.autoencoder_, k,
                {name: flat[f"{name}_{k}"] for name in ("kernel", "encoder_bias", "decoder_bias")},
            )

    # -------------------------------------------------------------- fine-tuning

    @_under_data_parallel
    def finetune(self, x, validation_data=None, epochs=None, callbacks=None, optimizer=None):
        """Train the deep tied autoencoder end to end as a denoising autoencoder.

        The input is corrupted with layer 0's corruption (unless the stack was
        built with `finetune_denoising=False`), the target is the clean input,
        and the loss is layer 0's. Updates `autoencoder_` in place
        and sets `finetune_history_`.

        With `early_stopping`, the epochs are a maximum and the weights of the
        best validation epoch are kept; without `validation_data`, a
        `validation_fraction` of `x` is held out for it.

        Args:
            x: 2-D array with `input_dim_` features.
            validation_data: Optional `x_val` (or a tuple starting with it).
            epochs: Number of epochs; defaults to `finetune_epochs`.
            optimizer: Optional Keras optimizer instance; default a fresh one
                as described by `optimizer` and `learning_rate`.
            callbacks: Optional list of Keras callbacks.

        Returns:
            `self`.
        """
        self._check_fitted("finetune")
        x = densify_if_small(check_matrix(x, "x", n_features=self.input_dim_))
        x_val = densify_if_small(self._validation_matrix(validation_data, self.input_dim_))
        epochs = _check_epochs(self.finetune_epochs if epochs is None else epochs, "epochs")
        if self.early_stopping and x_val is None:
            x, x_val = self._hold_out(x)
        n = len(self.layer_sizes)
        seed = self._seed_everything(n)
        inputs = keras.Input(shape=(self.input_dim_,), name="input")
        corruption = (
            self._corruption_layer(0, x, seed, name="corruption_finetune")
            if self.finetune_denoising
            else None
        )
        corrupted = inputs if corruption is None else corruption(inputs)
        # A twin trains and hands its (float32) weights back: one with the logits as its
        # output (see `training_loss`), in the mixed policy under bfloat16.
        bf16 = getattr(self, "precision_", None) == "bfloat16"
        trained = self._build_autoencoder(
            [_layer_arrays(self.autoencoder_, k) for k in range(n)],
            dtype=POLICY["bfloat16"] if bf16 else None, logits=True)
        model = ReconstructionModel(inputs, trained(corrupted), name="finetune_autoencoder")
        model.compile(optimizer=optimizer or self._make_optimizer(),
                      loss=training_loss(self.losses_[0]))
        self._log(f"Fine-tuning the {n}-layer tied autoencoder for {epochs} epochs")
        self.finetune_history_ = self._train_reconstruction(model, x, x_val, epochs, callbacks)
        for k in range(n):
            _assign(self.autoencoder_, k, _layer_arrays(trained, k))
        self.finetune_n_iter_ = self.reconstruction_stopping_["epochs_run"]
        self.finetune_best_epoch_ = self.reconstruction_stopping_["best_epoch"]
        return self

    @_under_data_parallel
    def fit_reconstruction(self, model, x, epochs, validation_data=None, callbacks=None):
        """Train a compiled reconstruction model on `x` the way this stack trains its own.

        The stack's batch size, shuffling and data paths (in memory, sparse,
        memory-mapped, data-parallel) and a stop when the loss diverges; e.g.
        for the untied autoencoder of `unroll()`:

        >>> autoencoder, encoder = sda.unroll()
        >>> autoencoder.compile(optimizer="adam", loss="mse")
        >>> sda.fit_reconstruction(autoencoder, x, epochs=20)

        With `early_stopping`, it stops on `validation_data`'s loss (required
        then) and keeps the best epoch; `reconstruction_stopping_` records
        the epochs run and the epoch kept.

        Args:
            model: A compiled `ReconstructionModel` with `input_dim_` inputs.
            x: 2-D array (or scipy sparse matrix, or memory-mapped matrix) with
                `input_dim_` features.
            epochs: Number of epochs.
            validation_data: Optional `x_val` (or a tuple starting with it).
            callbacks: Optional list of Keras callbacks.

        Returns:
            The per-epoch losses, `{"loss": [...]}` (and `"val_loss"`).
        """
        self._check_fitted("fit_reconstruction")
        x = densify_if_small(check_matrix(x, "x", n_features=self.input_dim_))
        x_val = densify_if_small(self._validation_matrix(validation_data, self.input_dim_))
        epochs = _check_epochs(epochs, "epochs")
        return self._train_reconstruction(model, x, x_val, epochs, callbacks)

    def _train_reconstruction(self, model, x, x_val, epochs, callbacks):
        history, self.reconstruction_stopping_ = self._fit_stopping(
            model, x, x_val, epochs, [StopOnDivergence(), *(callbacks or [])]
        )
        self._log_stopping("Fine-tuning", self.reconstruction_stopping_)
        return history

    # ---------------------------------------------------------------- inference

    def encoder(self, name="encoder"):
        """A `keras.Model` from input to code that shares `autoencoder_`'s variables."""
        self._check_fitted("encoder")
        return self.autoencoder_.encoder_model(name=name)

    def transform(self, x, batch_size=None):
        """The codes of `x` (top layer), as a NumPy array."""
        self._check_fitted("transform")
        x = check_matrix(x, "x", n_features=self.input_dim_)
        return map_in_batches(self.autoencoder_.encode, x, self._inference_batch_size(batch_size))

    def decode(self, codes, batch_size=None):
        """Reconstructions (input space) from codes, as a NumPy array."""
        self._check_fitted("decode")
        codes = check_matrix(codes, "codes", n_features=self.layer_sizes[-1])
        return map_in_batches(
            self.autoencoder_.decode, codes, self._inference_batch_size(batch_size)
        )

    def reconstruct(self, x, batch_size=None):
        """The clean reconstruction of `x` (no corruption), as a NumPy array."""
        self._check_fitted("reconstruct")
        x = check_matrix(x, "x", n_features=self.input_dim_)
        ae = self.autoencoder_
        return map_in_batches(
            lambda b: ae.decode(ae.encode(b)), x, self._inference_batch_size(batch_size)
        )

    # ------------------------------------------------------------------ hand-off

    def to_model(self, head, freeze=False, pretrained=True, dropout=0.0, name=None):
        """A supervised model: the pretrained hidden `Dense` stack followed by `head`.

        See `tiedae.pretraining.handoff.to_model`.
        """
        from tiedae.pretraining.handoff import to_model

        return to_model(self, head, freeze=freeze, pretrained=pretrained, dropout=dropout, name=name)

    def unroll(self, name="unrolled_autoencoder"):
        """The stack as an untied deep autoencoder `(autoencoder, encoder)`.

        See `tiedae.pretraining.handoff.unroll`.
        """
        from tiedae.pretraining.handoff import unroll

        return unroll(self, name=name)

    def to_classifier(
        self, n_classes, freeze=False, pretrained=True, dropout=0.0, compile=True,
        learning_rate=None,
    ):
        """A softmax classifier on the pretrained stack (or, with `pretrained=False`,
        the same architecture from random initialisation).

        See `tiedae.pretraining.handoff.to_classifier`.
        """
        from tiedae.pretraining.handoff import to_classifier

        return to_classifier(
            self, n_classes, freeze=freeze, pretrained=pretrained, dropout=dropout,
            compile=compile, learning_rate=learning_rate,
        )

    # ------------------------------------------------------------ persistence

    def _fitted_state(self):
        return {
            "input_dim": self.input_dim_,
            "history": self.history_,
            "finetune_history": self.finetune_history_,
            "losses": self.losses_,
            "seed": self.seed_,
            "n_iter": self.n_iter_,
            "best_epoch": self.best_epoch_,
            "finetune_stopping": [self.finetune_n_iter_, self.finetune_best_epoch_],
            "precision": getattr(self, "precision_", None),
        }

    def _set_fitted_state(self, state, autoencoder):
        self.input_dim_ = int(state["input_dim"])
        self.history_ = state["history"]
        self.finetune_history_ = state["finetune_history"]
        self.losses_ = list(state["losses"])
        self.seed_ = int(state["seed"])
        self.precision_ = state.get("precision")
        # Files saved before early stopping existed: every epoch ran and the last was kept.
        derived = [_stopping_of(h) for h in self.history_]
        self.n_iter_ = state.get("n_iter", [d["epochs_run"] for d in derived])
        self.best_epoch_ = state.get("best_epoch", [d["best_epoch"] for d in derived])
        finetuned = _stopping_of(self.finetune_history_) if self.finetune_history_ else None
        self.finetune_n_iter_, self.finetune_best_epoch_ = state.get(
            "finetune_stopping",
            [finetuned["epochs_run"], finetuned["best_epoch"]] if finetuned else [None, None],
        )
        self.autoencoder_ = autoencoder

    def save(self, path):
        """Save to a `.keras` file: a model `input -> autoencoder_` plus this object's
        config and fitted state (stored as an extra JSON member of the archive,
        which `keras.saving.load_model` ignores). The file appears whole or not at all."""
        self._check_fitted("save")
        path = str(path)
        if not path.endswith(".keras"):
            raise ValueError(f"`path` must end in '.keras'; received {path!r}.")
        inputs = keras.Input(shape=(self.input_dim_,), name="input")
        model = keras.Model(inputs, self.autoencoder_(inputs), name="stacked_denoising_autoencoder")
        state = {"config": self.get_config(), "fitted": self._fitted_state()}
        # A temporary name, renamed when whole: an interrupted save leaves any earlier file.
        with atomic_path(path) as tmp:
            model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(SAVED_STATE_NAME, json.dumps(state))

    @classmethod
    def load(cls, path):
        """Load an object written by `save`."""
        path = str(path)
        with zipfile.ZipFile(path) as archive:
            if SAVED_STATE_NAME not in archive.namelist():
                raise ValueError(
                    f"{path} was not written by StackedDenoisingAutoencoder.save; load it "
                    "with keras.saving.load_model instead."
                )
            state = json.loads(archive.read(SAVED_STATE_NAME))
        model = keras.saving.load_model(path, compile=False)
        autoencoders = [l for l in model.layers if isinstance(l, DenseLayerAutoencoder)]
        sda = cls.from_config(state["config"])
        sda._set_fitted_state(state["fitted"], autoencoders[0])
        return sda

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k != "autoencoder_"}
        if getattr(self, "autoencoder_", None) is not None:
            state["_autoencoder_arrays"] = self._autoencoder_arrays()
        return state

    def __setstate__(self, state):
        state = dict(state)
        flat = state.pop("_autoencoder_arrays", None)
        self.__dict__.update(state)
        self.autoencoder_ = None
        if flat is not None:
            arrays = [
                {name: flat[f"{name}_{k}"] for name in ("kernel", "encoder_bias", "decoder_bias")}
                for k in range(len(self.layer_sizes))
            ]
            self.autoencoder_ = self._build_autoencoder(arrays)


def _stopping_of(history):
    """The stopping summary of a run recorded before early stopping existed (all epochs ran)."""
    run = len((history or {}).get("loss", []))
    return {"epochs_run": run, "best_epoch": run or None, "stopped_early": False}


def _autoencoder_array_names(n):
    return [f"{name}_{k}" for k in range(n) for name in ("kernel", "encoder_bias", "decoder_bias")]


def _activation_name(activation):
    """A log line's name of an activation (not `keras.activations.serialize`, which imports
    TensorFlow, see `tiedae.seeding`)."""
    fn = keras.activations.get(activation)
    return getattr(fn, "__name__", repr(fn))


def _assign(autoencoder, k, layer):
    """Copy one layer's arrays into `autoencoder`'s layer `k` and verify the copy."""
    targets = {
        "kernel": autoencoder.kernels[k],
        "encoder_bias": autoencoder.encoder_biases[k],
        "decoder_bias": autoencoder.decoder_biases[k],
    }
    for name, variable in targets.items():
        value = np.asarray(layer[name])
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"Cannot load {name} of layer {k}: shape {value.shape} does not match the "
                f"variable's {tuple(variable.shape)}."
            )
        variable.assign(value)
        if not np.array_equal(keras.ops.convert_to_numpy(variable), value):
            raise RuntimeError(f"Copying {name} of layer {k} did not reproduce the values.")
