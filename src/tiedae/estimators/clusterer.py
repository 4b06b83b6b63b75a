"""A scikit-learn clusterer: Deep Embedded Clustering on a stacked tied denoising autoencoder."""

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, validate_data

from tiedae._validation import check_layer_sizes, check_positive, check_positive_int
from tiedae.estimators._base import (
    as_float32,
    check_learning_rate,
    derive_seed,
    hold_out,
    predict_in_batches,
    renamed_parameter,
    resolve_early_stopping,
    sda_params,
)
from tiedae.pretraining.deep_clustering import check_refinement_params, refine_clusters
from tiedae.pretraining.optimizers import make_optimizer
from tiedae.pretraining.reconstruction_model import ReconstructionModel
from tiedae.pretraining.stacked import (
    LOSS_ALIASES,
    StackedDenoisingAutoencoder,
    check_activation,
)
from tiedae.seeding import set_random_seed


class DeepEmbeddedClustering(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """Clusters in the code of a stacked tied denoising autoencoder, refined by DEC.

    `fit` follows Deep Embedded Clustering (Xie, Girshick and Farhadi, 2016):
    (1) greedy layer-wise pretraining of a `StackedDenoisingAutoencoder`
    (every hidden layer reconstructed through `activation`, the input
    linearly), then end-to-end fine-tuning of the deep autoencoder, unrolled
    into untied encoder and decoder, on the clean input;
    (2) k-means in its code space; (3) DEC's self-training of the encoder and
    the centres (`tiedae.pretraining.refine_clusters`). With `max_iter=0`,
    step 3 is skipped: the result is k-means on the autoencoder's code.

    Args:
        n_clusters: Number of clusters.
        layer_sizes: Encoder widths; the last is the code width (a list or tuple
            of positive ints; a bare int is a single code layer). Default: DEC's
            500-500-2000-10.
        activation: Activation of the hidden layers.
        code_activation: Activation of the code layer (DEC: linear).
        corruption: Pretraining corruption kind ("masking", "salt_and_pepper",
            "gaussian" or "none").
        corruption_level: Corrupted fraction, or Gaussian standard deviation.
        loss: Reconstruction loss: "mse" (DEC's), "binary_crossentropy" or "auto".
            Binary cross-entropy needs inputs in [0, 1] and, with more than one
            layer, `activation="sigmoid"` (the hidden layers are reconstructed
            through `activation`). "auto" picks binary cross-entropy for a
            layer whose input lies in [0, 1], else mse; for the hidden layers
            it means mse unless `activation` is "sigmoid".
        kernel_initializer: Keras initializer name or `{"class_name", "config"}`
            dict for the stack's kernels (DEC-keras: VarianceScaling with
            scale 1/3, fan_in, uniform).
        optimizer: Keras optimizer name (or `{"class_name", "config"}` dict)
            for pretraining and fine-tuning.
        learning_rate: Their learning rate (positive and finite).
        pretrain_epochs: Greedy epochs per layer (or one per layer); a maximum
            with early stopping.
        finetune_epochs: Epochs of end-to-end fine-tuning on the clean input.
        finetune_optimizer: Optimizer of the fine-tuning when it differs from
            `optimizer` (e.g. DEC-keras's `{"class_name": "SGD", "config":
            {"momentum": 0.9}}`).
        finetune_learning_rate: Its learning rate; default `learning_rate`.
        unroll: If `True` (default), fine-tune an untied copy of the stack
            (`StackedDenoisingAutoencoder.unroll`, as Hinton and Salakhutdinov
            fine-tune their pretrained stack), else the tied stack itself.
        batch_size: Batch size of every phase.
        n_init: k-means initialisations (the best inertia wins).
        alpha: Degrees of freedom of the Student's t kernel.
        max_iter: Maximum DEC training steps; 0 keeps the k-means clusters.
        update_interval: DEC steps between updates of the target distribution.
        tol: DEC stops when fewer than this fraction of the samples change
            cluster between two updates.
        cluster_learning_rate: Learning rate of DEC's SGD (momentum 0.9).
        random_state: None, an int or a `numpy.random.RandomState`; an int makes
            `fit` reproducible.
        verbose: 0, 1 or 2 (Keras progress output and DEC's progress lines).
        early_stopping: `True`, `False` or `"auto"` (default: on when `X`
            has at least 300 rows): the autoencoder phases (every greedy
            layer and the end-to-end fine-tuning) hold out a random
            `validation_fraction` of the rows, stop after `n_iter_no_change`
            epochs without a decrease of `stopping_tol` in their validation
            reconstruction loss and keep the best epoch. k-means and DEC's
            refinement then use every row.
        validation_fraction: Share of the rows held out, in (0, 1).
        n_iter_no_change: Epochs without improvement before stopping (>= 1).
        stopping_tol: Smallest decrease of the validation loss that counts
            as an improvement (the other estimators' `tol`; here `tol` is
            DEC's own stopping rule).
        precision: The greedy pretraining's precision: None (Keras's global
            policy), "float32", "bfloat16" or "auto" (see `tiedae.precision`).
        epochs: Former name of `pretrain_epochs` (`FutureWarning`); `None`.

    Attributes:
        labels_: Cluster of every training sample.
        cluster_centers_: Centres in the code space, `(n_clusters, code_dim)`.
        kmeans_labels_: The k-means clusters before DEC's refinement.
        autoencoder_code_: The training samples' code before DEC's refinement
            (what `kmeans_labels_` clusters), `(n_samples, code_dim)`, float32:
            the embedding to compare with `transform(X)` or to cluster another
            way (e.g. a Gaussian mixture on its UMAP).
        sda_: The greedily pretrained `StackedDenoisingAutoencoder` (also
            fine-tuned when `unroll=False`; DEC trains a copy of its encoder).
        autoencoder_: The fine-tuned deep autoencoder (`keras.Model`).
        finetune_history_: Its per-epoch losses (`{"loss": [...]}`), or `None`.
        encoder_: `keras.Model` from input to code, refined by DEC.
        model_: `keras.Model` from input to soft assignments (`encoder_`
            followed by a `SoftClusterAssignment` layer).
        n_iter_: DEC training steps taken.
        converged_: Whether DEC stopped by `tol` rather than `max_iter`.
        history_: DEC's updates (`step`, `changed`, `loss`); see
            `tiedae.pretraining.refine_clusters`.
        n_features_in_: Number of input features.

    Example:

    >>> dec = DeepEmbeddedClustering(n_clusters=10, random_state=0)
    >>> labels = dec.fit_predict(x)           # x: (n_samples, n_features) in [0, 1]
    >>> q = dec.predict_proba(x_new)          # soft assignments, rows sum to 1
    >>> codes = dec.transform(x_new)          # the 10-d embedding
    """

    def __init__(
        self,
        n_clusters=8,
        layer_sizes=(500, 500, 2000, 10),
        activation="relu",
        code_activation="linear",
        corruption="masking",
        corruption_level=0.2,
        loss="mse",
        kernel_initializer="glorot_uniform",
        optimizer="adam",
        learning_rate=1e-3,
        pretrain_epochs=10,
        finetune_epochs=10,
        finetune_optimizer=None,
        finetune_learning_rate=None,
        unroll=True,
        batch_size=256,
        n_init=20,
        alpha=1.0,
        max_iter=20000,
        update_interval=140,
        tol=1e-3,
        cluster_learning_rate=0.01,
        random_state=None,
        verbose=0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        stopping_tol=1e-4,
        precision=None,
        epochs=None,
    ):
        self.n_clusters = n_clusters
        self.layer_sizes = layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.corruption = corruption
        self.corruption_level = corruption_level
        self.loss = loss
        self.kernel_initializer = kernel_initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.finetune_optimizer = finetune_optimizer
        self.finetune_learning_rate = finetune_learning_rate
        self.unroll = unroll
        self.batch_size = batch_size
        self.n_init = n_init
        self.alpha = alpha
        self.max_iter = max_iter
        self.update_interval = update_interval
        self.tol = tol
        self.cluster_learning_rate = cluster_learning_rate
        self.random_state = random_state
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.stopping_tol = stopping_tol
        self.precision = precision
        self.epochs = epochs

    def fit(self, X, y=None):
        """Pretrain, fine-tune, run k-means and refine the clusters on `X`.

        Args:
            X: Array-like or sparse matrix, `(n_samples, n_features)`.
            y: Ignored.
        """
        import keras

        X = as_float32(
            validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        )
        # Everything is checked before the (long) pretraining, under the names passed to
        # this estimator (the stack and DEC's helpers name their own arguments).
        n_clusters = check_positive_int(self.n_clusters, "n_clusters")
        if n_clusters > X.shape[0]:
            raise ValueError(
                f"n_clusters={n_clusters} is more than the {X.shape[0]} samples in X; "
                "pass more samples or ask for fewer clusters."
            )
        check_positive_int(self.n_init, "n_init")
        check_learning_rate(self.learning_rate, "learning_rate")
        check_learning_rate(self.finetune_learning_rate, "finetune_learning_rate", allow_none=True)
        check_learning_rate(self.cluster_learning_rate, "cluster_learning_rate")
        check_positive(self.alpha, "alpha")
        check_refinement_params(self.batch_size, self.update_interval, self.max_iter, self.tol)
        check_activation(self.activation, "activation")
        check_activation(self.code_activation, "code_activation")
        seed = derive_seed(self.random_state)
        epochs = renamed_parameter(self, "epochs", "pretrain_epochs")
        stopping = resolve_early_stopping(self, X.shape[0], tol=self.stopping_tol)
        params = sda_params(self, epochs, seed, stopping)
        layer_sizes = check_layer_sizes(self.layer_sizes)
        n_layers = len(layer_sizes)
        self._check_loss(n_layers)
        params["activation"] = [self.activation] * (n_layers - 1) + [self.code_activation]
        # DEC's decoders: every hidden layer is reconstructed through `activation`,
        # the input linearly (with "mse"; a linear decoder throughout would make
        # the code little more than PCA's).
        params["reconstruction_activation"] = ["auto"] + [self.activation] * (n_layers - 1)
        params["kernel_initializer"] = self.kernel_initializer
        sda = StackedDenoisingAutoencoder(**params, finetune_denoising=False)
        self._finetune_optimizer()  # fail before the (long) pretraining
        X_fit, X_val = hold_out(X, seed, stopping)
        self.sda_ = sda.pretrain(X_fit, validation_data=X_val)

        set_random_seed(seed + n_layers + 1)
        if self.unroll:
            self.autoencoder_, encoder = sda.unroll()
            self._compile_finetuning(self.autoencoder_)
            history = sda.fit_reconstruction(
                self.autoencoder_, X_fit, self.finetune_epochs, validation_data=X_val
            )
            self.finetune_history_ = history if self.finetune_epochs else None
        else:
            if self.finetune_epochs:
                sda.finetune(X_fit, validation_data=X_val, epochs=self.finetune_epochs,
                             optimizer=self._finetune_optimizer())
            self.finetune_history_ = sda.finetune_history_
            # DEC trains a copy of the encoder; `sda_` stays the tied autoencoder.
            self.autoencoder_ = sda.autoencoder_
            encoder = sda.to_model(keras.layers.Identity(name="code"), name="encoder")
        codes = predict_in_batches(encoder, X, self.batch_size)
        kmeans = KMeans(n_clusters, n_init=self.n_init, random_state=seed)
        self.kmeans_labels_ = kmeans.fit_predict(codes).astype(np.intp)
        self.autoencoder_code_ = codes
        result = refine_clusters(
            encoder, X, kmeans.cluster_centers_, alpha=self.alpha,
            optimizer=keras.optimizers.SGD(learning_rate=self.cluster_learning_rate, momentum=0.9),
            batch_size=self.batch_size, max_iter=self.max_iter,
            update_interval=self.update_interval, tol=self.tol, seed=seed,
            verbose=1 if self.verbose else 0,
        )
        self.model_ = result.model
        self._n_features_out = layer_sizes[-1]
        self.encoder_ = encoder
        self.labels_ = result.labels.astype(np.intp)
        self.cluster_centers_ = result.cluster_centers
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.history_ = result.history
        return self

    def _check_loss(self, n_layers):
        """Refuse binary cross-entropy for the hidden layers unless `activation` is sigmoid:
        the stack reconstructs them through `activation`, and its own message would point at
        its `reconstruction_activation`, which this estimator does not have."""
        import keras

        if keras.activations.get(self.activation) is keras.activations.sigmoid:
            return
        losses = self.loss if isinstance(self.loss, (list, tuple)) else [self.loss] * n_layers
        if any(isinstance(loss, str) and LOSS_ALIASES.get(loss) == "binary_crossentropy"
               for loss in list(losses)[1:]):
            raise ValueError(
                f"loss={self.loss!r} needs a sigmoid reconstruction, but "
                f"DeepEmbeddedClustering reconstructs its hidden layers through "
                f"`activation` ({self.activation!r}); use loss='mse' (DEC's default), or "
                "activation='sigmoid' with binary cross-entropy."
            )

    def _compile_finetuning(self, autoencoder):
        """Compile the unrolled `autoencoder` for end-to-end fine-tuning."""
        autoencoder.compile(optimizer=self._finetune_optimizer(), loss=self.sda_.losses_[0])

    def _finetune_optimizer(self):
        optimizer = self.optimizer if self.finetune_optimizer is None else self.finetune_optimizer
        lr = self.learning_rate if self.finetune_learning_rate is None else self.finetune_learning_rate
        lr = check_learning_rate(
            lr, "learning_rate" if self.finetune_learning_rate is None else "finetune_learning_rate"
        )
        name = "optimizer" if self.finetune_optimizer is None else "finetune_optimizer"
        return make_optimizer(optimizer, lr, name=name)

    def _checked(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False)
        return as_float32(X)

    def predict_proba(self, X):
        """DEC's soft assignments `q`, shape `(n_samples, n_clusters)`; rows sum to 1."""
        X = self._checked(X)  # before reading fitted attributes: NotFittedError first
        q = predict_in_batches(self.model_, X, self.batch_size).astype(np.float64)
        return q / q.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The cluster of each sample (the most probable under `predict_proba`)."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.intp)

    def transform(self, X):
        """The refined code (the embedding being clustered), `(n_samples, code_dim)`, float32."""
        X = self._checked(X)
        return predict_in_batches(self.encoder_, X, self.batch_size)

    # `encoder_` is a layer of `model_`, and with `unroll` the encoder half of
    # `autoencoder_` too. Pickled one by one they would come back as copies, and
    # training one would no longer change the others: `encoder_` is dropped and
    # found again inside `model_`, and the unrolled autoencoder is rebuilt on it.
    def __getstate__(self):
        # A copy: on Python >= 3.11 the inherited __getstate__ returns __dict__ itself.
        state = dict(super().__getstate__())
        state.pop("encoder_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "model_" not in state:
            return
        import keras

        self.encoder_ = next(layer for layer in self.model_.layers if isinstance(layer, keras.Model))
        if isinstance(self.autoencoder_, ReconstructionModel):
            self.autoencoder_ = self._unrolled_on_encoder(self.autoencoder_)

    def _unrolled_on_encoder(self, autoencoder):
        """`autoencoder` (the unrolled chain of layers) with its encoder layers replaced by
        `encoder_`'s, compiled as `fit` compiles it (optimizer state starts afresh)."""
        encoder_layers = {layer.name: layer for layer in self.encoder_.layers}
        inputs = self.encoder_.inputs[0]
        h = inputs
        for layer in autoencoder.layers[1:]:  # [0] is the InputLayer
            h = encoder_layers.get(layer.name, layer)(h)
        rebuilt = ReconstructionModel(inputs, h, name=autoencoder.name)
        self._compile_finetuning(rebuilt)
        return rebuilt

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
