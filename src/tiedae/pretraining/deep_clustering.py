"""Deep Embedded Clustering's refinement of an encoder and its cluster centres.

DEC (Xie, Girshick and Farhadi, 2016) starts from a pretrained encoder and
k-means centres in its code space, then trains encoder and centres together:
the soft assignments `q` (`SoftClusterAssignment`) are pulled towards a
sharpened copy of themselves, `p` (`target_distribution`), by minimising
KL(p || q). `p` is recomputed from the whole data every `update_interval`
steps and held fixed in between; training stops when fewer than `tol` of the
samples change cluster between two updates, or after `max_iter` steps.
"""

import dataclasses
import numbers

import keras
import numpy as np

from tiedae._validation import check_positive_int, check_rate, check_seed
from tiedae.layers.soft_cluster_assignment import SoftClusterAssignment
from tiedae.pretraining.data import SparseBatches, check_matrix, is_sparse, map_in_batches


def target_distribution(q):
    """DEC's auxiliary target: `p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')`.

    `f_j = sum_i q_ij` is the soft size of cluster `j`. Squaring sharpens
    confident assignments; dividing by `f_j` keeps large clusters from
    swallowing small ones.

    Args:
        q: Array `(n_samples, n_clusters)` of soft assignments (rows sum to 1).

    Returns:
        A float32 array of the same shape whose rows sum to 1.
    """
    q = np.asarray(q, dtype=np.float64)
    weight = q**2 / q.sum(axis=0)
    return (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclasses.dataclass
class ClusterRefinement:
    """What `refine_clusters` returns.

    Attributes:
        model: `keras.Model` from input to soft assignments; it shares the
            encoder's variables, and its last layer (`SoftClusterAssignment`)
            holds the refined centres.
        labels: Cluster of every sample (argmax of `q`) at the last update.
        n_iter: Training steps taken.
        history: One dict per target update: `step`, `changed` (fraction of
            samples that changed cluster since the previous update) and `loss`
            (mean KL(p || q) over the steps since the previous update; `None`
            at the first update).
        converged: Whether training stopped because fewer than `tol` of the
            samples changed cluster.
    """

    model: keras.Model
    labels: np.ndarray
    n_iter: int
    history: list
    converged: bool

    @property
    def cluster_centers(self):
        return keras.ops.convert_to_numpy(self.model.layers[-1].clusters)


def check_refinement_params(batch_size, update_interval, max_iter, tol):
    """Validate `refine_clusters`'s schedule; return them as `(int, int, int, float)`."""
    batch_size = check_positive_int(batch_size, "batch_size")
    update_interval = check_positive_int(update_interval, "update_interval")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"`max_iter` must be a non-negative integer; received {max_iter!r}.")
    tol = check_rate(tol, "tol", meaning="DEC stops when fewer than this fraction of the samples "
                     "change cluster between two target updates")
    return batch_size, update_interval, int(max_iter), tol


def refine_clusters(
    encoder,
    x,
    cluster_centers,
    alpha=1.0,
    optimizer=None,
    batch_size=256,
    max_iter=20000,
    update_interval=140,
    tol=1e-3,
    seed=None,
    verbose=0,
):
    """Refine `encoder` and `cluster_centers` with DEC's self-training.

    Args:
        encoder: `keras.Model` from one input to a 2-D code; its variables are
            trained in place. Every trainable variable should feed the code
            (e.g. `sda.to_model(keras.layers.Identity())`, a copy of a stack's
            encoder, rather than `sda.encoder()`, whose layer also holds the
            decoder biases).
        x: 2-D array (or scipy sparse matrix) with the encoder's input width.
        cluster_centers: Array `(n_clusters, code_dim)`, e.g. k-means centres of
            `encoder`'s codes of `x`.
        alpha: Degrees of freedom of the Student's t kernel.
        optimizer: A Keras optimizer; default SGD with learning rate 0.01 and
            momentum 0.9 (DEC's).
        batch_size: Samples per step.
        max_iter: Maximum number of training steps (0: only assign).
        update_interval: Steps between two updates of the target distribution.
        tol: Stop when fewer than this fraction of the samples change cluster
            between two updates.
        seed: Optional non-negative integer for the order of the samples.
        verbose: 0 (silent) or 1 (one line per target update).

    Returns:
        A `ClusterRefinement`.

    Example:

    >>> encoder = sda.to_model(keras.layers.Identity())  # a copy of the encoder
    >>> centres = KMeans(10, n_init=20).fit(encoder.predict(x)).cluster_centers_
    >>> result = refine_clusters(encoder, x, centres)
    >>> result.labels, result.cluster_centers
    """
    try:
        single_input = isinstance(encoder, keras.Model) and len(encoder.inputs) == 1
    except (AttributeError, ValueError):  # e.g. a Sequential model that is not built yet
        single_input = False
    if not single_input:
        raise ValueError(
            "`encoder` must be a functional `keras.Model` with one input (e.g. "
            "`sda.to_model(keras.layers.Identity())`, a copy of a stack's encoder); received "
            f"{type(encoder).__name__}."
        )
    input_dim = encoder.inputs[0].shape[-1]
    x = check_matrix(x, "x", n_features=input_dim)
    centers = np.asarray(cluster_centers, dtype=np.float32)
    code_dim = encoder.outputs[0].shape[-1]
    if centers.ndim != 2 or centers.shape[1] != code_dim or len(centers) < 1:
        raise ValueError(
            f"`cluster_centers` must have shape (n_clusters, {code_dim}) to match the "
            f"encoder's code; received shape {centers.shape}."
        )
    if not np.all(np.isfinite(centers)):
        raise ValueError("`cluster_centers` contains NaN or infinite values.")
    batch_size, update_interval, max_iter, tol = check_refinement_params(
        batch_size, update_interval, max_iter, tol
    )
    if verbose not in (0, 1):
        raise ValueError(f"`verbose` must be 0 or 1; received {verbose!r}.")
    rng = np.random.default_rng(check_seed(seed))

    inputs = keras.Input(shape=(input_dim,), name="input")
    assignment = SoftClusterAssignment(
        len(centers), alpha=alpha,
        clusters_initializer=keras.initializers.Constant(centers), name="clustering",
    )
    model = keras.Model(inputs, assignment(encoder(inputs)), name="deep_embedded_clustering")
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=keras.losses.KLDivergence(),
    )

    n = x.shape[0]
    # Every round trains on `update_interval` full batches (wrapping around a
    # shuffled order), so the compiled step sees one batch shape only.
    batch_size = min(batch_size, n)
    order = rng.permutation(n)
    position, step, labels, history, converged = 0, 0, None, [], False
    loss = None
    while True:
        q = map_in_batches(model, x, max(batch_size, 4096))
        new_labels = q.argmax(axis=1)
        changed = 1.0 if labels is None else float(np.mean(new_labels != labels))
        labels = new_labels
        history.append({"step": step, "changed": changed, "loss": loss})
        if verbose:
            print(f"DEC step {step}: {changed:.2%} of the samples changed cluster"
                  + ("" if loss is None else f", KL {loss:.5f}"), flush=True)
        if step > 0 and changed < tol:
            converged = True
            break
        steps = min(update_interval, max_iter - step)
        if steps <= 0:
            break
        take = np.arange(position, position + steps * batch_size) % n
        position = (position + steps * batch_size) % n
        rows = order[take]
        p = target_distribution(q)
        if is_sparse(x):  # densified one batch at a time, not the whole round
            data = {"x": SparseBatches(x[rows], batch_size, shuffle=False, y=p[rows])}
        else:
            data = {"x": x[rows], "y": p[rows], "batch_size": batch_size}
        fitted = model.fit(**data, epochs=1, shuffle=False, verbose=0)
        loss = float(fitted.history["loss"][-1])
        step += steps
    return ClusterRefinement(model, labels, step, history, converged)
