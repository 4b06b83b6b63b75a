"""MaskedLayerAutoencoder: NumPy forward pass, masked weights stay zero, mask storage, errors."""

import json

import keras
import numpy as np
import pytest
import scipy.sparse

import tiedae
import tiedae.layers.masked_autoencoder as masked_module
from tests.conftest import to_numpy
from tiedae import MaskingNoise
from tiedae.layers.masked_autoencoder import MaskedLayerAutoencoder, SparseLayerAutoencoder

NP_ACTIVATIONS = {
    None: lambda x: x,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
}


def random_adjacency(rng, shape, density=0.4):
    a = (rng.random(shape) < density).astype(np.float32)
    a[0, 0] = 1.0  # never empty
    return a


def np_forward(layer, adjacencies, x, activation, output_activation):
    """Reference autoencoder: masked kernels, transposed in the decoder."""
    kernels = [to_numpy(w).astype(np.float64) for w in layer.kernels]
    for k, a in enumerate(adjacencies):
        kernels[k] = kernels[k] * a
    enc = [to_numpy(b).astype(np.float64) for b in layer.encoder_biases]
    dec = [to_numpy(b).astype(np.float64) for b in layer.decoder_biases]
    act, out = NP_ACTIVATIONS[activation], NP_ACTIVATIONS[output_activation]
    h = np.asarray(x, np.float64)
    for w, b in zip(kernels, enc):
        h = act(h @ w + b)
    code = h
    for k in reversed(range(len(kernels))):
        h = h @ kernels[k].T + dec[k]
        h = out(h) if k == 0 else act(h)
    return code, h


def build_model(layer, input_dim, noise=None):
    inputs = keras.Input(shape=(input_dim,))
    h = noise(inputs) if noise is not None else inputs
    return keras.Model(inputs, layer(h))


@pytest.mark.parametrize(
    "shapes, layer_sizes, sparse",
    [
        ([(12, 5)], None, False),  # one masked layer
        ([(12, 5)], [3], True),  # a mask, then a dense layer
        ([(12, 6), (6, 4)], [2], False),  # two chained masks, then a dense layer
    ],
)
def test_forward_matches_numpy_even_with_masked_weights_set(rng, shapes, layer_sizes, sparse):
    adjacencies = [random_adjacency(rng, s) for s in shapes]
    given = [scipy.sparse.csr_matrix(a) if sparse else a for a in adjacencies]
    layer = MaskedLayerAutoencoder(
        given if len(given) > 1 else given[0],
        layer_sizes=layer_sizes,
        activation="tanh",
        output_activation="sigmoid",
        bias_initializer="random_normal",  # so that a bias mix-up shows
    )
    x = rng.normal(size=(7, shapes[0][0])).astype(np.float32)
    layer(x)
    # Fill every kernel entry, masked ones included: the forward pass must still ignore them.
    for kernel in layer.kernels:
        kernel.assign(rng.normal(size=kernel.shape).astype(np.float32))
    code, reconstruction = np_forward(layer, adjacencies, x, "tanh", "sigmoid")
    np.testing.assert_allclose(to_numpy(layer.encode(x)), code, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer(x)), reconstruction, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.decode(layer.encode(x))), reconstruction, rtol=1e-5, atol=1e-5)
    assert layer.encoder_widths == [s[1] for s in shapes] + (layer_sizes or [])
    assert layer.code_size == code.shape[-1]


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
        lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
        # Muon mixes the entries of a 2-D kernel: only the re-zeroing constraint keeps them at 0.
        lambda: keras.optimizers.Muon(learning_rate=0.02),
    ],
    ids=["adamw", "sgd_momentum", "muon"],
)
def test_masked_weights_start_and_stay_exactly_zero_during_training(rng, optimizer):
    a0, a1 = random_adjacency(rng, (16, 8)), random_adjacency(rng, (8, 4), 0.5)
    layer = MaskedLayerAutoencoder(
        [a0, a1],
        layer_sizes=[3],
        activation="tanh",
        output_activation="linear",
        kernel_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=1e-3),
    )
    model = build_model(layer, 16, noise=MaskingNoise(0.2, seed=3))
    initial = [to_numpy(w).copy() for w in layer.kernels[:2]]
    for w, a in zip(initial, [a0, a1]):
        assert np.all(w[a == 0] == 0.0) and np.all(w[a == 1] != 0.0)

    x = rng.normal(size=(64, 16)).astype(np.float32)
    model.compile(optimizer=optimizer(), loss="mse")
    before = model.evaluate(x, x, verbose=0)
    model.fit(x, x, batch_size=8, epochs=10, verbose=0)  # 80 steps
    assert model.evaluate(x, x, verbose=0) < before

    for w0, w, a in zip(initial, layer.kernels[:2], [a0, a1]):
        w = to_numpy(w)
        np.testing.assert_array_equal(w[a == 0], 0.0)  # exactly zero, stored
        assert np.all(w[a == 1] != w0[a == 1])  # the connected weights did train
    # Separate, distinct biases.
    for enc, dec in zip(layer.encoder_biases, layer.decoder_biases):
        assert enc is not dec and enc.path != dec.path


def _regular_mask(inputs, units, per_unit):
    """Every unit sees `per_unit` consecutive inputs (cyclically): equal fans everywhere."""
    mask = np.zeros((inputs, units), np.float32)
    for j in range(units):
        mask[(np.arange(per_unit) + j * per_unit) % inputs, j] = 1.0
    return mask


@pytest.mark.parametrize(
    "initializer, expected_std",
    [
        # 2000 inputs, 400 units, 10 inputs per unit, so 2 units per input.
        ("glorot_uniform", np.sqrt(2.0 / (10 + 2))),
        ("he_normal", np.sqrt(2.0 / 10)),  # fan_in
        ("lecun_uniform", np.sqrt(1.0 / 10)),
    ],
)
def test_variance_scaling_counts_only_the_kept_connections(initializer, expected_std):
    mask = _regular_mask(2000, 400, 10)
    layer = MaskedLayerAutoencoder(mask, kernel_initializer=initializer)
    layer.build((None, 2000))
    kernel = to_numpy(layer.kernels[0])
    kept = kernel[mask == 1]
    np.testing.assert_array_equal(kernel[mask == 0], 0.0)
    # 4000 draws: the sample std is within a few percent of the kept-fan std.
    assert abs(np.std(kept) / expected_std - 1.0) < 0.06
    # The dense fans would give a std about 20x smaller (glorot: sqrt(2/2400)).
    assert np.std(kept) > 5 * np.sqrt(1.0 / 2400)


def test_a_full_mask_draws_what_the_plain_initializer_draws():
    full = np.ones((30, 8), np.float32)
    masked = MaskedLayerAutoencoder(full, kernel_initializer=keras.initializers.GlorotUniform(seed=4))
    masked.build((None, 30))
    reference = keras.initializers.GlorotUniform(seed=4)((30, 8))
    np.testing.assert_allclose(to_numpy(masked.kernels[0]), to_numpy(reference), rtol=1e-6)


def test_other_initializers_are_only_masked():
    mask = _regular_mask(50, 10, 5)
    init = keras.initializers.Constant(0.5)
    layer = MaskedLayerAutoencoder(mask, kernel_initializer=init)
    layer.build((None, 50))
    np.testing.assert_array_equal(to_numpy(layer.kernels[0]), 0.5 * mask)


def test_numpy_bool_and_every_sparse_format_give_the_same_mask(rng):
    a = random_adjacency(rng, (9, 7))
    coo = scipy.sparse.coo_matrix(a)
    i, j = np.argwhere(a == 0)[0]
    # A stored 0 is no connection.
    with_explicit_zero = scipy.sparse.coo_matrix(
        (np.r_[coo.data, 0.0], (np.r_[coo.row, i], np.r_[coo.col, j])), shape=a.shape
    )
    forms = [a, a.astype(bool), a.tolist(), scipy.sparse.csr_matrix(a), scipy.sparse.csc_array(a), with_explicit_zero]
    layers = [MaskedLayerAutoencoder(f) for f in forms]
    x = rng.normal(size=(3, 9)).astype(np.float32)
    for layer in layers:
        layer.build(x.shape)
        for kernel, reference in zip(layer.kernels, layers[0].kernels):
            kernel.assign(reference)
        np.testing.assert_array_equal(layer.get_adjacency().toarray(), a)
        np.testing.assert_array_equal(to_numpy(layer.connection_mask()), a)
        np.testing.assert_array_equal(to_numpy(layer(x)), to_numpy(layers[0](x)))
        assert layer.get_config()["adjacency"] == layers[0].get_config()["adjacency"]


def test_mask_is_a_packed_weight_and_config_stays_small():
    # 20,000 genes x 1,000 sets at 2% density: 400,000 connections.
    big = scipy.sparse.random(20_000, 1_000, density=0.02, format="csr", rng=0, data_rvs=np.ones)
    layer = MaskedLayerAutoencoder(big, layer_sizes=[32])
    config = layer.get_config()
    assert len(json.dumps(config)) < 10_000
    assert config["adjacency"][0]["shape"] == [20_000, 1_000]
    assert config["adjacency"][0]["nnz"] == big.nnz == 400_000

    small = MaskedLayerAutoencoder(np.eye(11, 5), layer_sizes=[2])
    small.build((None, 11))
    # One uint8 weight, 8 entries per byte: ceil(55 / 8) = 7 bytes.
    (bits,) = small.non_trainable_weights
    assert bits.dtype == "uint8" and tuple(bits.shape) == (7,)
    unpacked = np.unpackbits(to_numpy(bits), bitorder="little")[:55].reshape(11, 5)
    np.testing.assert_array_equal(unpacked, np.eye(11, 5))


def test_parameter_counts_one_kernel_per_layer_separate_biases():
    a0 = np.ones((20, 10))
    a1 = np.eye(10, 6)
    layer = MaskedLayerAutoencoder([a0, a1], layer_sizes=[4])
    layer.build((None, 20))
    kernels = 20 * 10 + 10 * 6 + 6 * 4
    biases = (10 + 6 + 4) + (20 + 10 + 6)  # encoder + decoder
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == kernels + biases
    assert len(layer.trainable_weights) == 3 + 3 + 3
    assert [tuple(w.shape) for w in layer.kernels] == [(20, 10), (10, 6), (6, 4)]
    assert [tuple(b.shape) for b in layer.decoder_biases] == [(20,), (10,), (6,)]
    # The masks: ceil(200 / 8) + ceil(60 / 8) bytes, not trainable.
    assert layer.count_params() == trainable + 25 + 8
    no_bias = MaskedLayerAutoencoder(a0, use_bias=False)
    no_bias.build((None, 20))
    assert [w.path.split("/")[-1] for w in no_bias.trainable_weights] == ["kernel_0"]


def test_save_and_load_give_identical_outputs_and_mask(rng, tmp_path):
    a0, a1 = random_adjacency(rng, (10, 6)), random_adjacency(rng, (6, 4), 0.6)
    layer = MaskedLayerAutoencoder(
        [scipy.sparse.csr_matrix(a0), a1], layer_sizes=[2], activation="relu",
        output_activation="sigmoid", bias_initializer="random_normal", name="masked",
    )  # fmt: skip
    model = build_model(layer, 10, noise=MaskingNoise(0.1, seed=0))
    x = rng.random((5, 10)).astype(np.float32)
    expected = to_numpy(model(x))

    path = tmp_path / "masked.keras"
    model.save(path)
    # As in a new process: no mask is known, it must come from the weights file.
    masked_module._KNOWN_MASKS.clear()
    loaded = keras.models.load_model(path)
    restored = loaded.get_layer("masked")
    assert restored is not layer
    np.testing.assert_array_equal(to_numpy(loaded(x)), expected)
    np.testing.assert_array_equal(restored.get_adjacency(0).toarray(), a0)
    np.testing.assert_array_equal(restored.get_adjacency(1).toarray(), a1)
    for w_loaded, w in zip(restored.kernels, layer.kernels):
        np.testing.assert_array_equal(to_numpy(w_loaded), to_numpy(w))
    assert restored.get_config() == layer.get_config()
    # The reloaded layer keeps training with its mask.
    loaded.compile(optimizer="sgd", loss="mse")
    loaded.fit(x, x, epochs=1, verbose=0)
    np.testing.assert_array_equal(to_numpy(restored.kernels[0])[a0 == 0], 0.0)


def test_config_round_trips_every_argument():
    layer = MaskedLayerAutoencoder(
        np.eye(6, 3),
        layer_sizes=[2],
        activation="relu",
        output_activation="sigmoid",
        use_bias=False,
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=1e-4),
        bias_regularizer=keras.regularizers.L2(1e-2),
        activity_regularizer=keras.regularizers.L1(1e-5),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        bias_constraint=keras.constraints.NonNeg(),
        dropout=0.25,
        l2_normalize=True,
        name="full_masked",
    )
    config = layer.get_config()
    clone = MaskedLayerAutoencoder.from_config(config)
    assert clone.get_config() == config
    assert clone.layer_sizes == [2] and clone.adjacency_shapes == [(6, 3)]
    assert clone.output_activation is keras.activations.sigmoid
    assert clone.use_bias is False and clone.dropout == 0.25 and clone.l2_normalize is True
    assert isinstance(clone.kernel_constraint, keras.constraints.MaxNorm)
    assert clone.kernel_regularizer.l1 == pytest.approx(1e-3)
    assert clone.name == "full_masked"
    assert SparseLayerAutoencoder is MaskedLayerAutoencoder
    assert tiedae.MaskedLayerAutoencoder is tiedae.SparseLayerAutoencoder is MaskedLayerAutoencoder


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, after the refused load
def test_from_config_in_process_has_the_mask_and_elsewhere_waits_for_weights(rng, tmp_path):
    a = random_adjacency(rng, (8, 5))
    layer = MaskedLayerAutoencoder(a, bias_initializer="random_normal")
    model = build_model(layer, 8)
    x = rng.normal(size=(4, 8)).astype(np.float32)

    clone = keras.models.clone_model(model)  # from_config in this process
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(model(x)))

    masked_module._KNOWN_MASKS.clear()  # as in another process
    orphan = keras.models.clone_model(model)
    with pytest.raises(ValueError, match="mask comes with the weights"):
        orphan(x)
    orphan.set_weights(model.get_weights())
    np.testing.assert_array_equal(to_numpy(orphan(x)), to_numpy(model(x)))

    # Weights whose mask is not the one the config names are refused.
    config = model.get_config()
    config["layers"][1]["config"]["adjacency"][0]["sha256"] = "0" * 64
    stranger = keras.Model.from_config(config)
    weights_path = tmp_path / "masked.weights.h5"
    model.save_weights(weights_path)
    with pytest.raises(ValueError, match="not the one recorded"):
        stranger.load_weights(weights_path)


def test_sub_models_share_variables_and_invert_each_other(rng):
    layer = MaskedLayerAutoencoder(random_adjacency(rng, (9, 4)), layer_sizes=[2], activation="tanh")
    x = rng.normal(size=(6, 9)).astype(np.float32)
    layer(x)
    encoder, decoder = layer.encoder_model(), layer.decoder_model()
    ids = {id(v) for v in layer.weights}
    assert {id(v) for v in encoder.weights} == ids == {id(v) for v in decoder.weights}
    codes = encoder(x)
    assert tuple(codes.shape) == (6, 2)
    # Plain lists and float64 arrays are accepted by encode/decode.
    np.testing.assert_allclose(to_numpy(layer.encode(x.astype(np.float64).tolist())), to_numpy(codes), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(layer.decode(to_numpy(codes).tolist())), to_numpy(decoder(codes)), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(decoder(codes)), to_numpy(layer(x)), rtol=1e-6, atol=1e-6)


def test_l2_normalize_and_dropout(rng):
    x = rng.normal(size=(5, 7)).astype(np.float32)
    normalized = MaskedLayerAutoencoder(random_adjacency(rng, (7, 4)), l2_normalize=True)
    normalized(x)
    np.testing.assert_allclose(np.linalg.norm(to_numpy(normalized.encode(x)), axis=-1), 1.0, rtol=1e-5)
    dropped = MaskedLayerAutoencoder(random_adjacency(rng, (7, 4)), dropout=0.5)
    dropped(x)
    # A single layer: the code is never dropped, the decoder input is.
    np.testing.assert_array_equal(to_numpy(dropped.encode(x, training=True)), to_numpy(dropped.encode(x)))
    assert not np.allclose(to_numpy(dropped(x, training=True)), to_numpy(dropped(x)))


def test_clear_errors_for_bad_adjacencies():
    with pytest.raises(ValueError, match=r"`adjacency` has shape \(10, 4\).*received input shape \(None, 12\)"):
        build_model(MaskedLayerAutoencoder(np.ones((10, 4))), 12)
    with pytest.raises(ValueError, match="empty list"):
        MaskedLayerAutoencoder([])
    with pytest.raises(ValueError, match=r"`adjacency` must contain only 0 and 1.*0\.5"):
        MaskedLayerAutoencoder(np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match=r"`adjacency\[1\]` must contain only 0 and 1.*2"):
        MaskedLayerAutoencoder([np.ones((3, 2)), scipy.sparse.csr_matrix(np.array([[2.0], [1.0]]))])
    with pytest.raises(ValueError, match="only 0 and 1"):
        MaskedLayerAutoencoder(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        # Duplicate sparse entries add up to 2.
        MaskedLayerAutoencoder(scipy.sparse.coo_matrix(([1.0, 1.0], ([0, 0], [1, 1])), shape=(2, 2)))
    with pytest.raises(ValueError, match=r"`adjacency\[1\]` has shape \(5, 2\).*`adjacency\[0\]` \(shape \(3, 4\)\) produces 4"):
        MaskedLayerAutoencoder([np.ones((3, 4)), np.ones((5, 2))])
    with pytest.raises(ValueError, match="no non-zero entry"):
        MaskedLayerAutoencoder(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        MaskedLayerAutoencoder(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="layer_sizes"):
        MaskedLayerAutoencoder(np.ones((3, 2)), layer_sizes=[0])
    gene_sets = tiedae.gene_set_adjacency({"s": ["a", "b"]}, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"pass its `\.adjacency`"):
        MaskedLayerAutoencoder(gene_sets)
    layer = MaskedLayerAutoencoder(gene_sets.adjacency)
    build_model(layer, 3)
    np.testing.assert_array_equal(to_numpy(layer.connection_mask()), [[1], [1], [0]])
