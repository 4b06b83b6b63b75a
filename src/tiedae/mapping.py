"""Single-cell reference mapping, scQuery's job: train on a labelled reference, map new cells onto it.

```python
from tiedae.mapping import fit_reference, map_query, retrieve, evaluate_mapping

ref = fit_reference(reference, "cell_type", layer_sizes=(256, 64), normalize=True, log1p=True)
ref.save("reference.keras")                   # one file; ReferenceModel.load on any backend
map_query(query, ref)                          # obsm["X_tiedae"], obs["tiedae_label"/"tiedae_confidence"]
map_query(query, ref, unknown="distance")      # Unknown: far from every reference cell in the embedding
dist, idx, labels = retrieve(query, ref, k=10) # nearest reference cells in the embedding
evaluate_mapping(query.obs["cell_type"], query.obs["tiedae_label"], query.obsm["X_tiedae"], ref)
```

The network is greedily pretrained as a stacked denoising autoencoder on the
reference cells (and, optionally, unlabelled query cells), handed to a softmax
classifier (`to_classifier`) and fine-tuned on the labels with early stopping
on a stratified held-out part of the reference. Its last hidden layer is the
embedding; the reference cells' embedding and labels are kept for retrieval.

A query cell is called `"Unknown"` by its softmax confidence (`unknown=
"softmax"`), by its novelty (`"distance"`: the mean distance to its `k`
nearest reference cells in the standardised embedding, above a quantile of
the same statistic of the reference's held-out cells, each computed without
itself), or by both at once (`"both"`) or either (`"either"`).
"""

import io
import json
import os
import warnings
import zipfile

import keras
import numpy as np
import scipy.sparse

from tiedae.io.anndata import matrix_of
from tiedae.io.atomic import atomic_path
from tiedae.io.errors import DataError
from tiedae.preprocessing import DEFAULT_TARGET_SUM, CountPreprocessing
from tiedae.pretraining.handoff import pretrained_layers
from tiedae.pretraining.stacked import StackedDenoisingAutoencoder
from tiedae.seeding import set_random_seed

STATE_NAME = "tiedae_reference.json"
ARRAYS_NAME = "tiedae_reference.npz"
UNKNOWN = "Unknown"
MIN_OVERLAP = 0.5  # below half the model's genes, a mapping is more guess than transfer
_CHECK_ROWS = 2000  # rows inspected for counts-versus-log detection
UNKNOWN_RULES = ("softmax", "distance", "both", "either")
NOVELTY_METRICS = ("euclidean", "cosine")
NOVELTY_CALIBRATIONS = ("held-out", "all")
MIN_TYPE_CALIBRATION = 10  # calibration cells a type needs for its own novelty quantile


# ----------------------------------------------------------------------------- input checks


def _check_values(block, expects_counts, what):
    """NaN, negatives, and counts-versus-log-normalised, on a block of rows."""
    values = block.data if scipy.sparse.issparse(block) else np.asarray(block).ravel()
    if values.size == 0:
        return
    if np.isnan(values).any():
        raise DataError(f"{what} has NaN values; replace or drop them before mapping.")
    if values.min() < 0:
        raise DataError(
            f"{what} has negative values (minimum {float(values.min()):.4g}): expected "
            f"{'counts' if expects_counts else 'log-normalised values'}, not scaled or centred data."
        )
    integer = np.all(values == np.round(values))
    if expects_counts and not integer and values.max() < 30:
        raise DataError(
            f"{what} looks log-normalised (non-integer values, maximum {float(values.max()):.3g}) but the "
            "model normalises raw counts itself; pass the counts (e.g. layer='counts')."
        )
    if not expects_counts and integer and values.max() > 50:
        raise DataError(
            f"{what} looks like raw counts (integers up to {float(values.max()):.0f}) but the model expects "
            "log-normalised values; log-normalise it first (or fit with normalize=True, log1p=True)."
        )


def _rows(x, start, stop):
    """Rows of an in-memory or backed matrix (h5py dataset, AnnData CSR dataset)."""
    block = x[start:stop]
    if scipy.sparse.issparse(block):
        return scipy.sparse.csr_matrix(block)
    return block.tocsr() if hasattr(block, "tocsr") else np.asarray(block)


def _head(x, n=_CHECK_ROWS):
    return _rows(x, 0, min(n, x.shape[0]))


def _dense(block):
    return block.toarray() if scipy.sparse.issparse(block) else np.asarray(block)


def _labels(adata, label_key):
    if label_key not in adata.obs.columns:
        known = ", ".join(map(str, adata.obs.columns)) or "none"
        raise DataError(f"the reference has no column {label_key!r} in obs (columns: {known}).")
    labels = adata.obs[label_key]
    if labels.isna().any():
        raise DataError(f"obs[{label_key!r}] has {int(labels.isna().sum())} missing labels; drop those cells first.")
    labels = labels.astype(str).to_numpy()
    classes = np.unique(labels)
    if classes.size < 2:
        raise DataError(
            f"obs[{label_key!r}] has a single class ({classes[0] if classes.size else 'none'!r}); "
            "a reference needs at least two cell types."
        )
    return labels, classes


# ----------------------------------------------------------------------------- gene alignment


def align_genes(var_names, model_genes, min_overlap=MIN_OVERLAP):
    """Where each of the model's genes is among `var_names`.

    Returns `(src, dst)`: the query columns and the model columns they fill;
    the model's other columns are zero. Warns with the missing fraction;
    raises `DataError` below `min_overlap`.
    """
    if var_names is None or len(var_names) == 0:
        raise DataError("the query has no gene names (var_names); set adata.var_names to the genes.")
    names = [str(v) for v in var_names]
    if all(n.isdigit() for n in names[: min(50, len(names))]):
        raise DataError(
            "the query's gene names are row numbers ('0', '1', ...): set adata.var_names to the gene "
            "symbols or IDs the reference used."
        )
    position = {name: i for i, name in enumerate(names)}
    pairs = [(position[g], j) for j, g in enumerate(model_genes) if g in position]
    found = len(pairs)
    total = len(model_genes)
    if found / total < min_overlap:
        missing = [g for g in model_genes if g not in position][:5]
        hint = _identifier_hint(model_genes, names)
        raise DataError(
            f"the query has only {found} of the model's {total} genes ({found / total:.0%}, minimum "
            f"{min_overlap:.0%}); missing e.g. {', '.join(missing)}{hint}."
        )
    if found < total:
        warnings.warn(
            f"the query has {found} of the model's {total} genes; the missing {1 - found / total:.1%} "
            "are filled with zeros.", UserWarning, stacklevel=3,
        )
    src = np.array([p[0] for p in pairs], dtype=np.int64)
    dst = np.array([p[1] for p in pairs], dtype=np.int64)
    return src, dst


def _identifier_hint(model_genes, names):
    def ensembl(genes):
        genes = list(genes)[:200]
        return sum(str(g).upper().startswith("ENS") for g in genes) > len(genes) / 2

    if ensembl(model_genes) != ensembl(names):
        kinds = ("Ensembl IDs", "gene symbols") if ensembl(model_genes) else ("gene symbols", "Ensembl IDs")
        return f" (the model uses {kinds[0]}, the query {kinds[1]}: convert one to the other)"
    lower = {str(g).lower() for g in names}
    if sum(str(g).lower() in lower for g in model_genes) >= MIN_OVERLAP * len(model_genes):
        return " (the names differ in case only, e.g. mouse against human symbols)"
    return " (different gene identifiers, or a different species)"


def _aligned(block, src, dst, n_genes):
    """Rows of the query in the model's gene order, zeros where a gene is missing."""
    if scipy.sparse.issparse(block):
        block = scipy.sparse.csr_matrix(block)[:, src]
        # A 0/1 matrix sending query column i to model column dst[i]: stays sparse.
        move = scipy.sparse.csr_matrix(
            (np.ones(len(src), np.float32), (np.arange(len(src)), dst)), shape=(len(src), n_genes)
        )
        return (block @ move).tocsr()
    block = np.asarray(block)
    out = np.zeros((block.shape[0], n_genes), dtype=np.float32)
    out[:, dst] = block[:, src]
    return out


# ----------------------------------------------------------------------------- the model


class ReferenceModel:
    """What `fit_reference` returns: classifier, genes, preprocessing and reference embedding.

    Attributes:
        classifier: The fine-tuned `keras.Model` (genes -> class probabilities).
        var_names: The genes, in the order of the network's inputs.
        preprocessing: The `CountPreprocessing` applied first (`target_sum` fixed).
        classes: The cell-type names, in the order of the softmax outputs.
        reference_embedding: `(reference cells, code size)` last-hidden-layer codes.
        reference_labels: The reference cells' labels (strings).
        layer: The `adata.layers` key the model was fitted on (`None`: `X`).
        history: Fine-tuning history (`epochs_run`, `best_epoch`, losses).
        calibration_index: Row numbers of the reference cells held out from
            fine-tuning (early stopping only): their novelty, each computed
            without itself, calibrates `unknown="distance"`. `None` (a model
            saved before it was kept): every reference cell, leave-one-out.
    """

    def __init__(self, classifier, var_names, preprocessing, classes, reference_embedding,
                 reference_labels, layer=None, history=None, calibration_index=None):
        self.classifier = classifier
        self.var_names = [str(v) for v in var_names]
        self.preprocessing = preprocessing
        self.classes = np.asarray([str(c) for c in classes])
        self.reference_embedding = np.asarray(reference_embedding, dtype=np.float32)
        self.reference_labels = np.asarray([str(v) for v in reference_labels])
        self.layer = layer
        self.history = dict(history or {})
        hidden = pretrained_layers(classifier)[-1]
        # The last hidden layer and the softmax in one pass.
        self._both = keras.Model(classifier.inputs[0], [hidden.output, classifier.outputs[0]])
        self._neighbors = None
        self.calibration_index = (None if calibration_index is None
                                  else np.sort(np.asarray(calibration_index, dtype=np.int64)))
        self._novelty = {}  # metric -> (fitted NearestNeighbors, scale)
        self._calibration = {}  # (k, metric, calibration) -> (scores, labels)

    @property
    def expects_counts(self):
        return self.preprocessing.active

    def predict(self, x, batch_size=1024):
        """`(embedding, probabilities)` of an aligned, preprocessed matrix."""
        codes, probs = [], []
        for start in range(0, x.shape[0], batch_size):
            block = _dense(x[start:start + batch_size]).astype(np.float32)
            c, p = self._both(block, training=False)
            codes.append(keras.ops.convert_to_numpy(c))
            probs.append(keras.ops.convert_to_numpy(p))
        return np.concatenate(codes), np.concatenate(probs)

    def neighbors(self):
        if self._neighbors is None:
            from sklearn.neighbors import NearestNeighbors

            self._neighbors = NearestNeighbors().fit(self.reference_embedding)
        return self._neighbors

    def _novelty_index(self, metric):
        """Nearest neighbours on the reference codes standardised per dimension (and the scaling)."""
        if metric not in NOVELTY_METRICS:
            raise ValueError(f"`novelty_metric` must be one of {NOVELTY_METRICS}; received {metric!r}.")
        if metric not in self._novelty:
            from sklearn.neighbors import NearestNeighbors

            codes = self.reference_embedding.astype(np.float64)
            scale = (codes.mean(axis=0), codes.std(axis=0) + 1e-6)
            index = NearestNeighbors(metric=metric, algorithm="brute").fit((codes - scale[0]) / scale[1])
            self._novelty[metric] = (index, scale)
        return self._novelty[metric]

    def novelty(self, codes, k=10, metric="euclidean"):
        """Mean distance of each row of `codes` to its `k` nearest reference cells.

        Euclidean or cosine distance, both on codes standardised with the
        reference embedding's per-dimension mean and standard deviation.
        """
        index, (mean, std) = self._novelty_index(metric)
        k = min(int(k), len(self.reference_labels))
        if len(codes) == 0:
            return np.zeros(0)
        distances, _ = index.kneighbors((np.asarray(codes, np.float64) - mean) / std, n_neighbors=k)
        return distances.mean(axis=1)

    def novelty_calibration(self, k=10, metric="euclidean", calibration="held-out"):
        """`(scores, labels)`: the novelty of the calibration cells, each without itself.

        `calibration="held-out"`: the reference cells held out from
        fine-tuning (`calibration_index`; every cell when the model has none);
        `"all"`: every reference cell. Each cell's `k` nearest reference cells
        are found among the others (leave-one-out).
        """
        if calibration not in NOVELTY_CALIBRATIONS:
            raise ValueError(f"`novelty_calibration` must be one of {NOVELTY_CALIBRATIONS}; received {calibration!r}.")
        rows = self.calibration_index
        if calibration == "all" or rows is None or rows.size == 0:
            rows = np.arange(len(self.reference_labels))
        key = (int(k), metric, calibration)
        if key not in self._calibration:
            index, (mean, std) = self._novelty_index(metric)
            k = min(int(k), len(self.reference_labels) - 1)
            if k < 1:
                raise ValueError("novelty needs a reference of at least two cells.")
            codes = (self.reference_embedding[rows].astype(np.float64) - mean) / std
            distances, found = index.kneighbors(codes, n_neighbors=k + 1)
            # Drop each cell itself (the last neighbour where an exact duplicate hid it).
            itself = found == rows[:, None]
            itself[~itself.any(axis=1), -1] = True
            itself &= np.cumsum(itself, axis=1) == 1
            scores = distances[~itself].reshape(len(rows), k).mean(axis=1)
            self._calibration[key] = (scores, self.reference_labels[rows])
        return self._calibration[key]

    def novelty_thresholds(self, quantile=0.99, k=10, metric="euclidean", calibration="held-out",
                           per_type=False):
        """`(global threshold, {type: threshold})`: quantiles of the calibration cells' novelty.

        With `per_type`, each type with at least `MIN_TYPE_CALIBRATION`
        calibration cells has its own quantile; the others use the global one.
        """
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"`novelty_quantile` must be in (0, 1]; received {quantile!r}.")
        scores, labels = self.novelty_calibration(k, metric, calibration)
        overall = float(np.quantile(scores, quantile))
        types = {}
        if per_type:
            for name in np.unique(labels):
                own = scores[labels == name]
                if own.size >= MIN_TYPE_CALIBRATION:
                    types[str(name)] = float(np.quantile(own, quantile))
        return overall, types

    def save(self, path):
        """One `.keras` file: the classifier, plus settings (JSON) and reference arrays (NPZ)."""
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise ValueError(f"`path` must end in '.keras'; received {path!r}.")
        state = {
            "var_names": self.var_names, "preprocessing": self.preprocessing.to_dict(),
            "classes": self.classes.tolist(), "layer": self.layer, "history": self.history,
        }
        buffer = io.BytesIO()
        arrays = dict(embedding=self.reference_embedding, labels=self.reference_labels)
        if self.calibration_index is not None:
            arrays["calibration_index"] = self.calibration_index
        np.savez(buffer, **arrays)
        with atomic_path(path) as tmp:  # a reader never sees a half-written model
            self.classifier.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(STATE_NAME, json.dumps(state))
                archive.writestr(ARRAYS_NAME, buffer.getvalue())

    @classmethod
    def load(cls, path):
        path = os.fspath(path)
        with zipfile.ZipFile(path) as archive:
            if STATE_NAME not in archive.namelist():
                raise ValueError(f"{path} was not written by ReferenceModel.save.")
            state = json.loads(archive.read(STATE_NAME))
            arrays = np.load(io.BytesIO(archive.read(ARRAYS_NAME)))
            embedding, labels = arrays["embedding"], arrays["labels"]
            # Files saved before the calibration cells were kept have none.
            calibration = arrays["calibration_index"] if "calibration_index" in arrays.files else None
        classifier = keras.saving.load_model(path, compile=False)
        return cls(classifier, state["var_names"], CountPreprocessing.from_dict(state["preprocessing"]),
                   state["classes"], embedding, labels, layer=state["layer"], history=state["history"],
                   calibration_index=calibration)


def validation_split(labels, validation_fraction, seed):
    """(kept, held-out) cell indices of `fit_reference`'s fine-tuning: stratified by label where
    every class can be split, else random; the same arguments give the same split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(labels.size)
    _, counts = np.unique(labels, return_counts=True)
    n_held = int(np.ceil(validation_fraction * labels.size))
    # A singleton class cannot be split, nor can fewer held-out (or kept) cells than classes.
    can_stratify = counts.min() >= 2 and min(n_held, labels.size - n_held) >= counts.size
    stratify = labels if can_stratify else None
    return train_test_split(index, test_size=validation_fraction, stratify=stratify, random_state=seed)


def fit_reference(
    adata,
    label_key,
    layer_sizes=(256, 64),
    *,
    layer=None,
    normalize=False,
    log1p=False,
    target_sum=DEFAULT_TARGET_SUM,
    unlabelled=None,
    pretrained=True,
    epochs=10,
    finetune_epochs=100,
    patience=10,
    validation_fraction=0.1,
    batch_size=128,
    learning_rate=1e-3,
    dropout=0.0,
    seed=0,
    verbose=0,
    **kwargs,
):
    """Pretrain on the reference cells, fine-tune on their labels, keep their embedding.

    Args:
        adata: The reference `AnnData` (cells x genes); `X` or `layers[layer]`.
        label_key: `adata.obs` column of the cell types.
        layer_sizes: Encoder widths; the last is the embedding's dimension.
        normalize, log1p, target_sum: Count preprocessing (as in `tiedae.sc.fit`);
            without them the matrix must already be log-normalised.
        unlabelled: Optional `AnnData` of query cells to pretrain on as well
            (aligned to the reference's genes; never used for fine-tuning).
        pretrained: `False` trains the same network from random init (baseline).
        epochs: Pretraining epochs per layer.
        finetune_epochs: Most fine-tuning epochs; early stopping on
            `validation_fraction` of the reference (stratified) keeps the best.
        **kwargs: Other `StackedDenoisingAutoencoder` arguments.

    Returns:
        A `ReferenceModel`.
    """
    from tiedae.sc import _check_anndata

    _check_anndata(adata, "fit_reference")
    labels, classes = _labels(adata, label_key)
    preprocessing = CountPreprocessing(normalize=normalize, log1p=log1p, target_sum=target_sum)
    x = matrix_of(adata, layer)
    _check_values(_head(x), preprocessing.active, "the reference")
    preprocessing = preprocessing.resolve(x)
    # Fine-tuning runs through Keras fit on an in-memory array: a reference is
    # labelled, hence of atlas size at most, which fits in memory.
    x = _dense(preprocessing(_rows(x, 0, x.shape[0]))).astype(np.float32)
    var_names = [str(v) for v in adata.var_names]
    stack = StackedDenoisingAutoencoder(
        layer_sizes, epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose,
        learning_rate=learning_rate, **kwargs,
    )
    train_x = x
    if unlabelled is not None:
        src, dst = align_genes(unlabelled.var_names, var_names)
        extra = matrix_of(unlabelled, layer)
        _check_values(_head(extra), preprocessing.active, "the unlabelled cells")
        extra = _aligned(_rows(extra, 0, extra.shape[0]), src, dst, len(var_names))
        train_x = np.concatenate([x, _dense(preprocessing(extra)).astype(np.float32)])
    # With pretrained=False the stack is only built (one epoch) for its
    # architecture; to_classifier then draws fresh weights.
    if not pretrained:
        stack.epochs = 1
    stack.pretrain(train_x)
    classifier = stack.to_classifier(len(classes), pretrained=pretrained, dropout=dropout,
                                     learning_rate=learning_rate)
    y = np.searchsorted(classes, labels)
    train, val = validation_split(labels, validation_fraction, seed)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    set_random_seed(seed)
    fitted = classifier.fit(
        x[train], y[train], validation_data=(x[val], y[val]), epochs=finetune_epochs,
        batch_size=batch_size, callbacks=[stopping], verbose=verbose,
    )
    losses = [float(v) for v in fitted.history["val_loss"]]
    history = {"epochs_run": len(losses), "best_epoch": int(np.argmin(losses)) + 1,
               "val_loss": losses, "loss": [float(v) for v in fitted.history["loss"]]}
    model = ReferenceModel(classifier, var_names, preprocessing, classes, np.zeros((0, 1)),
                           labels, layer=layer, history=history, calibration_index=val)
    model.reference_embedding = model.predict(x, batch_size=1024)[0]
    return model


# ----------------------------------------------------------------------------- mapping


def query_matrix(query, model, min_overlap=MIN_OVERLAP, layer="fitted", batch_size=1024):
    """Yield `(start, block)`: the query's rows in the model's genes, preprocessed, in batches."""
    layer = model.layer if layer == "fitted" else layer
    src, dst = align_genes(list(query.var_names), model.var_names, min_overlap)
    x = matrix_of(query, layer)
    _check_values(_head(x), model.expects_counts, "the query")
    for start in range(0, x.shape[0], batch_size):
        block = _rows(x, start, start + batch_size)
        values = block.data if scipy.sparse.issparse(block) else block
        if values.size and (np.isnan(values).any() or values.min() < 0):  # beyond the first rows checked
            _check_values(block, model.expects_counts, "the query")
        yield start, model.preprocessing.transform_block(_aligned(block, src, dst, len(model.var_names)))


def unknown_mask(model, codes, labels, confidence, *, unknown="softmax", confidence_threshold=0.5,
                 novelty_quantile=0.99, novelty_k=10, novelty_metric="euclidean",
                 novelty_calibration="held-out", novelty_per_type=False):
    """Which cells a rule calls `"Unknown"`, and their novelty (`None` under `"softmax"`).

    Args:
        model: The `ReferenceModel`.
        codes, labels, confidence: The cells' embedding, argmax labels and
            largest class probability.
        unknown: `"softmax"`: confidence below `confidence_threshold`;
            `"distance"`: novelty (`ReferenceModel.novelty`) above the
            `novelty_quantile` of the calibration cells' (per predicted type
            with `novelty_per_type`); `"both"`: both at once; `"either"`: one
            of them.

    Returns:
        `(mask, novelty)`.
    """
    if unknown not in UNKNOWN_RULES:
        raise ValueError(f"`unknown` must be one of {UNKNOWN_RULES}; received {unknown!r}.")
    if not 0.0 <= confidence_threshold <= 1.0:
        raise ValueError(f"`confidence_threshold` must be in [0, 1]; received {confidence_threshold!r}.")
    low = np.asarray(confidence) < confidence_threshold
    if unknown == "softmax":
        return low, None
    overall, types = model.novelty_thresholds(novelty_quantile, novelty_k, novelty_metric,
                                              novelty_calibration, novelty_per_type)
    novelty = model.novelty(codes, novelty_k, novelty_metric)
    limit = np.array([types.get(str(name), overall) for name in labels], dtype=np.float64)
    far = novelty > limit
    mask = {"distance": far, "both": far & low, "either": far | low}[unknown]
    return mask, novelty


def map_query(query, model, *, confidence_threshold=0.5, unknown="softmax", novelty_quantile=0.99,
              novelty_k=10, novelty_metric="euclidean", novelty_calibration="held-out",
              novelty_per_type=False, min_overlap=MIN_OVERLAP, layer="fitted", batch_size=1024,
              key_added="X_tiedae", copy=False):
    """Embed the query cells and transfer the reference's labels.

    Writes `obsm[key_added]` (embedding), `obs["tiedae_label"]` (predicted cell
    type, or `"Unknown"` by the `unknown` rule, see `unknown_mask`: by default
    where the confidence is below `confidence_threshold`),
    `obs["tiedae_confidence"]` (the largest class probability),
    `obs["tiedae_novelty"]` (the mean distance to the `novelty_k` nearest
    reference cells, when the rule uses it) and `uns["tiedae_mapping"]` (gene
    overlap, the rule and its thresholds). Checks everything before writing
    anything.

    Returns the annotated object when `copy=True`, else `None`.
    """
    from tiedae.sc import _check_anndata

    _check_anndata(query, "map_query")
    rule = dict(unknown=unknown, confidence_threshold=confidence_threshold, novelty_quantile=novelty_quantile,
                novelty_k=novelty_k, novelty_metric=novelty_metric, novelty_calibration=novelty_calibration,
                novelty_per_type=novelty_per_type)
    # The rule's arguments are checked on no cells before any work.
    unknown_mask(model, np.zeros((0, model.reference_embedding.shape[1])), [], [], **rule)
    codes, probs = [], []
    for _, block in query_matrix(query, model, min_overlap, layer, batch_size):
        c, p = model.predict(block, batch_size)
        codes.append(c)
        probs.append(p)
    codes = np.concatenate(codes) if codes else np.zeros((0, model.reference_embedding.shape[1]), np.float32)
    probs = np.concatenate(probs) if probs else np.zeros((0, len(model.classes)), np.float32)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0, np.float32)
    label = model.classes[probs.argmax(axis=1)] if len(probs) else np.zeros(0, str)
    mask, novelty = unknown_mask(model, codes, label, confidence, **rule)
    label = np.where(mask, UNKNOWN, label)
    found = int(np.isin(model.var_names, [str(v) for v in query.var_names]).sum())
    info = {"genes_found": found, "genes_model": len(model.var_names),
            "confidence_threshold": float(confidence_threshold), "classes": model.classes.tolist(),
            "unknown": unknown}
    if novelty is not None:
        overall, types = model.novelty_thresholds(novelty_quantile, novelty_k, novelty_metric,
                                                  novelty_calibration, novelty_per_type)
        info.update(novelty_quantile=float(novelty_quantile), novelty_k=int(novelty_k),
                    novelty_metric=novelty_metric, novelty_calibration=novelty_calibration,
                    novelty_threshold=overall, novelty_type_thresholds=types)
    if copy:
        query = query.copy() if not query.isbacked else query.to_memory()
    query.obsm[key_added] = codes.astype(np.float32)
    query.obs["tiedae_label"] = np.asarray(label, dtype=object)
    query.obs["tiedae_confidence"] = confidence.astype(np.float32)
    if novelty is not None:
        query.obs["tiedae_novelty"] = novelty.astype(np.float32)
    query.uns["tiedae_mapping"] = info
    return query if copy else None


def retrieve(query, model, k=10, key="X_tiedae"):
    """The `k` nearest reference cells of every query cell in the embedding.

    Args:
        query: An `AnnData` mapped by `map_query` (uses `obsm[key]`) or an
            embedding array `(cells, code size)`.

    Returns:
        `(distances, indices, labels)`, each `(cells, k)`: Euclidean distances,
        row numbers of the reference cells, and their labels.
    """
    codes = np.asarray(query.obsm[key] if hasattr(query, "obsm") else query, dtype=np.float32)
    k = min(int(k), len(model.reference_labels))
    distances, indices = model.neighbors().kneighbors(codes, n_neighbors=k)
    return distances, indices, model.reference_labels[indices]


def average_precision(relevant):
    """Average precision of ranked lists: `relevant` is `(queries, k)` booleans, best first.

    The mean of precision@i over the ranks i of the relevant items (0 when
    none is relevant), the retrieval score scQuery reported per cell type.
    """
    relevant = np.asarray(relevant, dtype=bool)
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    n = relevant.sum(axis=1)
    return np.divide((precision * relevant).sum(axis=1), n, out=np.zeros(len(n)), where=n > 0)


def evaluate_mapping(true_labels, predicted_labels=None, embedding=None, model=None, k=100):
    """Accuracy, macro-F1, and per-cell-type mean average precision of retrieval.

    Args:
        true_labels: The query cells' own labels.
        predicted_labels: Transferred labels (`obs["tiedae_label"]`); `None` to skip.
        embedding, model: The query's embedding and the `ReferenceModel`, for
            retrieval of the `k` nearest reference cells (relevant: same label).

    Returns:
        A dict: `accuracy`, `macro_f1` (over the query's cell types; cells
        called Unknown count as wrong), `map_per_type`, `map` (the mean over
        cells, i.e. weighted by the query's type sizes, as scQuery reported)
        and `map_unweighted`.
    """
    from sklearn.metrics import f1_score

    true_labels = np.asarray([str(v) for v in true_labels])
    out = {}
    if predicted_labels is not None:
        predicted = np.asarray([str(v) for v in predicted_labels])
        out["accuracy"] = float(np.mean(predicted == true_labels))
        out["macro_f1"] = float(f1_score(true_labels, predicted, labels=np.unique(true_labels),
                                         average="macro", zero_division=0))
    if embedding is not None and model is not None:
        _, _, labels = retrieve(embedding, model, k=k)
        ap = average_precision(labels == true_labels[:, None])
        per_type = {t: float(ap[true_labels == t].mean()) for t in np.unique(true_labels)}
        out["map_per_type"] = per_type
        out["map"] = float(ap.mean())
        out["map_unweighted"] = float(np.mean(list(per_type.values())))
    return out
