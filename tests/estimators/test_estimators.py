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
