"""Early stopping in the estimators: stratified held-out rows, best epochs, 'auto', renamed epochs."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit

from tests.pretraining.test_early_stopping import reference_stopping
from tiedae.estimators import (
    DeepEmbeddedClustering,
    PretrainedMLPClassifier,
    TiedAutoencoderTransformer,
)

CLF = dict(layer_sizes=(16,), pretrain_epochs=30, epochs=300, batch_size=64,
           learning_rate=0.01, n_iter_no_change=3, tol=1e-3, random_state=0)


def test_the_classifier_stops_on_stratified_labelled_validation_rows(digits):
    x, y = digits[0][:500], digits[1][:500]
    clf = PretrainedMLPClassifier(**CLF, early_stopping=True, validation_fraction=0.2).fit(x, y)
    val = clf.validation_indices_
    # Stratified: every class has its share (rounded) of the 20% on the validation side.
    counts = np.bincount(y[val], minlength=10)
    expected = np.round(0.2 * np.bincount(y, minlength=10))
    np.testing.assert_array_equal(counts, expected)
    # Supervised phase: stopped by the rule on the recorded validation loss, weights of best epoch.
    assert clf.n_iter_ < 300 and "val_loss" in clf.history_
    assert (clf.n_iter_, clf.best_epoch_) == reference_stopping(
        clf.history_["val_loss"], patience=3, tol=1e-3
    )
    # The restored weights are the best epoch's: their validation accuracy is the recorded one.
    assert clf.score(x[val], y[val]) == pytest.approx(
        clf.history_["val_accuracy"][clf.best_epoch_ - 1], abs=1e-6
    )
    # Pretraining held out the same rows: each layer's history has a validation loss.
    for history, run, best in zip(clf.sda_.history_, clf.sda_.n_iter_, clf.sda_.best_epoch_):
        assert (run, best) == reference_stopping(history["val_loss"], patience=3, tol=1e-3)


def test_scoring_accuracy_stops_the_supervised_phase_on_validation_accuracy(digits):
    # As scikit-learn's MLPClassifier: the validation score, not the cross-entropy, decides.
    x, y = digits[0][:500], digits[1][:500]
    clf = PretrainedMLPClassifier(**CLF, early_stopping=True, validation_fraction=0.2,
                                  scoring="accuracy").fit(x, y)
    assert (clf.n_iter_, clf.best_epoch_) == reference_stopping(
        clf.history_["val_accuracy"], patience=3, tol=1e-3, mode="max"
    )
    val = clf.validation_indices_
    assert clf.score(x[val], y[val]) == pytest.approx(
        max(clf.history_["val_accuracy"]), abs=1e-6
    )


@pytest.mark.parametrize("scoring, mode", [("loss", "min"), ("accuracy", "max")])
def test_semi_supervised_phase_stops_on_the_validation_classification_score(digits, scoring, mode):
    x, y = digits[0][:400], digits[1][:400]
    clf = PretrainedMLPClassifier(
        **dict(CLF, epochs=100), reconstruction_weight=0.5, early_stopping=True, scoring=scoring
    ).fit(x, y, X_unlabeled=digits[0][400:800])
    assert (clf.n_iter_, clf.best_epoch_) == reference_stopping(
        clf.history_[f"val_classifier_{scoring}"], patience=3, tol=1e-3, mode=mode
    )
    # Its accuracy counts the labelled validation rows: the restored model scores the same.
    val = clf.validation_indices_
    assert clf.score(x[val], y[val]) == pytest.approx(
        clf.history_["val_classifier_accuracy"][clf.best_epoch_ - 1], abs=1e-6
    )


def test_auto_turns_early_stopping_on_from_300_rows(digits):
    x, y = digits
    small = PretrainedMLPClassifier((4,), pretrain_epochs=1, epochs=1, random_state=0).fit(
        x[:299], y[:299]
    )
    assert len(small.validation_indices_) == 0 and "val_loss" not in small.history_
    large = PretrainedMLPClassifier((4,), pretrain_epochs=1, epochs=1, random_state=0).fit(
        x[:300], y[:300]
    )
    assert len(large.validation_indices_) == 30 and "val_loss" in large.history_
    transformer = TiedAutoencoderTransformer((4,), pretrain_epochs=1, random_state=0).fit(x[:300])
    assert "val_loss" in transformer.sda_.history_[0]


def test_the_transformer_and_dec_record_their_stopping(digits):
    x = digits[0][:400]
    transformer = TiedAutoencoderTransformer(
        (16, 8), pretrain_epochs=200, learning_rate=0.01, early_stopping=True,
        n_iter_no_change=2, tol=1e-3, random_state=0,
    ).fit(x)
    assert transformer.n_iter_ == transformer.sda_.n_iter_ and max(transformer.n_iter_) < 200
    dec = DeepEmbeddedClustering(
        4, layer_sizes=(16, 4), pretrain_epochs=200, finetune_epochs=200, learning_rate=0.01,
        early_stopping=True, n_iter_no_change=2, stopping_tol=1e-3, max_iter=0, n_init=2,
        random_state=0,
    ).fit(x)
    assert max(dec.sda_.n_iter_) < 200
    assert len(dec.finetune_history_["loss"]) == len(dec.finetune_history_["val_loss"]) < 200
    assert dec.labels_.shape == (400,)  # clustered every row, held-out ones included


def test_the_old_epochs_name_still_works_with_a_future_warning(digits):
    x = digits[0][:100]
    with pytest.warns(FutureWarning, match="`epochs` of TiedAutoencoderTransformer was renamed"):
        transformer = TiedAutoencoderTransformer((4,), epochs=2, random_state=0).fit(x)
    assert transformer.sda_.n_iter_ == [2]
    with pytest.warns(FutureWarning, match="renamed `pretrain_epochs`"):
        dec = DeepEmbeddedClustering(2, layer_sizes=(4,), epochs=3, finetune_epochs=0,
                                     max_iter=0, n_init=1, random_state=0).fit(x)
    assert dec.sda_.n_iter_ == [3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(early_stopping="sometimes"), "True, False or 'auto'"),
        (dict(early_stopping=True, n_iter_no_change=0), "n_iter_no_change"),
        (dict(early_stopping=True, validation_fraction=1.5), "validation_fraction"),
        (dict(scoring="f1"), "`scoring` must be 'accuracy' or 'loss'"),
    ],
)
def test_bad_early_stopping_settings_are_refused(digits, kwargs, message):
    x, y = digits[0][:50], digits[1][:50]
    with pytest.raises(ValueError, match=message):
        PretrainedMLPClassifier((4,), pretrain_epochs=1, epochs=1, **kwargs).fit(x, y)


def test_a_fraction_too_small_for_the_rows_is_refused(digits):
    # Unstratified (an autoencoder): 1% of 40 rows rounds to none. A classifier's stratified
    # split instead gives every class at least one validation row.
    with pytest.raises(ValueError, match="leaves no validation rows"):
        TiedAutoencoderTransformer((4,), pretrain_epochs=1, early_stopping=True,
                                   validation_fraction=0.01).fit(digits[0][:40])


def test_a_class_without_validation_rows_is_refused(digits):
    x, y = digits[0][:60], digits[1][:60].copy()
    y[0] = 99  # a class with a single labelled row
    with pytest.raises(ValueError, match="class 99 has only one labelled row"):
        PretrainedMLPClassifier((4,), pretrain_epochs=1, epochs=1, early_stopping=True).fit(x, y)


def test_model_selection_on_one_validation_split_with_grid_search(digits):
    """The documented recipe: GridSearchCV over one stratified validation split picks the
    corruption level; test data is never involved."""
    x, y = digits[0][:300], digits[1][:300]
    search = GridSearchCV(
        PretrainedMLPClassifier((16,), pretrain_epochs=2, epochs=10, learning_rate=0.01,
                                random_state=0),
        {"corruption_level": [0.0, 0.3]},
        cv=StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=0),
    ).fit(x, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["corruption_level"] == [0.0, 0.3][int(np.argmax(scores))]
    # The refit on all rows has the chosen setting.
    assert search.best_estimator_.corruption_level == search.best_params_["corruption_level"]
