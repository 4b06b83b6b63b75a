"""Few labels on Fashion-MNIST with semi-supervised fine-tuning.

    KERAS_BACKEND=jax python -m benchmarks.semi_supervised --json out.json --settings '{...}'

For every seed: the quality section's pretraining (same seed, same images,
same recipe, so the same stack) and the same stratified 100 / 1,000 labelled
images; then `tiedae.pretraining.fit_semi_supervised`: the classifier is
fine-tuned on the labelled images while its tied decoder keeps reconstructing
all unlabelled training images. The control is the same network and the same
semi-supervised training from random initialisation.
"""

from benchmarks._util import quiet_backends

quiet_backends()

from benchmarks.quality import (  # noqa: E402
    few_label_targets,
    pretrain_seed,
    stratified_indices,
)
from benchmarks.seeded import mean_seconds_note, run_seeded  # noqa: E402

PRETRAINED = "SdA pretrained, semi-supervised fine-tuning"
CONTROL = "same network and training, random init"


def run_seed(seed, data, settings, out, log):
    from tiedae.pretraining import fit_semi_supervised

    (x_train, y_train), (x_test, y_test) = data
    # The quality section's stack and draws: the same images and labelled subsets.
    sda, rng, _, x_pre = pretrain_seed(seed, x_train, settings, out, log)
    for n in settings["few_labels"]:
        idx = stratified_indices(y_train, n, rng)
        for name, pretrained in ((PRETRAINED, True), (CONTROL, False)):
            classifier, _ = fit_semi_supervised(
                sda, x_train[idx], y_train[idx], x_pre, n_classes=10,
                epochs=settings["semi_epochs"],
                reconstruction_weight=settings["reconstruction_weight"],
                labeled_fraction=settings["labeled_fraction"], batch_size=128,
                pretrained=pretrained, seed=seed,
            )
            acc = float(classifier.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])
            out["few_labels"].setdefault(str(n), {}).setdefault(name, []).append(acc)
            log(f"seed {seed}: {n} labels, {name}: {acc:.4f}")


def tables(out, settings):
    return [{
        "title": f"Few labels, semi-supervised: {int(n):,} labelled images (stratified), all "
                 f"{settings['n_pretrain']:,} training images unlabelled",
        "columns": ["test accuracy"],
        "rows": [{"method": m, "test accuracy": v} for m, v in methods.items()],
    } for n, methods in out["few_labels"].items()]


def targets(out, settings):
    return few_label_targets(out["few_labels"], PRETRAINED, CONTROL, label=", semi-supervised")


def notes(out, settings):
    return mean_seconds_note(out)


def describe(settings):
    import keras

    sizes = "-".join(str(v) for v in [784] + list(settings["layer_sizes"]))
    return (
        f"Backend {keras.backend.backend()}. SdA {sizes} pretrained as in the quality section "
        f"({settings['pretrain_epochs']} epochs per layer, same seeds and images). Semi-supervised "
        f"fine-tuning (`fit_semi_supervised`): {settings['semi_epochs']} passes over the "
        f"{settings['n_pretrain']:,} unlabelled images, the labelled ones repeated to "
        f"{settings['labeled_fraction']:.0%} of each batch on average, loss = cross-entropy on "
        f"the labelled rows + {settings['reconstruction_weight']} x reconstruction "
        "(binary cross-entropy) of every row, Adam 1e-3 with cosine decay, batch 128. Mean ± "
        f"standard deviation over {settings['seeds']} seed(s); test accuracy on the first "
        f"{settings['n_test']:,} test images."
    )


def main(argv=None):
    out = {"pretrain_seconds": [], "few_labels": {}}
    run_seeded(__doc__, "semi", out, run_seed, tables, targets, describe, notes=notes, argv=argv)


if __name__ == "__main__":
    main()
