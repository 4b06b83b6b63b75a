"""Few labels on Fashion-MNIST: semi-supervised and classical fine-tuning.

    KERAS_BACKEND=jax python -m benchmarks.semi_supervised --json out.json --settings '{...}'

For every seed: the quality section's pretraining (same seed, same images,
same recipe, so the same stack) and the same stratified 100 / 1,000 labelled
images; then, for each label count:

* `tiedae.pretraining.fit_semi_supervised`: the classifier is fine-tuned on the
  labelled images while its tied decoder keeps reconstructing all unlabelled
  training images (Adam with cosine decay);
* supervised fine-tuning on the labelled images only, with a named schedule of
  the quality section (`settings["supervised_schedule"]`): the *semi* section
  uses the classical one of the stacked-denoising-autoencoder papers (SGD with
  momentum, constant learning rate).

Each has its control: the same network and training from random initialisation.
With `label_shifts` in the settings (the *semi_shifted* section), the labelled
images are augmented with copies moved by that many pixels before any row (and
its control) trains on them; that section's supervised rows use the quality
section's few-label schedule (Adam), so they are its rows plus the copies.
"""

import statistics

from benchmarks._util import quiet_backends

quiet_backends()

from benchmarks.data import shifted_copies, stratified_indices  # noqa: E402
from benchmarks.row_names import (  # noqa: E402
    CONTROL,
    PRETRAINED,
    SUPERVISED,
    SUPERVISED_CONTROL,
)
from benchmarks.quality import (  # noqa: E402
    finetune_accuracy,
    few_label_targets,
    pretrain_seed,
)
from benchmarks.seeded import mean_seconds_note, run_seeded  # noqa: E402

# Where each supervised schedule comes from, for the section's description.
SCHEDULE_ORIGINS = {
    "sgd momentum 0.9 (lr 0.01)": "the classical constant-rate schedule of the "
                                  "stacked-denoising-autoencoder papers",
    "adam": "the quality section's few-label schedule (Adam 1e-3)",
}


def semi_accuracy(sda, pretrained, x, y, x_unlabeled, x_test, y_test, settings, seed):
    """Test accuracy after `fit_semi_supervised` on `(x, y)` plus `x_unlabeled`."""
    from tiedae.pretraining import fit_semi_supervised

    classifier, _ = fit_semi_supervised(
        sda, x, y, x_unlabeled, n_classes=10, epochs=settings["semi_epochs"],
        reconstruction_weight=settings["reconstruction_weight"],
        labeled_fraction=settings["labeled_fraction"], batch_size=128,
        pretrained=pretrained, seed=seed,
    )
    return float(classifier.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])


def run_seed(seed, data, settings, out, log):
    (x_train, y_train), (x_test, y_test) = data
    # The quality section's stack and draws: the same images and labelled subsets.
    sda, rng, _, x_pre = pretrain_seed(seed, x_train, settings, out, log)
    schedule = settings.get("supervised_schedule")
    for n in settings["few_labels"]:
        idx = stratified_indices(y_train, n, rng)
        labelled = (x_train[idx], y_train[idx])
        if settings.get("label_shifts"):
            labelled = shifted_copies(*labelled, settings["label_shifts"])
        rows = out["few_labels"].setdefault(str(n), {})
        for name, pretrained in ((PRETRAINED, True), (CONTROL, False)):
            accuracy = semi_accuracy(sda, pretrained, *labelled, x_pre, x_test, y_test,
                                     settings, seed)
            _record(rows, name, accuracy, f"seed {seed}: {n} labels", log)
        if schedule:
            for name, pretrained in ((SUPERVISED, True), (SUPERVISED_CONTROL, False)):
                accuracy = finetune_accuracy(sda, pretrained, *labelled, x_test, y_test,
                                             settings["supervised_epochs"], 32, seed, schedule)
                _record(rows, name.format(schedule), accuracy, f"seed {seed}: {n} labels", log)


def _record(rows, name, accuracy, where, log):
    rows.setdefault(name, []).append(accuracy)
    log(f"{where}, {name}: {accuracy:.4f}")


def shifted_text(settings):
    """How the labelled images are augmented ('' when they are not)."""
    pixels = settings.get("label_shifts")
    return (f", each with 4 copies moved {pixels} pixel{'s' if pixels > 1 else ''} up, down, "
            "left and right" if pixels else "")


def tables(out, settings):
    return [{
        "title": f"Few labels: {int(n):,} labelled images (stratified){shifted_text(settings)}, "
                 f"all {settings['n_pretrain']:,} training images unlabelled",
        "columns": ["test accuracy"],
        "rows": [{"method": m, "test accuracy": v} for m, v in methods.items()],
    } for n, methods in out["few_labels"].items()]


def targets(out, settings):
    shifted = ", shifted copies of the labelled images" if settings.get("label_shifts") else ""
    found = few_label_targets(out["few_labels"], PRETRAINED, CONTROL,
                              label=", semi-supervised" + shifted)
    schedule = settings.get("supervised_schedule")
    if schedule:
        found += few_label_targets(out["few_labels"], SUPERVISED.format(schedule),
                                   SUPERVISED_CONTROL.format(schedule),
                                   label=", supervised fine-tuning" + shifted)
    return found


def notes(out, settings):
    """The pretraining time, and how strong each random-init control is (a gap over a control
    that barely trains says more about the optimiser than about pretraining)."""
    found = mean_seconds_note(out)
    schedule = settings.get("supervised_schedule")
    if not schedule:
        return found
    supervised_control = SUPERVISED_CONTROL.format(schedule)
    for n, rows in out["few_labels"].items():
        if CONTROL in rows and supervised_control in rows:
            found.append(
                f"{int(n):,} labels: the random-init controls reach "
                f"{statistics.fmean(rows[CONTROL]):.2%} (semi-supervised, Adam) and "
                f"{statistics.fmean(rows[supervised_control]):.2%} ({schedule}); a gap is "
                "measured against its own control, so a weak control makes a large gap."
            )
    return found


def describe(settings):
    import keras

    sizes = "-".join(str(v) for v in [784] + list(settings["layer_sizes"]))
    text = (
        f"Backend {keras.backend.backend()}. SdA {sizes} pretrained as in the quality section "
        f"({settings['pretrain_epochs']} epochs per layer, same seeds, images and labelled "
        f"subsets{shifted_text(settings)}). *Semi-supervised* (`fit_semi_supervised`): "
        f"{settings['semi_epochs']} passes "
        f"over the {settings['n_pretrain']:,} unlabelled images, the labelled ones repeated to "
        f"{settings['labeled_fraction']:.0%} of each batch on average, loss = cross-entropy on "
        f"the labelled rows + {settings['reconstruction_weight']} x reconstruction "
        "(binary cross-entropy) of every row, Adam 1e-3 with cosine decay, batch 128."
    )
    schedule = settings.get("supervised_schedule")
    if schedule:
        origin = SCHEDULE_ORIGINS.get(schedule)
        text += (
            f" *Fine-tuned ({schedule})*: supervised fine-tuning on the labelled images only, "
            f"{settings['supervised_epochs']} epochs, batch 32" + (f", {origin}." if origin else ".")
        )
    return text + (
        f" Every method has its random-init control with the same training. Mean ± standard "
        f"deviation over {settings['seeds']} seed(s); test accuracy on the first "
        f"{settings['n_test']:,} test images."
    )


def main(argv=None):
    out = {"pretrain_seconds": [], "few_labels": {}}
    run_seeded(__doc__, "semi", out, run_seed, tables, targets, describe, notes=notes, argv=argv)


if __name__ == "__main__":
    main()
