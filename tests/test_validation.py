"""Bad arguments raise a ValueError that names the argument."""

import keras
import numpy as np
import pytest

from tiedae import (
    AdditiveGaussianNoise,
    DenseLayerAutoencoder,
    DenseTranspose,
    MaskingNoise,
    SaltAndPepperNoise,
    TiedDecoder,
    TiedEncoder,
)
from tiedae._validation import (
    check_last_axis,
    check_layer_sizes,
    check_non_negative,
    check_rate,
    check_seed,
)
from tiedae.corruption import get_corruption


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """conftest's reset minus its full garbage collection (~0.5 s a test).

    These tests build almost nothing, so the collection would dominate their time.
    """
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)


@pytest.mark.parametrize(
    "layer_sizes, message",
    [
        ([], "`layer_sizes`.*empty"),
        ((), "`layer_sizes`.*empty"),
        ([10, 0], "`layer_sizes`.*positive.*bad entry: 0"),
        ([10, -3], "`layer_sizes`.*bad entry: -3"),
        (0, "`layer_sizes`.*bad entry: 0"),
        ([10, 2.5], "`layer_sizes`.*bad entry: 2.5"),
        ([10.0], "`layer_sizes`.*bad entry: 10.0"),
        ([True, 3], "`layer_sizes`.*bad entry: True"),
        (["8"], "`layer_sizes`.*bad entry: '8'"),
        ("84", "`layer_sizes`"),
        (None, "`layer_sizes`.*received None"),
    ],
)
def test_bad_layer_sizes(layer_sizes, message):
    with pytest.raises(ValueError, match=message):
        DenseLayerAutoencoder(layer_sizes)


def test_good_layer_sizes_are_normalised():
    assert DenseLayerAutoencoder(5).layer_sizes == [5]
    assert DenseLayerAutoencoder((np.int64(6), 3)).layer_sizes == [6, 3]
    assert all(type(s) is int for s in check_layer_sizes(np.array([4, 2])))


# Each test below loops over its bad values rather than being parametrized:
# every pytest case costs a Keras session reset, and these checks are instant.
BAD_RATES = [1.0, 1.5, 2, -0.01, float("nan"), "0.1", None, True]


def test_bad_dropout():
    for rate in BAD_RATES:
        with pytest.raises(ValueError, match="`dropout`"):
            DenseLayerAutoencoder([4], dropout=rate)


@pytest.mark.parametrize("cls", [MaskingNoise, SaltAndPepperNoise])
def test_bad_noise_rate(cls):
    for rate in BAD_RATES:
        with pytest.raises(ValueError, match="`rate`"):
            cls(rate)


def test_bad_stddev():
    for stddev in [-0.1, float("nan"), "1", None, False]:
        with pytest.raises(ValueError, match="`stddev`"):
            AdditiveGaussianNoise(stddev)


@pytest.mark.parametrize("cls", [MaskingNoise, SaltAndPepperNoise, AdditiveGaussianNoise])
def test_bad_seed(cls):
    for seed in [-1, 1.5, "7", True]:
        with pytest.raises(ValueError, match="`seed`"):
            cls(0.1, seed=seed)


def test_zero_and_just_below_one_are_valid_rates():
    assert MaskingNoise(0.0).rate == 0.0
    assert SaltAndPepperNoise(0.999).rate == 0.999
    assert DenseLayerAutoencoder([3], dropout=0).dropout == 0.0
    assert AdditiveGaussianNoise(0).stddev == 0.0
    assert MaskingNoise(0.1, seed=np.int64(3)).seed == 3


def test_salt_and_pepper_low_not_below_high():
    with pytest.raises(ValueError, match="`low` must be a number"):
        SaltAndPepperNoise(0.1, low="min")
    with pytest.raises(ValueError, match="`high` must be a number"):
        SaltAndPepperNoise(0.1, high=None)
    with pytest.raises(ValueError, match="`low`.*`high`"):
        SaltAndPepperNoise(0.1, low=1.0, high=1.0)
    with pytest.raises(ValueError, match="`low`.*`high`"):
        SaltAndPepperNoise(0.1, low=2.0, high=-1.0)


def test_get_corruption_bad_kind_and_level():
    with pytest.raises(ValueError, match="`kind`.*'dropout'"):
        get_corruption("dropout", 0.1)
    with pytest.raises(ValueError, match="`kind`"):
        get_corruption(["masking"], 0.1)
    with pytest.raises(ValueError, match="`level`"):
        get_corruption("masking", 1.0)
    with pytest.raises(ValueError, match="`level`"):
        get_corruption("gaussian", -1.0)
    with pytest.raises(ValueError, match="`seed`"):
        get_corruption("masking", 0.0, seed=-2)


@pytest.fixture
def built_autoencoder():
    ae = DenseLayerAutoencoder([6, 3])
    ae.build((None, 10))
    return ae


def test_call_with_wrong_last_axis(built_autoencoder):
    x = np.zeros((2, 11), "float32")
    with pytest.raises(ValueError, match=r"10.*11|axis -1"):
        built_autoencoder(x)
    with pytest.raises(ValueError, match=r"10.*11|axis -1"):
        built_autoencoder(keras.Input((11,)))


def test_encode_with_wrong_last_axis(built_autoencoder):
    with pytest.raises(ValueError, match=r"input.*10 features.*\(2, 11\)"):
        built_autoencoder.encode(np.zeros((2, 11), "float32"))


def test_decode_with_wrong_last_axis(built_autoencoder):
    with pytest.raises(ValueError, match=r"code.*3 features.*\(2, 4\)"):
        built_autoencoder.decode(np.zeros((2, 4), "float32"))


def test_rank_one_input_rejected(built_autoencoder):
    with pytest.raises(ValueError, match="rank"):
        built_autoencoder.encode(np.zeros((10,), "float32"))
    with pytest.raises(ValueError):
        DenseLayerAutoencoder([3])(np.zeros((10,), "float32"))


def test_unknown_feature_count_rejected():
    with pytest.raises(ValueError, match="last axis"):
        DenseLayerAutoencoder([3]).build((None, None))


def test_methods_before_build_say_so():
    ae = DenseLayerAutoencoder([3])
    for method, args in (("encode", (np.zeros((1, 4), "float32"),)), ("decode", (np.zeros((1, 3), "float32"),)),
                         ("encoder_model", ()), ("decoder_model", ())):
        with pytest.raises(ValueError, match=f"not built.*`{method}\\(\\)`"):
            getattr(ae, method)(*args)


def test_tied_decoder_view_needs_a_built_autoencoder():
    with pytest.raises(ValueError, match="not built"):
        TiedDecoder(DenseLayerAutoencoder([3]))(keras.Input((3,)))
    # The encoder view may build it: its input shape says everything.
    ae = DenseLayerAutoencoder([3])
    TiedEncoder(ae)(keras.Input((5,)))
    assert ae.built and ae.input_dim == 5


@pytest.mark.parametrize(
    "not_dense",
    [lambda: keras.layers.Conv1D(3, 2), lambda: DenseLayerAutoencoder([3]), lambda: "dense", lambda: None],
)
def test_dense_transpose_needs_a_dense_layer(not_dense):
    with pytest.raises(ValueError, match="`dense` must be a `keras.layers.Dense`"):
        DenseTranspose(not_dense())


def test_dense_transpose_needs_a_built_dense():
    dense = keras.layers.Dense(4)
    with pytest.raises(ValueError, match="not built"):
        DenseTranspose(dense)(np.zeros((2, 4), "float32"))


def test_dense_transpose_wrong_last_axis():
    dense = keras.layers.Dense(4)
    dense.build((None, 6))
    decoder = DenseTranspose(dense)
    with pytest.raises(ValueError, match=r"4.*5|axis -1"):
        decoder(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="4 features"):
        decoder.build((None, 5))


def test_validation_helpers_name_their_argument():
    with pytest.raises(ValueError, match="`corruption_level`"):
        check_rate(1.2, "corruption_level")
    with pytest.raises(ValueError, match="`sizes`"):
        check_layer_sizes([], "sizes")
    with pytest.raises(ValueError, match="`scale`"):
        check_non_negative(-1, "scale")
    with pytest.raises(ValueError, match="`random_state`"):
        check_seed(-1, "random_state")
    with pytest.raises(ValueError, match="'enc'.*7 features.*\\(None, 8\\)"):
        check_last_axis((None, 8), 7, "enc")
    check_last_axis((None, None), 7, "enc")  # unknown at trace time: not an error
    assert check_rate(np.float32(0.5)) == 0.5


def test_last_axis_messages_read_well(built_autoencoder):
    with pytest.raises(ValueError, match="built for a code whose last axis has 3 features"):
        built_autoencoder.decode(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="built for an input whose last axis has 10 features"):
        built_autoencoder.encode(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="expects a code of rank >= 2"):
        built_autoencoder.decode(np.zeros((3,), "float32"))
