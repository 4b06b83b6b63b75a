"""A scikit-learn classifier: greedy denoising-autoencoder pretraining, then supervised fine-tuning."""

import warnings

import keras
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from tiedae._validation import check_non_negative, check_non_negative_int
from tiedae.estimators._base import (
    as_float32,
    check_learning_rate,
    derive_seed,
    predict_in_batches,
    resolve_early_stopping,
    sda_params,
)
from tiedae.pretraining.data import SparseBatches, densify_if_small
from tiedae.pretraining.early_stopping import BestEpochStopping, validation_rows
from tiedae.pretraining.handoff import fit_with_unfreezing
from tiedae.pretraining.semi_supervised import fit_semi_supervised
from tiedae.pretraining.stacked import StackedDenoisingAutoencoder
from tiedae.seeding import set_random_seed


# `scoring` -> the Keras log entry early stopping watches, and its direction.
SCORINGS = {"accuracy": ("val_accuracy", "max"), "loss": ("val_loss", "min")}


class PretrainedMLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron initialised by stacked-denoising-autoencoder pretraining.

    `fit` (1) pretrains a `StackedDenoisingAutoencoder` greedily on `X` plus
    any extra unlabeled rows, (2) copies its encoder into the hidden `Dense`
    layers of a softmax classifier and (3) trains the whole network on the
    labels (Vincent et al. 2010; Bengio et al. 2007).

    The defaults (relu, masking noise 0.1, Adam 0.003, at most 50 greedy
    epochs per layer and 300 supervised ones, early stopping) are the recipe
    with the best mean validation accuracy over Fashion-MNIST, digits and
    breast-cancer rows (`benchmarks/recipe_selection.py`; no test rows were
    used). Below 300 rows early stopping is off and every epoch runs; pass
    fewer epochs there.

    Args:
        layer_sizes: Hidden layer widths (a list or tuple of positive ints; a
            bare int is one hidden layer, as in `StackedDenoisingAutoencoder`).
        activation: Hidden activation, one or one per layer.
        corruption: Pretraining corruption kind (or one per layer).
        corruption_level: Corrupted fraction, or Gaussian standard deviation.
        loss: Pretraining loss: "auto", "binary_crossentropy" or "mse".
        optimizer: Keras optimizer name, for both phases.
        learning_rate: Learning rate of the pretraining (positive and finite).
        pretrain_epochs: Greedy epochs per layer (or one per layer).
        epochs: Supervised epochs.
        finetune_learning_rate: Learning rate of the supervised phase (positive
            and finite); default `learning_rate`.
        batch_size: Batch size of both phases.
        dropout: Dropout after every hidden layer in the supervised phase.
        freeze_epochs: Supervised epochs with the pretrained layers frozen
            before all layers train (staged unfreezing); 0 trains all at once.
            They count within `epochs`: `freeze_epochs=5, epochs=20` trains
            the output layer alone for 5 epochs, then every layer for 15. With
            `freeze_epochs >= epochs` (and `freeze_epochs > 0`) the pretrained
            layers never unfreeze and only the output layer trains; `fit`
            still fits that model but warns (`UserWarning`), as this is more
            often a mistake than a deliberate linear probe.
        pretrained: If `False`, skip pretraining and train the same network
            from random initialisation (the control).
        reconstruction_weight: If > 0, the supervised phase is semi-supervised
            (`tiedae.pretraining.fit_semi_supervised`): the network's tied
            decoder keeps reconstructing `X` and `X_unlabeled` with this weight
            while it learns the labels, and `epochs` counts passes over those
            rows. That phase uses Adam with a cosine-decayed learning rate and
            dense data; `freeze_epochs` must be 0. Helps most with few labels
            and many unlabelled rows.
        random_state: None, an int or a `numpy.random.RandomState`; an int makes
            `fit` reproducible.
        verbose: 0, 1 or 2 (Keras progress output).
        early_stopping: `True`, `False` or `"auto"` (default: on when `X`
            has at least 300 rows). When on, a stratified
            `validation_fraction` of the labelled rows is held out (every
            class keeps rows on both sides) and neither phase trains on it:
            each greedy layer stops on its validation reconstruction loss,
            the supervised phase on its validation `scoring`, after
            `n_iter_no_change` epochs without an improvement of `tol`, and
            each keeps its best epoch's weights; `pretrain_epochs` and
            `epochs` are then maxima. With `freeze_epochs`, the frozen and
            the unfrozen stages each stop on their own.
        validation_fraction: Share of the labelled rows held out, in (0, 1).
        n_iter_no_change: Epochs without improvement before stopping (>= 1).
        tol: Smallest improvement of a validation loss or score that counts.
        scoring: What the supervised phase stops on: `"loss"` (default, the
            validation cross-entropy, as `HistGradientBoostingClassifier`'s
            default) or `"accuracy"` (the validation accuracy, as
            scikit-learn's `MLPClassifier`; ties keep the earlier epoch).
            On the selection rows the loss won (0.937 against 0.901 mean
            validation accuracy: with tens to hundreds of validation rows the
            accuracy plateaus and stops too soon), while wide networks on
            many rows can gain from "accuracy": for SdA-3 of 1,000 units on
            54,000 Fashion-MNIST training images the validation loss was
            lowest at epoch 7 (89.4% validation accuracy), the accuracy
            highest at epoch 17 (90.3%). Greedy pretraining always stops on
            its reconstruction loss.
        precision: The greedy pretraining's precision: None (Keras's global
            policy), "float32", "bfloat16" or "auto" (see `tiedae.precision`).

    Attributes:
        classes_: The class labels (any sortable labels).
        sda_: The fitted `StackedDenoisingAutoencoder` (its `n_iter_` and
            `best_epoch_` say how each greedy layer stopped).
        model_: The fine-tuned `keras.Model` (softmax output over `classes_`).
        history_: Per-epoch losses and accuracies of the supervised phase
            (`val_loss` and `val_accuracy` too with early stopping).
        n_iter_: Supervised epochs run.
        best_epoch_: The supervised epoch whose weights were kept (1-based;
            the last one without early stopping).
        validation_indices_: The rows of `X` held out for early stopping
            (empty without it).
        n_features_in_: Number of input features.

    Notes on scikit-learn's estimator checks: every check applies and passes
    (`check_estimator`, all three backends); none is marked as an expected
    failure. `check_classifiers_train` asserts an accuracy above 0.83 on a
    small blob problem, so a configuration trained for very few epochs can
    miss it; the tests use a tiny network trained for 3 epochs, which meets
    it. Labels with a single class are refused (`ValueError`, as scikit-learn's
    own classifiers do) rather than fitted with a one-unit softmax.

    Example:

    >>> clf = PretrainedMLPClassifier((128, 64), pretrain_epochs=10, epochs=30)
    >>> clf.fit(X_labeled, y_labeled, X_unlabeled=X_pool).score(X_test, y_test)
    """

    def __init__(
        self,
        layer_sizes=(64, 32),
        activation="relu",
        corruption="masking",
        corruption_level=0.1,
        loss="auto",
        optimizer="adam",
        learning_rate=3e-3,
        pretrain_epochs=50,
        epochs=300,
        finetune_learning_rate=None,
        batch_size=128,
        dropout=0.0,
        freeze_epochs=0,
        pretrained=True,
        reconstruction_weight=0.0,
        random_state=None,
        verbose=0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        scoring="loss",
        precision=None,
    ):
        self.layer_sizes = layer_sizes
        self.activation = activation
        self.corruption = corruption
        self.corruption_level = corruption_level
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.finetune_learning_rate = finetune_learning_rate
        self.batch_size = batch_size
        self.dropout = dropout
        self.freeze_epochs = freeze_epochs
        self.pretrained = pretrained
        self.reconstruction_weight = reconstruction_weight
        self.random_state = random_state
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.scoring = scoring
        self.precision = precision

    def fit(self, X, y, X_unlabeled=None, pretrained_stack=None):
        """Pretrain on `X` (and `X_unlabeled`), then fine-tune on `(X, y)`.

        Args:
            X: Array-like or sparse matrix, `(n_samples, n_features)`.
            y: Class labels, `(n_samples,)`.
            X_unlabeled: Optional extra rows for the unsupervised pretraining
                only, with the same features as `X`. In a `Pipeline`, pass it as
                `step_name__X_unlabeled=...` (it does not go through the steps
                before the classifier).
            pretrained_stack: Optional fitted `StackedDenoisingAutoencoder` with
                `layer_sizes` hidden layers and `X`'s features: its encoder
                initialises the network and no greedy pretraining runs. One
                pretraining on a large unlabelled pool can so serve several
                fits (label budgets, seeds of the supervised phase); the stack
                itself is not changed.
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has only one class ({self.classes_[0]!r}); a classifier needs samples "
                "of at least 2 classes."
            )
        X = as_float32(X)
        stopping = resolve_early_stopping(self, X.shape[0])
        if self.scoring not in SCORINGS:
            raise ValueError(
                f"`scoring` must be 'accuracy' or 'loss' (what early stopping of the supervised "
                f"phase watches on the validation rows); received {self.scoring!r}."
            )
        seed = derive_seed(self.random_state)
        targets = encoded.astype(np.int32)
        X_val = y_val = None
        self.validation_indices_ = np.array([], dtype=np.intp)
        if stopping[0]:
            train, self.validation_indices_ = validation_rows(
                X.shape[0], stopping[1], seed, y=y, what="labelled rows"
            )
            X, X_val = X[train], X[self.validation_indices_]
            targets, y_val = targets[train], targets[self.validation_indices_]
        pool = X
        if X_unlabeled is not None:
            extra = as_float32(
                check_array(X_unlabeled, accept_sparse="csr", dtype=[np.float32, np.float64],
                            input_name="X_unlabeled")
            )
            if extra.shape[1] != X.shape[1]:
                raise ValueError(
                    f"X_unlabeled has {extra.shape[1]} features but X has {X.shape[1]}; "
                    "pass unlabeled rows with the same columns."
                )
            if sp.issparse(X) or sp.issparse(extra):
                pool = sp.vstack([sp.csr_matrix(X), sp.csr_matrix(extra)], format="csr")
            else:
                pool = np.concatenate([X, extra], axis=0)

        # Checked before the (long) pretraining, under the names passed to this
        # estimator (the helpers downstream name their own arguments).
        check_learning_rate(self.learning_rate, "learning_rate")
        check_learning_rate(self.finetune_learning_rate, "finetune_learning_rate", allow_none=True)
        n_epochs = check_non_negative_int(self.epochs, "epochs")
        freeze_epochs = check_non_negative_int(self.freeze_epochs, "freeze_epochs")
        semi_supervised = check_non_negative(self.reconstruction_weight, "reconstruction_weight") > 0
        if semi_supervised and freeze_epochs:
            raise ValueError(
                "freeze_epochs must be 0 with reconstruction_weight > 0: the semi-supervised "
                "phase trains all layers from the start."
            )
        if freeze_epochs > 0 and freeze_epochs >= n_epochs:
            warnings.warn(
                f"freeze_epochs={freeze_epochs} is not less than epochs={n_epochs}, so the "
                "pretrained layers stay frozen for every supervised epoch and only the output "
                "layer trains. `epochs` counts all supervised epochs, frozen ones included: "
                "to train every layer for k epochs after the frozen ones, set "
                "epochs=freeze_epochs + k.",
                UserWarning,
                stacklevel=2,
            )
        if pretrained_stack is not None:
            self.sda_ = sda = self._check_pretrained_stack(pretrained_stack, X, X_unlabeled)
        else:
            # Without pretraining, 0 greedy epochs still builds the stack's shapes.
            epochs = self.pretrain_epochs if self.pretrained else 0
            sda = StackedDenoisingAutoencoder(**sda_params(self, epochs, seed, stopping))
            self.sda_ = sda.pretrain(pool, validation_data=X_val)

        finetune_seed = seed + len(sda.layer_sizes) + 1
        stopper = callbacks = None
        if stopping[0]:
            monitor, mode = SCORINGS[self.scoring]
            stopper = BestEpochStopping(
                stopping[2], stopping[3],
                monitor=monitor.replace("val_", "val_classifier_") if semi_supervised else monitor,
                mode=mode,
            )
            callbacks = [stopper]
        if semi_supervised:
            lr = self.learning_rate if self.finetune_learning_rate is None else self.finetune_learning_rate
            self.model_, self.history_ = fit_semi_supervised(
                sda, X, targets, pool, n_classes=len(self.classes_), epochs=n_epochs,
                reconstruction_weight=self.reconstruction_weight, batch_size=self.batch_size,
                learning_rate=lr, pretrained=bool(self.pretrained), dropout=self.dropout,
                seed=finetune_seed, verbose=self.verbose, callbacks=callbacks,
                validation_data=None if X_val is None else (X_val, y_val),
            )
            return self._record_stopping(stopper)
        set_random_seed(finetune_seed)
        model = sda.to_classifier(
            len(self.classes_), pretrained=bool(self.pretrained), dropout=self.dropout,
            learning_rate=self.finetune_learning_rate,
        )
        X = densify_if_small(X)
        X_val = None if X_val is None else densify_if_small(X_val)
        if sp.issparse(X):
            data, labels, batch = SparseBatches(X, self.batch_size, y=targets), None, {}
        else:
            data, labels, batch = X, targets, {"batch_size": self.batch_size}
        if X_val is not None:
            batch["validation_data"] = (
                SparseBatches(X_val, self.batch_size, False, y=y_val) if sp.issparse(X_val)
                else (X_val, y_val)
            )
        self.history_ = fit_with_unfreezing(
            model, data, labels, epochs=n_epochs, unfreeze_after=freeze_epochs,
            verbose=self.verbose, callbacks=callbacks, **batch,
        )
        self.model_ = model
        return self._record_stopping(stopper)

    def _check_pretrained_stack(self, stack, X, X_unlabeled):
        """`stack` if it can initialise this estimator's network on `X`, else `ValueError`."""
        if not isinstance(stack, StackedDenoisingAutoencoder):
            raise ValueError(
                f"pretrained_stack must be a fitted StackedDenoisingAutoencoder; received "
                f"{type(stack).__name__}."
            )
        if getattr(stack, "input_dim_", None) is None:
            raise ValueError("pretrained_stack is not fitted yet; call its `pretrain` first.")
        if not self.pretrained:
            raise ValueError(
                "pretrained=False trains from random initialisation, so a pretrained_stack "
                "would be ignored; pass one or the other."
            )
        if X_unlabeled is not None:
            raise ValueError(
                "X_unlabeled only feeds the greedy pretraining, which pretrained_stack replaces; "
                "pretrain the stack on those rows instead."
            )
        if stack.input_dim_ != X.shape[1]:
            raise ValueError(
                f"pretrained_stack was pretrained on {stack.input_dim_} features but X has "
                f"{X.shape[1]}."
            )
        sizes = [self.layer_sizes] if isinstance(self.layer_sizes, int) else list(self.layer_sizes)
        if list(stack.layer_sizes) != sizes:
            raise ValueError(
                f"pretrained_stack has hidden layers {list(stack.layer_sizes)} but layer_sizes is "
                f"{sizes}; set layer_sizes to the stack's."
            )
        return stack

    def _record_stopping(self, stopper):
        self.n_iter_ = len(self.history_.get("loss", []))
        best = None if stopper is None else stopper.best_epoch_
        self.best_epoch_ = self.n_iter_ if best is None else best
        return self

    def predict_proba(self, X):
        """Class probabilities, shape `(n_samples, n_classes)`, in the order of `classes_`."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False)
        proba = predict_in_batches(self.model_, as_float32(X), self.batch_size).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each sample."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
