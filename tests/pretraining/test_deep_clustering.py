"""DEC's refinement: the target distribution, and training encoder and centres together."""

import keras
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from tests.conftest import np_soft_assignment, to_numpy
from tiedae.pretraining import ClusterRefinement, refine_clusters, target_distribution


def blobs(n=240, n_features=6, k=3, seed=1):
    x, y = make_blobs(n, n_features=n_features, centers=k, cluster_std=0.7,
                      center_box=(-8.0, 8.0), random_state=seed)
    return StandardScaler().fit_transform(x).astype("float32"), y


def make_encoder(n_in=6, code=3, weights=None):
    inputs = keras.Input((n_in,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    encoder = keras.Model(inputs, keras.layers.Dense(code)(hidden))
    if weights is not None:
        encoder.set_weights(weights)
    return encoder


def pca_encoder(x):
    """A small encoder started from the top principal components (the same on every
    backend, unlike a random initialisation), so the codes keep the blobs apart."""
    components = PCA(4, random_state=0).fit(x).components_.T.astype("float32")
    inputs = keras.Input((x.shape[1],))
    hidden = keras.layers.Dense(
        4, activation="tanh", kernel_initializer=keras.initializers.Constant(0.5 * components)
    )(inputs)
    code = keras.layers.Dense(
        3, kernel_initializer=keras.initializers.Constant(np.eye(4, 3, dtype="float32"))
    )(hidden)
    return keras.Model(inputs, code)


def true_centres(encoder, x, y, shift=0.3, seed=0):
    """The codes' class means, each moved a little: close to, but not, the answer."""
    codes = to_numpy(encoder(x))
    means = np.stack([codes[y == c].mean(axis=0) for c in np.unique(y)])
    noise = np.random.default_rng(seed).normal(size=means.shape)
    return (means + shift * np.std(codes) * noise).astype("float32")


# ----------------------------------------------------------- target_distribution


def test_target_distribution_matches_a_hand_computed_reference():
    q = np.array([[0.7, 0.2, 0.1],
                  [0.1, 0.8, 0.1],
                  [0.3, 0.3, 0.4],
                  [0.5, 0.25, 0.25]])
    f = q.sum(axis=0)  # soft cluster sizes: 1.6, 1.55, 0.85
    np.testing.assert_allclose(f, [1.6, 1.55, 0.85])
    # Row 0 by hand: q^2 / f = (0.49/1.6, 0.04/1.55, 0.01/0.85), then normalised.
    row0 = np.array([0.49 / 1.6, 0.04 / 1.55, 0.01 / 0.85])
    row0 /= row0.sum()
    p = target_distribution(q)
    assert p.shape == q.shape and p.dtype == np.float32
    np.testing.assert_allclose(p[0], row0, rtol=1e-6)
    weight = q**2 / f
    np.testing.assert_allclose(p, weight / weight.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_target_distribution_is_sharper_than_q(rng):
    q = rng.dirichlet(np.ones(4), size=50)
    p = target_distribution(q)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    # Balanced soft sizes here, so squaring wins: the most likely cluster gains.
    assert (p.max(axis=1) >= q.max(axis=1) - 1e-6).mean() > 0.9
    assert p.max(axis=1).mean() > q.max(axis=1).mean() + 0.05
    # With equal cluster sizes, the top cluster is kept and every row sharpens.
    balanced = np.array([[0.6, 0.4], [0.4, 0.6]])
    p = target_distribution(balanced)
    np.testing.assert_array_equal(p.argmax(axis=1), [0, 1])
    assert (p.max(axis=1) > balanced.max(axis=1)).all()


def test_target_distribution_divides_by_the_cluster_size():
    # Two rows assigned 50/50, but cluster 0 is large overall: p leans to cluster 1.
    q = np.array([[0.5, 0.5], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    p = target_distribution(q)
    assert p[0, 1] > p[0, 0]


# --------------------------------------------------------------- refine_clusters


def test_recovers_blobs_and_trains_encoder_and_centres():
    x, y = blobs()
    encoder = pca_encoder(x)
    centres = true_centres(encoder, x, y, shift=1.5)
    # The wrong centres alone misassign a fair share of the samples...
    assert adjusted_rand_score(y, np_soft_assignment(to_numpy(encoder(x)), centres).argmax(1)) < 0.9
    before = [to_numpy(w).copy() for w in encoder.trainable_weights]
    result = refine_clusters(encoder, x, centres, batch_size=32, max_iter=100,
                             update_interval=20, seed=0)
    assert isinstance(result, ClusterRefinement)
    assert result.labels.shape == (len(x),)
    # ...and the refinement recovers the blobs.
    assert adjusted_rand_score(y, result.labels) >= 0.95
    assert result.cluster_centers.shape == centres.shape
    assert not np.allclose(result.cluster_centers, centres)
    # The encoder passed in is trained in place (it is the model's encoder).
    after = [to_numpy(w) for w in encoder.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    # The model is encoder -> soft assignment with the refined centres, and the
    # labels are the argmax of q from the final weights.
    q = np_soft_assignment(to_numpy(encoder(x)), result.cluster_centers)
    np.testing.assert_allclose(to_numpy(result.model(x)), q, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.labels, q.argmax(axis=1))
    assert 0 < result.n_iter <= 100
    assert result.history[0] == {"step": 0, "changed": 1.0, "loss": None}
    assert all(np.isfinite(h["loss"]) and h["loss"] >= 0 for h in result.history[1:])


def test_max_iter_zero_only_assigns():
    x, y = blobs(n=90)
    encoder = make_encoder()
    centres = true_centres(encoder, x, y, shift=1.0)
    before = [to_numpy(w).copy() for w in encoder.weights]
    result = refine_clusters(encoder, x, centres, max_iter=0)
    assert result.n_iter == 0 and not result.converged
    assert len(result.history) == 1 and result.history[0]["loss"] is None
    q = np_soft_assignment(to_numpy(encoder(x)), centres)
    np.testing.assert_array_equal(result.labels, q.argmax(axis=1))
    np.testing.assert_array_equal(result.cluster_centers, centres)
    for a, b in zip(before, encoder.weights):
        np.testing.assert_array_equal(a, to_numpy(b))


@pytest.mark.parametrize("max_iter, update_interval, steps", [(7, 5, [0, 5, 7]), (4, 10, [0, 4])])
def test_n_iter_never_exceeds_max_iter(max_iter, update_interval, steps):
    x, y = blobs(n=60)
    encoder = make_encoder()
    # tol=0: never converged, so it runs to max_iter exactly (the last round is shorter).
    result = refine_clusters(encoder, x, true_centres(encoder, x, y, shift=1.0), batch_size=16,
                             max_iter=max_iter, update_interval=update_interval, tol=0.0)
    assert result.n_iter == max_iter and not result.converged
    assert [h["step"] for h in result.history] == steps
    assert result.history[0]["loss"] is None
    assert all(isinstance(h["loss"], float) for h in result.history[1:])


def test_converged_when_it_stops_by_tol():
    x, y = blobs(n=120)
    encoder = make_encoder()
    result = refine_clusters(encoder, x, true_centres(encoder, x, y, shift=0.05),
                             batch_size=32, max_iter=1000, update_interval=10, tol=0.05)
    assert result.converged
    assert result.n_iter < 1000 and result.n_iter % 10 == 0
    assert result.history[-1]["changed"] < 0.05
    assert all(h["changed"] >= 0.05 for h in result.history[1:-1])
    assert result.history[-1]["step"] == result.n_iter


def test_same_seed_same_result():
    x, y = blobs(n=120)
    weights = make_encoder().get_weights()
    first, second = make_encoder(weights=weights), make_encoder(weights=weights)
    centres = true_centres(first, x, y, shift=0.5)
    config = dict(batch_size=16, max_iter=30, update_interval=10, tol=0.0, seed=3)
    a = refine_clusters(first, x, centres, **config)
    b = refine_clusters(second, x, centres, **config)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.cluster_centers, b.cluster_centers)
    assert [h["changed"] for h in a.history] == [h["changed"] for h in b.history]
    for u, v in zip(first.weights, second.weights):
        np.testing.assert_array_equal(to_numpy(u), to_numpy(v))


def test_sparse_input_same_as_dense():
    import scipy.sparse as sp

    x, y = blobs(n=80)
    x[np.abs(x) < 0.5] = 0.0
    weights = make_encoder().get_weights()
    first, second = make_encoder(weights=weights), make_encoder(weights=weights)
    centres = true_centres(first, x, y, shift=0.5)
    config = dict(batch_size=16, max_iter=20, update_interval=10, tol=0.0, seed=1)
    dense = refine_clusters(first, x, centres, **config)
    sparse = refine_clusters(second, sp.csr_matrix(x), centres, **config)
    np.testing.assert_array_equal(sparse.labels, dense.labels)
    np.testing.assert_allclose(sparse.cluster_centers, dense.cluster_centers, atol=1e-6)


def test_verbose_prints_one_line_per_update(capsys):
    x, y = blobs(n=60)
    encoder = make_encoder()
    result = refine_clusters(encoder, x, true_centres(encoder, x, y), batch_size=16,
                             max_iter=10, update_interval=5, tol=0.0, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("DEC step")]
    assert len(lines) == len(result.history) == 3
    assert "KL" not in lines[0] and "KL" in lines[-1]


@pytest.mark.parametrize("change, message", [
    (dict(cluster_centers=np.zeros((3, 4), "float32")), r"shape \(n_clusters, 3\)"),
    (dict(cluster_centers=np.zeros(3, "float32")), r"shape \(n_clusters, 3\)"),
    (dict(cluster_centers=np.zeros((0, 3), "float32")), r"shape \(n_clusters, 3\)"),
    (dict(cluster_centers=np.array([[0, 0, 0], [np.nan, 1, 1]], "float32")), "NaN"),
    (dict(cluster_centers=np.array([[0, 0, 0], [np.inf, 1, 1]], "float32")), "infinite"),
    (dict(max_iter=-1), "max_iter"),
    (dict(max_iter=2.5), "max_iter"),
    (dict(tol=1.5), "tol"),
    (dict(tol=-0.1), "tol"),
    (dict(batch_size=0), "batch_size"),
    (dict(update_interval=0), "update_interval"),
    (dict(seed=-1), "seed"),
    (dict(verbose=2), "verbose"),
    (dict(x=np.zeros((10, 5), "float32")), "5 features"),
    (dict(x=np.full((10, 6), np.nan, "float32")), "NaN"),
    (dict(x=np.zeros(6, "float32")), "2-D"),
    (dict(encoder=keras.layers.Dense(3)), "keras.Model"),
    (dict(encoder=lambda x: x), "keras.Model"),
])
def test_bad_inputs(change, message):
    x, _ = blobs(n=30)
    args = dict(encoder=make_encoder(), x=x, cluster_centers=np.zeros((2, 3), "float32"))
    args.update(change)
    with pytest.raises(ValueError, match=message):
        refine_clusters(**args)
