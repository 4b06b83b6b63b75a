"""The scikit-learn estimators in use: pipelines, grid search, labels, unlabeled rows."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from tests.conftest import to_numpy
from tiedae.estimators import PretrainedMLPClassifier, TiedAutoencoderTransformer
from tiedae.pretraining import StackedDenoisingAutoencoder, pretrained_layers

TINY = dict(epochs=1, batch_size=64, random_state=0)
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


def test_transformer_in_a_pipeline_under_grid_search(digits):
    x, y = digits[0][:192], digits[1][:192]
    pipe = Pipeline([
        ("scale", MinMaxScaler()),
        ("codes", TiedAutoencoderTransformer((8,), **TINY)),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    search = GridSearchCV(pipe, {"codes__corruption_level": [0.1, 0.4]}, cv=2)
    search.fit(x, y)
    assert len(search.cv_results_["params"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_.named_steps["codes"]
    level = search.best_params_["codes__corruption_level"]
    assert best.sda_.get_config()["corruption_level"] == level
    assert best.sda_.get_config()["layer_sizes"] == [8]
    assert search.best_estimator_.named_steps["clf"].coef_.shape[1] == 8


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


def test_classifier_under_grid_search(digits):
    x, y = digits[0][:160], digits[1][:160] % 2
    search = GridSearchCV(
        PretrainedMLPClassifier((8,), **TINY_CLF), {"pretrained": [True, False]}, cv=2
    )
    search.fit(x, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["pretrained"] in (True, False)
    assert search.predict(x).shape == (160,)
