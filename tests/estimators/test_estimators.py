"""The scikit-learn estimators in use: pipelines, grid search, labels, unlabeled rows."""

import functools
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import get_tags

from tests.conftest import to_numpy
from tiedae.estimators import (
    DeepEmbeddedClustering,
    PretrainedMLPClassifier,
    TiedAutoencoderTransformer,
)
from tiedae.pretraining import StackedDenoisingAutoencoder, pretrained_layers

TINY = dict(pretrain_epochs=1, batch_size=64, random_state=0)
TINY_CLF = dict(pretrain_epochs=1, epochs=2, batch_size=64, learning_rate=0.01, random_state=0)


def test_transformer_api(digits):
    x = digits[0][:128]
    transformer = TiedAutoencoderTransformer((12, 6), **TINY)
    codes = transformer.fit_transform(x)
    assert codes.shape == (128, 6) and codes.dtype == np.float32
    assert transformer.n_features_in_ == 64
    assert list(transformer.get_feature_names_out()) == [
        f"tiedautoencodertransformer{i}" for i in range(6)
    ]
    # An int random_state makes fitting reproducible, exactly.
    again = clone(transformer).fit(x)
    np.testing.assert_array_equal(again.transform(x), codes)
    np.testing.assert_array_equal(transformer.transform(x), transformer.sda_.transform(x))
    np.testing.assert_array_equal(
        transformer.inverse_transform(codes), transformer.sda_.reconstruct(x)
    )
    with pytest.raises(ValueError, match="expects codes with 6 features"):
        transformer.inverse_transform(x)

    fresh = clone(transformer)
    assert fresh.get_params() == transformer.get_params()
    assert not hasattr(fresh, "sda_")
    fresh.set_params(layer_sizes=(5,), corruption="gaussian", corruption_level=0.1)
    assert fresh.fit(x).transform(x).shape == (128, 5)
    assert fresh.sda_.get_config()["corruption"] == "gaussian"


def test_both_estimators_in_one_pipeline_under_grid_search(digits):
    # One search covers both estimators (each fit compiles, so one search is cheaper):
    # scaled -> codes from the transformer -> pretrained classifier on the codes.
    x, y = digits[0][:192], digits[1][:192] % 3
    pipe = Pipeline([
        ("scale", MinMaxScaler()),
        ("codes", TiedAutoencoderTransformer((12,), **TINY)),
        ("clf", PretrainedMLPClassifier((8,), **TINY_CLF)),
    ])
    # One train/test split (2 candidates + the refit = 3 pipeline fits).
    split = [(np.arange(0, 192, 2), np.arange(1, 192, 2))]
    search = GridSearchCV(pipe, {"clf__pretrained": [True, False]}, cv=split)
    search.fit(x, y)
    assert len(search.cv_results_["params"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.named_steps["clf"].pretrained == search.best_params_["clf__pretrained"]
    assert best.named_steps["clf"].n_features_in_ == 12
    codes = best.named_steps["codes"].transform(best.named_steps["scale"].transform(x))
    np.testing.assert_array_equal(best.predict(x), best.named_steps["clf"].predict(codes))
    assert set(search.predict(x)) <= {0, 1, 2}

    # And the transformer feeding a scikit-learn estimator.
    pipe = Pipeline([("codes", TiedAutoencoderTransformer((8,), **TINY)),
                     ("clf", LogisticRegression(max_iter=300))])
    assert pipe.fit(x, y).named_steps["clf"].coef_.shape == (3, 8)


def test_classifier_handles_arbitrary_labels(digits):
    x, y = digits[0][:192], digits[1][:192]
    names = np.array(["cat", "dog", "emu"])[y % 3]
    clf = PretrainedMLPClassifier((16,), **TINY_CLF).fit(x, names)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    proba = clf.predict_proba(x)
    assert proba.shape == (192, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    predicted = clf.predict(x)
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(x, names) == pytest.approx(np.mean(predicted == names))
    assert len(clf.history_["loss"]) == 2
    with pytest.raises(ValueError, match="only one class"):
        PretrainedMLPClassifier((4,), **TINY_CLF).fit(x, np.zeros(len(x)))


def test_classifier_starts_from_the_pretrained_stack_or_from_random_init(digits):
    x, y = digits[0][:128], digits[1][:128]
    clf = PretrainedMLPClassifier((16, 8), **dict(TINY_CLF, epochs=0)).fit(x, y)
    ae = clf.sda_.autoencoder_
    assert [len(h["loss"]) for h in clf.sda_.history_] == [1, 1]
    for k, dense in enumerate(pretrained_layers(clf.model_)):
        np.testing.assert_array_equal(to_numpy(dense.kernel), to_numpy(ae.kernels[k]))
        np.testing.assert_array_equal(to_numpy(dense.bias), to_numpy(ae.encoder_biases[k]))

    control = PretrainedMLPClassifier((16, 8), pretrained=False, **dict(TINY_CLF, epochs=0))
    control.fit(x, y)
    assert control.sda_.history_ == [{"loss": []}, {"loss": []}]  # no pretraining
    assert not np.array_equal(
        to_numpy(pretrained_layers(control.model_)[0].kernel), to_numpy(ae.kernels[0])
    )


def test_classifier_pretrains_on_extra_unlabeled_rows(digits, monkeypatch):
    x, y = digits[0][:96], digits[1][:96]
    pool = digits[0][96:256]
    seen = []
    original = StackedDenoisingAutoencoder.pretrain

    def pretrain(self, data, *args, **kwargs):
        seen.append(np.asarray(data))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(StackedDenoisingAutoencoder, "pretrain", pretrain)
    pipe = Pipeline([("clf", PretrainedMLPClassifier((8,), **TINY_CLF))])
    pipe.fit(x, y, clf__X_unlabeled=pool)
    np.testing.assert_array_equal(seen[0], np.concatenate([x, pool]))
    assert pipe.predict(x).shape == (96,)
    with pytest.raises(ValueError, match="X_unlabeled has 3 features"):
        PretrainedMLPClassifier((8,), **TINY_CLF).fit(x, y, X_unlabeled=np.zeros((5, 3)))


def test_classifier_starts_from_a_given_pretrained_stack(digits, monkeypatch):
    x, y = digits[0][:96], digits[1][:96]
    first = PretrainedMLPClassifier((8,), **TINY_CLF).fit(x, y)
    stack = first.sda_
    codes = stack.transform(x)
    calls = []
    monkeypatch.setattr(StackedDenoisingAutoencoder, "pretrain",
                        lambda self, *a, **k: calls.append(1) or self)
    again = clone(first).fit(x, y, pretrained_stack=stack)
    assert calls == [] and again.sda_ is stack
    # Same stack, same seed of the supervised phase: the same network as the first fit.
    np.testing.assert_allclose(again.predict_proba(x), first.predict_proba(x), atol=1e-6)
    np.testing.assert_array_equal(stack.transform(x), codes)  # fine-tuning left the stack alone

    clf = PretrainedMLPClassifier((8,), **TINY_CLF)
    for kwargs, message in (
        (dict(pretrained_stack="stack"), "must be a fitted StackedDenoisingAutoencoder"),
        (dict(pretrained_stack=StackedDenoisingAutoencoder([8])), "not fitted yet"),
        (dict(pretrained_stack=stack, X_unlabeled=x), "X_unlabeled only feeds"),
    ):
        with pytest.raises(ValueError, match=message):
            clf.fit(x, y, **kwargs)
    with pytest.raises(ValueError, match="pretrained=False trains from random"):
        clone(clf).set_params(pretrained=False).fit(x, y, pretrained_stack=stack)
    with pytest.raises(ValueError, match=r"hidden layers \[8\] but layer_sizes is \[9\]"):
        clone(clf).set_params(layer_sizes=(9,)).fit(x, y, pretrained_stack=stack)
    with pytest.raises(ValueError, match="pretrained on 64 features but X has 10"):
        clf.fit(x[:, :10], y, pretrained_stack=stack)


def test_classifier_semi_supervised_phase_reconstructs_the_unlabeled_rows(digits):
    x, y = digits[0][:60], digits[1][:60]
    pool = digits[0][60:700]
    names = np.array(list("abcdefghij"))[y]
    clf = PretrainedMLPClassifier(
        (24,), pretrain_epochs=5, epochs=15, batch_size=64, learning_rate=0.01,
        reconstruction_weight=1.0, random_state=0,
    ).fit(x, names, X_unlabeled=pool)
    history = clf.history_
    assert len(history["reconstruction_loss"]) == 15
    assert history["reconstruction_loss"][-1] < history["reconstruction_loss"][0]
    assert set(clf.predict(digits[0][700:800])) <= set(clf.classes_)
    # 60 labels, 10 classes: well above chance on held-out digits.
    assert clf.score(digits[0][700:1000], np.array(list("abcdefghij"))[digits[1][700:1000]]) > 0.5
    # The pretrained stack is where the classifier started from: the same widths, trained.
    assert clf.sda_.history_[0]["loss"] and len(clf.sda_.history_[0]["loss"]) == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(reconstruction_weight=-1.0), "non-negative"),
    (dict(reconstruction_weight="much"), "non-negative"),
    (dict(reconstruction_weight=1.0, freeze_epochs=2), "freeze_epochs must be 0"),
])
def test_classifier_refuses_bad_semi_supervised_settings(digits, kwargs, message):
    x, y = digits[0][:40], digits[1][:40]
    with pytest.raises(ValueError, match=message):
        PretrainedMLPClassifier((4,), **TINY_CLF, **kwargs).fit(x, y)


# ------------------------------------------------------------ DeepEmbeddedClustering

DEC_TINY = dict(layer_sizes=(32, 8), pretrain_epochs=5, finetune_epochs=5, batch_size=64, max_iter=200,
                update_interval=20, random_state=0)


def dec_blobs():
    """Four well-separated blobs in 10-D, scaled to [0, 1] (the estimator's usual input)."""
    x, y = make_blobs(240, n_features=10, centers=4, cluster_std=1.0, random_state=0)
    return MinMaxScaler().fit_transform(x).astype(np.float32), y


@functools.lru_cache(maxsize=1)
def fitted_dec():
    """One fit shared by the tests that only read it (each fit compiles several models)."""
    x, y = dec_blobs()
    return x, y, DeepEmbeddedClustering(4, **DEC_TINY).fit(x)


def np_soft_assignment(z, centres, alpha=1.0):
    squared = ((z[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(-1)
    kernel = (1.0 + squared / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(axis=1, keepdims=True)


def test_clusterer_recovers_blobs_and_is_reproducible():
    x, y, dec = fitted_dec()
    assert adjusted_rand_score(y, dec.labels_) >= 0.9
    assert dec.labels_.shape == (240,) and dec.labels_.dtype == np.intp
    assert dec.kmeans_labels_.shape == (240,)
    assert dec.cluster_centers_.shape == (4, 8)
    assert dec.n_features_in_ == 10
    assert 0 < dec.n_iter_ <= 200
    assert dec.history_[0]["loss"] is None and dec.history_[-1]["step"] == dec.n_iter_
    assert dec.converged_ == (dec.history_[-1]["changed"] < dec.tol)
    # Fine-tuning (unrolled by default) and DEC train copies: the stack keeps its
    # greedily pretrained code.
    assert len(dec.finetune_history_["loss"]) == 5
    assert dec.sda_.finetune_history_ is None
    assert to_numpy(dec.autoencoder_(x[:3])).shape == (3, 10)
    assert not np.allclose(dec.transform(x), dec.sda_.transform(x))
    # autoencoder_code_ is the code k-means clustered: the refinement moved the encoder
    # away from it, and its points sit nearest the centres of their own k-means cluster.
    code = dec.autoencoder_code_
    assert code.shape == (240, 8) and code.dtype == np.float32
    assert not np.allclose(code, dec.transform(x))
    centres = np.stack([code[dec.kmeans_labels_ == k].mean(axis=0) for k in range(4)])
    nearest = ((code[:, None] - centres[None]) ** 2).sum(-1).argmin(axis=1)
    np.testing.assert_array_equal(nearest, dec.kmeans_labels_)
    # The same random_state gives the same fit, and fit_predict returns labels_.
    again = clone(dec)
    labels = again.fit_predict(x)
    np.testing.assert_array_equal(labels, again.labels_)
    np.testing.assert_array_equal(again.labels_, dec.labels_)
    np.testing.assert_array_equal(again.kmeans_labels_, dec.kmeans_labels_)
    np.testing.assert_array_equal(again.autoencoder_code_, dec.autoencoder_code_)
    np.testing.assert_array_equal(again.cluster_centers_, dec.cluster_centers_)
    assert again.n_iter_ == dec.n_iter_


def test_clusterer_predict_proba_transform():
    x, _, dec = fitted_dec()
    # labels_ come from the final weights, so predicting the training data gives them back.
    predicted = dec.predict(x)
    np.testing.assert_array_equal(predicted, dec.labels_)
    assert predicted.dtype == np.intp
    proba = dec.predict_proba(x)
    assert proba.shape == (240, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(proba.argmax(axis=1), predicted)
    codes = dec.transform(x)
    assert codes.shape == (240, 8) and codes.dtype == np.float32
    # q is the Student's t assignment of the refined codes to the refined centres.
    np.testing.assert_allclose(
        proba, np_soft_assignment(codes, dec.cluster_centers_, dec.alpha), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(dec.model_.predict(x, verbose=0), proba, rtol=1e-5, atol=1e-6)
    # Predicting a slice of the rows gives the same labels as the whole.
    np.testing.assert_array_equal(dec.predict(x[:37]), predicted[:37])


def test_clusterer_pickle_round_trip():
    x, _, dec = fitted_dec()
    restored = pickle.loads(pickle.dumps(dec))
    assert hasattr(dec, "encoder_")  # pickling leaves the original whole
    assert restored.get_params() == dec.get_params()
    np.testing.assert_array_equal(restored.labels_, dec.labels_)
    np.testing.assert_array_equal(restored.autoencoder_code_, dec.autoencoder_code_)
    np.testing.assert_array_equal(restored.cluster_centers_, dec.cluster_centers_)
    np.testing.assert_array_equal(restored.predict(x), dec.predict(x))
    np.testing.assert_array_equal(restored.predict_proba(x), dec.predict_proba(x))
    np.testing.assert_array_equal(restored.transform(x), dec.transform(x))
    # The restored encoder is still the one inside model_ and the encoder half of the
    # unrolled autoencoder_: one set of variables, as before pickling.
    assert restored.encoder_ in restored.model_.layers
    encoder_ids = {id(v) for v in restored.encoder_.weights}
    assert encoder_ids and encoder_ids <= {id(v) for v in restored.model_.weights}
    assert encoder_ids <= {id(v) for v in restored.autoencoder_.weights}
    assert len(restored.autoencoder_.weights) == len(dec.autoencoder_.weights)
    np.testing.assert_array_equal(to_numpy(restored.autoencoder_(x)), to_numpy(dec.autoencoder_(x)))


def test_clusterer_sparse_input_same_as_dense():
    x, _, dec = fitted_dec()
    sparse = DeepEmbeddedClustering(4, **DEC_TINY).fit(sp.csr_matrix(x))
    np.testing.assert_array_equal(sparse.labels_, dec.labels_)
    np.testing.assert_allclose(sparse.cluster_centers_, dec.cluster_centers_, atol=1e-6)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(x[:50])), dec.predict(x[:50]))


def test_clusterer_without_refinement_keeps_kmeans_labels():
    x, y = dec_blobs()
    dec = DeepEmbeddedClustering(
        4, **dict(DEC_TINY, pretrain_epochs=2, finetune_epochs=2, unroll=False, max_iter=0)
    ).fit(x)
    assert dec.n_iter_ == 0 and not dec.converged_ and len(dec.history_) == 1
    np.testing.assert_array_equal(dec.labels_, dec.kmeans_labels_)
    np.testing.assert_array_equal(dec.predict(x), dec.kmeans_labels_)
    # unroll=False fine-tunes the tied stack itself.
    assert len(dec.sda_.finetune_history_["loss"]) == 2
    assert dec.finetune_history_ == dec.sda_.finetune_history_
    # No refinement: the encoder is the (fine-tuned) stack's, the centres are the
    # k-means centres of its code.
    codes = dec.sda_.transform(x)
    np.testing.assert_allclose(dec.transform(x), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dec.autoencoder_code_, codes, rtol=1e-5, atol=1e-6)
    for k in range(4):
        np.testing.assert_allclose(
            dec.cluster_centers_[k], codes[dec.kmeans_labels_ == k].mean(axis=0), atol=1e-4
        )


@pytest.mark.parametrize("kwargs, n_samples, message", [
    (dict(n_clusters=50), 10, "n_clusters=50"),
    (dict(n_clusters=0), 10, "n_clusters"),
    (dict(n_clusters=2.5), 10, "n_clusters"),
    (dict(n_clusters=2, n_init=0), 10, "n_init"),
    (dict(n_clusters=2, alpha=-1.0), 10, "alpha"),
    (dict(n_clusters=2, cluster_learning_rate=0.0), 10, "cluster_learning_rate"),
])
def test_clusterer_refuses_bad_settings_before_training(kwargs, n_samples, message, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pretraining started before the settings were checked")

    monkeypatch.setattr(StackedDenoisingAutoencoder, "pretrain", no_pretraining)
    x, _ = dec_blobs()
    with pytest.raises(ValueError, match=message):
        DeepEmbeddedClustering(**kwargs, **dict(DEC_TINY, pretrain_epochs=1)).fit(x[:n_samples])


def test_clusterer_predict_checks():
    with pytest.raises(NotFittedError):
        DeepEmbeddedClustering(3).predict(np.zeros((4, 10), np.float32))
    with pytest.raises(NotFittedError):
        DeepEmbeddedClustering(3).transform(np.zeros((4, 10), np.float32))
    x, _, dec = fitted_dec()
    with pytest.raises(ValueError, match="X has 7 features"):
        dec.predict(x[:, :7])
    with pytest.raises(ValueError, match="X has 7 features"):
        dec.predict_proba(x[:, :7])
    with pytest.raises(ValueError, match="X has 7 features"):
        dec.transform(x[:, :7])
    bad = x[:5].copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dec.predict(bad)


def test_clusterer_stack_has_hidden_activation_and_linear_code():
    x, _, dec = fitted_dec()
    assert dec.sda_.get_config()["activation"] == ["relu", "linear"]
    assert dec.sda_.layer_sizes == [32, 8]
    assert (dec.transform(x) < 0).any()  # a linear code, not a relu one


def test_clusterer_accepts_layer_sizes_as_an_array():
    # As TiedAutoencoderTransformer does (e.g. widths from np.linspace in a grid search).
    x, _ = dec_blobs()
    dec = DeepEmbeddedClustering(
        2, **dict(DEC_TINY, layer_sizes=np.array([6, 3]), pretrain_epochs=1, finetune_epochs=0, max_iter=0)
    ).fit(x[:64])
    assert dec.sda_.get_config()["activation"] == ["relu", "linear"]
    assert dec.transform(x[:5]).shape == (5, 3)


def test_clusterer_is_also_a_transformer():
    # It has `transform` (the refined code), so scikit-learn treats it as a transformer:
    # its checks need the transformer tags (`estimator_checks_generator` refuses it
    # otherwise), and the code is float32 whatever the input dtype.
    tags = get_tags(DeepEmbeddedClustering())
    assert tags.input_tags.sparse
    assert tags.transformer_tags is not None
    assert tags.transformer_tags.preserves_dtype == ["float32"]
    assert callable(getattr(DeepEmbeddedClustering, "fit_transform", None))


# ------------------------------------------- DeepEmbeddedClustering: unrolled fine-tuning

DEC_SGD = {"class_name": "SGD", "config": {"momentum": 0.9}}
DEC_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"},
}


def dense_layers(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_clusterer_unrolled_finetuning_trains_an_untied_copy_not_the_stack():
    import keras

    from tiedae.pretraining import ReconstructionModel

    x, _, dec = fitted_dec()  # unroll=True by default
    assert dec.unroll is True
    sda = dec.sda_
    # DEC's decoders on the stack: the input linearly ("auto" with mse), the hidden layer relu.
    assert sda.reconstruction_activation == ["auto", "relu"]
    assert sda.get_config()["reconstruction_activation"] == ["auto", "relu"]
    assert sda.autoencoder_.decoder_activations == [
        keras.activations.linear, keras.activations.relu
    ]
    # The fine-tuned model is the unrolled copy, not the stack's tied autoencoder.
    assert dec.autoencoder_ is not sda.autoencoder_
    assert isinstance(dec.autoencoder_, ReconstructionModel)
    assert sda.finetune_history_ is None
    assert not {id(v) for v in dec.autoencoder_.weights} & {id(v) for v in sda.autoencoder_.weights}
    # Its default fine-tuning optimizer: `optimizer` at `learning_rate`, 5 epochs of 4 batches.
    assert isinstance(dec.autoencoder_.optimizer, keras.optimizers.Adam)
    assert float(to_numpy(dec.autoencoder_.optimizer.learning_rate)) == pytest.approx(1e-3)
    assert int(to_numpy(dec.autoencoder_.optimizer.iterations)) == 5 * 4
    # Untied and trained: the decoder kernels are no longer the encoder's transposes.
    layers = dense_layers(dec.autoencoder_)
    encoder, decoder = layers[:2], layers[2:]
    assert [layer.units for layer in decoder] == [32, 10]
    assert [layer.activation for layer in decoder] == [
        keras.activations.relu, keras.activations.linear
    ]
    for layer, k in zip(decoder, (1, 0)):
        assert not np.allclose(to_numpy(layer.kernel), to_numpy(encoder[k].kernel).T, atol=1e-4)
    # The stack is exactly what greedy pretraining alone leaves (same random_state,
    # no fine-tuning, no refinement): fine-tuning and DEC did not touch it.
    greedy_only = DeepEmbeddedClustering(4, **dict(DEC_TINY, finetune_epochs=0, max_iter=0)).fit(x)
    for a, b in zip(greedy_only.sda_.autoencoder_.weights, sda.autoencoder_.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_clusterer_finetune_optimizer_and_learning_rate_reach_the_unrolled_model():
    import keras

    x, _ = dec_blobs()
    dec = DeepEmbeddedClustering(
        4, **dict(DEC_TINY, pretrain_epochs=1, finetune_epochs=2, max_iter=0),
        finetune_optimizer=DEC_SGD, finetune_learning_rate=0.05,
        kernel_initializer=DEC_INITIALIZER,
    ).fit(x)
    optimizer = dec.autoencoder_.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9)
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)
    assert int(to_numpy(optimizer.iterations)) == 2 * 4  # 240 rows in batches of 64
    assert len(dec.finetune_history_["loss"]) == 2
    assert np.isfinite(dec.finetune_history_["loss"]).all()
    # Pretraining keeps `optimizer`; the initializer reaches the stack.
    config = dec.sda_.get_config()
    assert config["optimizer"] == "adam"
    assert config["kernel_initializer"] == DEC_INITIALIZER
    assert dec.get_params()["finetune_optimizer"] == DEC_SGD


def test_clusterer_without_unroll_finetunes_the_tied_stack_with_the_finetune_optimizer(
    monkeypatch,
):
    import keras

    seen = []
    original = StackedDenoisingAutoencoder.finetune

    def finetune(self, *args, **kwargs):
        seen.append(kwargs.get("optimizer"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StackedDenoisingAutoencoder, "finetune", finetune)
    x, _ = dec_blobs()
    dec = DeepEmbeddedClustering(
        4, **dict(DEC_TINY, pretrain_epochs=1, finetune_epochs=3, max_iter=0, unroll=False),
        learning_rate=0.02, finetune_optimizer=DEC_SGD,
    ).fit(x)
    [optimizer] = seen
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9)
    # finetune_learning_rate=None: the fine-tuning runs at `learning_rate`.
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.02)
    assert int(to_numpy(optimizer.iterations)) == 3 * 4
    assert dec.autoencoder_ is dec.sda_.autoencoder_
    assert len(dec.sda_.finetune_history_["loss"]) == 3
    assert dec.finetune_history_ == dec.sda_.finetune_history_


@pytest.mark.parametrize("kwargs, message", [
    (dict(finetune_learning_rate=0.0), "finetune_learning_rate"),
    (dict(finetune_learning_rate=-1e-3), "finetune_learning_rate"),
    (dict(finetune_learning_rate=float("nan")), "finetune_learning_rate"),
    (dict(finetune_learning_rate=float("inf")), "finetune_learning_rate"),
    (dict(finetune_optimizer="nope"), "`finetune_optimizer`"),
    (dict(finetune_optimizer={"class_name": "SGD", "config": {"bogus": 1}}),
     "`finetune_optimizer`"),
    (dict(finetune_optimizer={"name": "sgd"}), "`finetune_optimizer`"),
    (dict(optimizer={"class_name": "Nope"}), "`optimizer`"),
    (dict(kernel_initializer="nope"), "`kernel_initializer`"),
    (dict(kernel_initializer={"class_name": "VarianceScaling", "config": {"bogus": 1}}),
     "`kernel_initializer`"),
])
def test_clusterer_refuses_bad_finetune_settings_before_training(kwargs, message, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pretraining started before the settings were checked")

    monkeypatch.setattr(StackedDenoisingAutoencoder, "pretrain", no_pretraining)
    x, _ = dec_blobs()
    with pytest.raises(ValueError, match=message):
        DeepEmbeddedClustering(2, **dict(DEC_TINY, pretrain_epochs=1), **kwargs).fit(x[:20])


# ------------------------------------------------- parameter validation, every estimator


@pytest.fixture
def no_pretraining(monkeypatch):
    """Fail a test whose `fit` gets as far as pretraining: settings are checked first."""
    def pretrain(*args, **kwargs):
        raise AssertionError("pretraining started before the settings were checked")

    monkeypatch.setattr(StackedDenoisingAutoencoder, "pretrain", pretrain)


BAD_LEARNING_RATES = [-1.0, 0.0, float("nan"), float("inf"), "fast"]


@pytest.mark.parametrize("value", BAD_LEARNING_RATES)
@pytest.mark.parametrize("name", ["learning_rate", "finetune_learning_rate"])
def test_classifier_refuses_non_positive_or_non_finite_learning_rates(
    digits, no_pretraining, name, value
):
    x, y = digits[0][:40], digits[1][:40]
    with pytest.raises(ValueError, match=f"`{name}` must be .*positive, finite"):
        PretrainedMLPClassifier((4,), **dict(TINY_CLF, **{name: value})).fit(x, y)


@pytest.mark.parametrize("value", BAD_LEARNING_RATES)
def test_transformer_refuses_non_positive_or_non_finite_learning_rates(
    digits, no_pretraining, value
):
    with pytest.raises(ValueError, match="`learning_rate` must be a positive, finite"):
        TiedAutoencoderTransformer((4,), learning_rate=value, **TINY).fit(digits[0][:40])


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["learning_rate", "finetune_learning_rate",
                                  "cluster_learning_rate"])
def test_clusterer_refuses_non_finite_learning_rates(no_pretraining, name, value):
    x, _ = dec_blobs()
    with pytest.raises(ValueError, match=f"`{name}` must be .*positive, finite"):
        DeepEmbeddedClustering(2, **dict(DEC_TINY, **{name: value})).fit(x[:20])


@pytest.mark.parametrize("make, kwargs, expected, internal", [
    # Each message names the parameter the user passed, not the one of the
    # helper it is handed to, and describes that parameter.
    (lambda **kw: PretrainedMLPClassifier((4,), **dict(TINY_CLF, **kw)),
     dict(freeze_epochs=-1), "`freeze_epochs` must be a non-negative integer", "unfreeze_after"),
    (lambda **kw: PretrainedMLPClassifier((4,), **dict(TINY_CLF, **kw)),
     dict(freeze_epochs=1.5), "`freeze_epochs` must be a non-negative integer", "unfreeze_after"),
    (lambda **kw: PretrainedMLPClassifier((4,), **dict(TINY_CLF, **kw)),
     dict(freeze_epochs=-1, reconstruction_weight=1.0), "`freeze_epochs` must be a non-negative",
     "unfreeze_after"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(code_activation="bogus"), "`code_activation` 'bogus' is not a Keras activation",
     "`activation`"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(activation="bogus"), "`activation` 'bogus' is not a Keras activation",
     "code_activation"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(finetune_optimizer="bogus"), "`finetune_optimizer` 'bogus'", "`optimizer`"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(tol=-1), r"`tol` must be a number in \[0, 1\).*samples change cluster",
     "inputs affected"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(tol=1.0), r"`tol` must be a number in \[0, 1\)", "inputs affected"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(loss="binary_crossentropy"), "through `activation` \\('relu'\\).*activation='sigmoid'",
     "reconstruction_activation"),
    (lambda **kw: DeepEmbeddedClustering(2, **dict(DEC_TINY, **kw)),
     dict(loss=["mse", "bce"]), "activation='sigmoid'", "reconstruction_activation"),
])
def test_messages_name_the_estimators_own_parameters(no_pretraining, make, kwargs, expected,
                                                      internal):
    x, y = dec_blobs()
    with pytest.raises(ValueError, match=expected) as error:
        make(**kwargs).fit(x[:40], y[:40])
    assert internal not in str(error.value)


def test_clusterer_binary_crossentropy_with_sigmoid_hidden_layers_and_auto_loss(digits):
    # With activation="sigmoid" binary cross-entropy applies to every layer.
    x = digits[0][:128]
    fast = dict(DEC_TINY, layer_sizes=(6, 3), pretrain_epochs=1, finetune_epochs=0, max_iter=0)
    dec = DeepEmbeddedClustering(2, **fast, loss="binary_crossentropy", activation="sigmoid")
    assert dec.fit(x).sda_.losses_ == ["binary_crossentropy", "binary_crossentropy"]
    # "auto" never picks it for a relu hidden layer, even when that layer's code lies
    # in [0, 1] (inputs scaled down, a slow learning rate): the stack would refuse it
    # mid-fit, after pretraining the layers below.
    dec = DeepEmbeddedClustering(2, **fast, loss="auto", learning_rate=1e-4).fit(x * 0.01)
    assert dec.sda_.losses_ == ["binary_crossentropy", "mse"]
    assert dec.get_params()["loss"] == "auto"


def test_classifier_warns_when_the_layers_would_never_unfreeze(digits):
    x, y = digits[0][:128], digits[1][:128] % 3
    with pytest.warns(UserWarning, match="freeze_epochs=5 is not less than epochs=2"):
        clf = PretrainedMLPClassifier((8,), **dict(TINY_CLF, freeze_epochs=5)).fit(x, y)
    # What the warning says: 2 epochs, all frozen, the pretrained layer as pretraining left it.
    assert len(clf.history_["loss"]) == 2
    [dense] = pretrained_layers(clf.model_)
    np.testing.assert_array_equal(
        to_numpy(dense.kernel), to_numpy(clf.sda_.autoencoder_.kernels[0])
    )
    # freeze_epochs < epochs unfreezes for the last epoch, without a warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="freeze_epochs", category=UserWarning)
        clf = PretrainedMLPClassifier((8,), **dict(TINY_CLF, freeze_epochs=1)).fit(x, y)
    [dense] = pretrained_layers(clf.model_)
    assert not np.array_equal(
        to_numpy(dense.kernel), to_numpy(clf.sda_.autoencoder_.kernels[0])
    )


def test_classifier_finetune_learning_rate_reaches_the_optimizer(digits):
    x, y = digits[0][:64], digits[1][:64] % 2
    clf = PretrainedMLPClassifier((4,), **dict(TINY_CLF, epochs=1), finetune_learning_rate=0.05)
    optimizer = clf.fit(x, y).model_.optimizer
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)


def test_transformer_takes_a_bare_int_as_one_layer(digits):
    # As StackedDenoisingAutoencoder (and so every estimator) does.
    x = digits[0][:128]
    one = TiedAutoencoderTransformer(4, **TINY).fit(x)
    assert one.sda_.layer_sizes == [4]
    np.testing.assert_array_equal(
        one.transform(x), TiedAutoencoderTransformer((4,), **TINY).fit(x).transform(x)
    )
    assert one.get_params()["layer_sizes"] == 4  # stored as passed


@pytest.mark.parametrize("make", [
    lambda sizes: TiedAutoencoderTransformer(sizes, **TINY),
    lambda sizes: PretrainedMLPClassifier(sizes, **TINY_CLF),
    lambda sizes: DeepEmbeddedClustering(2, **dict(DEC_TINY, layer_sizes=sizes)),
], ids=["transformer", "classifier", "clusterer"])
@pytest.mark.parametrize("sizes", [0, -3, (), (8, 0), (8, 2.5), "8", None])
def test_estimators_refuse_bad_layer_sizes(no_pretraining, make, sizes):
    x, y = dec_blobs()
    with pytest.raises(ValueError, match="`layer_sizes` must"):
        make(sizes).fit(x[:40], y[:40])
