"""Single-cell functions in scanpy's style: fit on an `AnnData`, results written into it.

```python
import tiedae.sc

model = tiedae.sc.fit(adata, layer_sizes=[256, 64], normalize=True, log1p=True, epochs=20)
adata.obsm["X_tiedae"]           # (cells, 64) embedding, e.g. for sc.pp.neighbors(use_rep=...)
adata.varm["tiedae_loadings"]    # (genes, 256) first-layer kernel
adata.uns["tiedae"]              # parameters and per-layer losses
tiedae.sc.embed(other, model)    # the same preprocessing and encoder on new cells

ref = tiedae.sc.fit_reference(reference, "cell_type")   # tiedae.mapping: labelled reference,
tiedae.sc.map_query(query, ref)                         # label transfer with confidence and Unknown
```

The matrix (`adata.X` or a layer) is used as stored: a sparse count matrix
stays sparse and is densified one batch at a time; the `X` of an `AnnData`
opened in backed mode is streamed from disk. With `gene_sets` (a GMT file or
a mapping from set name to genes), the first layer is a masked tied layer
with one unit per gene set, connected only to that set's genes
(`tiedae.MaskedLayerAutoencoder`); the layers of `layer_sizes` follow it.
"""

import json
import os
import zipfile

import keras
import numpy as np

from tiedae._validation import check_layer_sizes
from tiedae.genesets import gene_set_adjacency, read_gmt
from tiedae.io.anndata import matrix_of
from tiedae.io.errors import DataError
from tiedae.layers.masked_autoencoder import MaskedLayerAutoencoder
from tiedae.preprocessing import DEFAULT_TARGET_SUM, CountPreprocessing
from tiedae.pretraining.stacked import StackedDenoisingAutoencoder

SC_STATE_NAME = "tiedae_sc.json"


class GeneSetStackedAutoencoder(StackedDenoisingAutoencoder):
    """A `StackedDenoisingAutoencoder` whose first layer is masked by gene sets.

    Layer 0 is greedily trained as a one-layer `MaskedLayerAutoencoder` with
    the `(genes, sets)` adjacency, so every unit sees only its set's genes; the
    other layers as usual. The masked-out kernel entries stay exactly zero, so
    the stacked `autoencoder_` (a dense tied autoencoder holding that kernel)
    encodes exactly as the masked layers did. End-to-end fine-tuning would let
    those entries move, so `finetune_epochs` must be 0.

    Args:
        adjacency: `(n_genes, n_sets)` 0/1 matrix (NumPy or `scipy.sparse`).
        layer_sizes: Widths of the layers after the gene-set layer (may be
            empty).
        **kwargs: Any other `StackedDenoisingAutoencoder` argument; per-layer
            lists have one entry for the gene-set layer first.
    """

    def __init__(self, adjacency, layer_sizes=(), **kwargs):
        if kwargs.get("finetune_epochs", 0):
            raise ValueError(
                "`finetune_epochs` must be 0 with gene sets: end-to-end fine-tuning of the "
                "stacked dense autoencoder would connect genes outside their sets."
            )
        self.adjacency = adjacency
        super().__init__([int(adjacency.shape[1])] + list(layer_sizes), **kwargs)

    @classmethod
    def load(cls, path):
        """Load a saved stack. It comes back as a plain `StackedDenoisingAutoencoder`:
        the saved config has no adjacency, and the zeros of the first kernel are
        all that inference needs."""
        return StackedDenoisingAutoencoder.load(path)

    def _layer_autoencoder(self, k, loss, seed, logits=False):
        if k > 0:
            return super()._layer_autoencoder(k, loss, seed, logits)
        return MaskedLayerAutoencoder(
            self.adjacency,
            activation=self._activations[0],
            output_activation=self._output_activation(0, loss, logits),
            kernel_initializer=self._initializer(seed),
            name="dae_0",
        )


class SingleCellAutoencoder:
    """What `fit` returns: the preprocessing, the genes and the trained stack.

    Attributes:
        stack: The fitted `StackedDenoisingAutoencoder`.
        preprocessing: The `CountPreprocessing` applied before the network
            (with its `target_sum` fixed).
        var_names: The genes, in the order of the network's inputs.
        layer: The `adata.layers` key the model was fitted on (`None`: `X`).
        set_names: With gene sets, the name of every first-layer unit.
    """

    def __init__(self, stack, preprocessing, var_names, layer=None, set_names=None):
        self.stack = stack
        self.preprocessing = preprocessing
        self.var_names = [str(v) for v in var_names]
        self.layer = layer
        self.set_names = None if set_names is None else [str(s) for s in set_names]

    @property
    def code_size(self):
        return int(self.stack.layer_sizes[-1])

    def loadings(self):
        """The first-layer kernel, `(genes, units)`, as a NumPy array."""
        return np.asarray(keras.ops.convert_to_numpy(self.stack.autoencoder_.kernels[0]))

    def matrix(self, adata, layer="fitted"):
        """The (preprocessed) input matrix of `adata`, genes checked against the model's."""
        layer = self.layer if layer == "fitted" else layer
        names = [str(v) for v in adata.var_names]
        if names != self.var_names:
            missing = sorted(set(self.var_names) - set(names))
            raise ValueError(
                f"the AnnData object's genes differ from the model's ({len(names)} vs "
                f"{len(self.var_names)} genes, {len(missing)} of the model's missing, e.g. "
                f"{missing[:5]}); subset and order them as at fitting: adata[:, model.var_names]."
            )
        return self.preprocessing(matrix_of(adata, layer))

    def transform(self, adata, layer="fitted", batch_size=None):
        """The embedding of the cells of `adata`, `(cells, code_size)`."""
        return self.stack.transform(self.matrix(adata, layer), batch_size=batch_size)

    def _state(self):
        return {
            "preprocessing": self.preprocessing.to_dict(),
            "var_names": self.var_names,
            "layer": self.layer,
            "set_names": self.set_names,
        }

    def save(self, path):
        """Save to a `.keras` file (the stack, plus this object's settings as JSON)."""
        path = os.fspath(path)
        self.stack.save(path)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(SC_STATE_NAME, json.dumps(self._state()))

    @classmethod
    def load(cls, path):
        """Load an object written by `save`. The stack loads as a plain
        `StackedDenoisingAutoencoder` (enough to embed; the gene-set mask is
        implied by the zeros of the first kernel)."""
        path = os.fspath(path)
        with zipfile.ZipFile(path) as archive:
            if SC_STATE_NAME not in archive.namelist():
                raise ValueError(f"{path} was not written by SingleCellAutoencoder.save.")
            state = json.loads(archive.read(SC_STATE_NAME))
        return cls(
            StackedDenoisingAutoencoder.load(path),
            CountPreprocessing.from_dict(state["preprocessing"]),
            state["var_names"],
            layer=state["layer"],
            set_names=state["set_names"],
        )


def _check_anndata(adata, function):
    """Raise `DataError` (a `ValueError`) unless `adata` is an `anndata.AnnData`."""
    try:
        from anndata import AnnData
    except ImportError:  # then `adata` cannot be one
        AnnData = None
    if AnnData is None or not isinstance(adata, AnnData):
        kind = f"{type(adata).__module__}.{type(adata).__qualname__}"
        raise DataError(
            f"tiedae.sc.{function} expects an AnnData object (anndata.AnnData, cells x genes); "
            f"received {kind}. Wrap a matrix as anndata.AnnData(X), or use "
            "tiedae.StackedDenoisingAutoencoder or tiedae.TiedAutoencoderTransformer "
            "on the matrix itself."
        )


def _layer_sizes(layer_sizes, gene_sets):
    """`layer_sizes` as a list of positive ints (a bare int is one layer, as in
    `StackedDenoisingAutoencoder`); with gene sets it may be empty."""
    if gene_sets is not None and not isinstance(layer_sizes, (str, bytes)):
        try:
            if len(layer_sizes) == 0:
                return []
        except TypeError:
            pass  # an int, or not a sequence: checked below
    return check_layer_sizes(layer_sizes)


def _keys(key_added):
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"`key_added` must be a non-empty string; received {key_added!r}.")
    base = key_added[2:] if key_added.startswith("X_") and len(key_added) > 2 else key_added
    return key_added, f"{base}_loadings", base


def _gene_set_adjacency(gene_sets, var_names, min_genes, case_sensitive):
    if isinstance(gene_sets, (str, os.PathLike)):
        gene_sets = read_gmt(gene_sets)
    return gene_set_adjacency(
        gene_sets, var_names, min_genes=min_genes, case_sensitive=case_sensitive, on_unknown="warn"
    )


def _uns_value(value):
    """A value anndata can write: ragged lists become dicts, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _uns_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_uns_value(v) for v in value]
        if any(isinstance(v, (dict, list)) for v in items):
            return {str(i): v for i, v in enumerate(items)}
        return items
    return value


def fit(
    adata,
    layer_sizes=(256, 64),
    *,
    layer=None,
    normalize=False,
    log1p=False,
    target_sum=DEFAULT_TARGET_SUM,
    gene_sets=None,
    min_genes=5,
    case_sensitive=True,
    key_added="X_tiedae",
    **kwargs,
):
    """Pretrain a stacked denoising autoencoder on `adata` and write the results into it.

    Args:
        adata: An `anndata.AnnData` (in memory, or backed: its `X` is then
            streamed from disk).
        layer_sizes: Encoder widths (after the gene-set layer, if any), a list
            or tuple of positive ints (a bare int is one layer); the last is
            the embedding's dimension. May be empty with `gene_sets` (the
            gene-set layer is then the embedding).
        layer: Key of `adata.layers` to use instead of `adata.X` (e.g. "counts").
        normalize: Scale every cell to `target_sum` counts first (off by default).
        log1p: Then take `log(1 + x)` (off by default).
        target_sum: Counts per cell after `normalize`; `None` for the median.
        gene_sets: Optional GMT file path, list of `tiedae.GeneSet` or mapping
            from set name to genes: the first layer then has one unit per set,
            connected only to the set's genes (matched to `adata.var_names`).
        min_genes: With `gene_sets`, sets with fewer genes in the data are left
            out (a warning lists them).
        case_sensitive: With `gene_sets`, whether gene names must match in case.
        key_added: `adata.obsm` key of the embedding ("X_tiedae"). The loadings
            go to `adata.varm["<name>_loadings"]` and the parameters to
            `adata.uns["<name>"]`, where `<name>` is `key_added` without "X_".
        **kwargs: Arguments of `StackedDenoisingAutoencoder` (activation,
            corruption, corruption_level, loss, epochs, batch_size, seed,
            verbose, data_parallel, ...).

    Returns:
        The fitted `SingleCellAutoencoder` (for `embed` on new cells or `save`).

    Writes:
        `adata.obsm[key_added]`: `(cells, layer_sizes[-1])` float32 embedding.
        `adata.varm["<name>_loadings"]`: `(genes, first width)` first-layer kernel.
        `adata.uns["<name>"]`: `params` (architecture, training and
        preprocessing settings), `losses` (per layer), `final_loss`, and
        `set_names` with gene sets.
    """
    _check_anndata(adata, "fit")
    layer_sizes = _layer_sizes(layer_sizes, gene_sets)
    _keys(key_added)  # fail before training on a bad key
    preprocessing = CountPreprocessing(normalize=normalize, log1p=log1p, target_sum=target_sum)
    x = matrix_of(adata, layer)
    preprocessing = preprocessing.resolve(x)
    x = preprocessing(x)
    var_names = [str(v) for v in adata.var_names]
    set_names = None
    if gene_sets is not None:
        adjacency, set_names, report = _gene_set_adjacency(
            gene_sets, var_names, min_genes, case_sensitive
        )
        stack = GeneSetStackedAutoencoder(adjacency, layer_sizes, **kwargs)
    else:
        report = None
        stack = StackedDenoisingAutoencoder(layer_sizes, **kwargs)
    stack.pretrain(x)
    model = SingleCellAutoencoder(stack, preprocessing, var_names, layer=layer, set_names=set_names)
    annotate(adata, model, stack.transform(x), key_added=key_added, gene_set_report=report)
    return model


def annotate(adata, model, codes, key_added="X_tiedae", gene_set_report=None):
    """Write a fitted model's results into `adata` (what `fit` does after training).

    Args:
        adata: The `AnnData` whose cells `codes` are (`n_obs` rows) and whose
            genes are the model's (`n_vars` = the first kernel's rows).
        model: A `SingleCellAutoencoder`.
        codes: The embedding, `(n_obs, code_size)`.
        key_added: As in `fit`.
        gene_set_report: Optional `GeneSetReport`, summarised in `uns`.
    """
    _check_anndata(adata, "annotate")
    obsm_key, varm_key, uns_key = _keys(key_added)
    stack = model.stack
    adata.obsm[obsm_key] = np.asarray(codes, dtype=np.float32)
    adata.varm[varm_key] = model.loadings()
    params = {
        **{k: v for k, v in stack.get_config().items() if k != "verbose"},
        "layer": model.layer,
        "preprocessing": model.preprocessing.to_dict(),
        "backend": keras.backend.backend(),
    }
    uns = {
        "params": params,
        "losses": list(getattr(stack, "losses_", [])),
        "final_loss": [
            float(h["loss"][-1]) if h.get("loss") else float("nan")
            for h in getattr(stack, "history_", [])
        ],
    }
    if model.set_names is not None:
        uns["set_names"] = list(model.set_names)
    if gene_set_report is not None:
        report = gene_set_report
        uns["gene_sets"] = {
            "n_sets": report.n_sets,
            "n_kept_sets": report.n_kept_sets,
            "n_connections": report.n_connections,
            "n_unknown_genes": report.n_unknown_genes,
        }
    adata.uns[uns_key] = _uns_value(uns)


def embed(adata, model, *, layer="fitted", key_added="X_tiedae", batch_size=None):
    """Encode the cells of `adata` with a fitted model into `adata.obsm[key_added]`.

    The model's preprocessing is applied first; `adata` must have the model's
    genes in the model's order (`adata[:, model.var_names]`).

    Returns:
        The embedding (also stored in `adata.obsm[key_added]`).
    """
    _check_anndata(adata, "embed")
    obsm_key, _, _ = _keys(key_added)
    codes = model.transform(adata, layer=layer, batch_size=batch_size)
    adata.obsm[obsm_key] = codes
    return codes


# Reference mapping (scQuery's job) under tiedae.sc names as well; tiedae.mapping imports
# this module only inside its functions, so there is no import cycle.
from tiedae.mapping import ReferenceModel, evaluate_mapping, fit_reference, map_query, retrieve  # noqa: E402, F401
