"""Why a quality-like target is missed: one explanation per miss, looked up by its text.

`MISS_REASONS` maps a piece of a target's text to its explanation; the first key found in
the target wins, so more specific keys come first. Numbers typed here come from
explorations outside the benchmark (named as such); an explanation that quotes the run's
own numbers is a function of the run's payload, so a re-run never shows stale ones.
"""

import statistics

from benchmarks.row_names import AE_KMEANS, DEC, KMEANS_SDA_CODE, N2D, N2D_RAW

# DEC-keras's 10 autoencoder + k-means trials on Fashion-MNIST: mean, lowest and highest.
DEC_KERAS_KMEANS = (0.606, 0.561, 0.648)


def _row_means(payload):
    """{(row, column): mean} over a run's tables. A (row, column) found in more than one
    table is left out, so that looking it up fails instead of quoting the wrong table."""
    means, seen = {}, set()
    for block in payload.get("tables", []):
        for row in block["rows"]:
            for column in block["columns"]:
                key = (row["method"], column)
                if key in seen:
                    means.pop(key, None)
                elif row.get(column):
                    means[key] = statistics.fmean(row[column])
                seen.add(key)
    return means


def _n2d_miss(payload):
    mean = _row_means(payload)
    n2d, dec, raw = ((mean[row, "accuracy"], mean[row, "NMI"]) for row in (N2D, DEC, N2D_RAW))
    if all(n2d[1] > v for (row, column), v in mean.items() if column == "NMI" and row != N2D):
        scores = (f"N2D raises NMI above every other row ({n2d[1]:.3f}, against {dec[1]:.3f} for "
                  f"DEC) {'but not' if n2d[0] < dec[0] else 'and'} accuracy ({n2d[0]:.2%}, "
                  f"against {dec[0]:.2%} for DEC)")
    else:
        scores = (f"N2D reaches NMI {n2d[1]:.3f} and accuracy {n2d[0]:.2%} (DEC {dec[1]:.3f} and "
                  f"{dec[0]:.2%})")
    return (f"{scores}, and the same UMAP and mixture on the raw pixels reach {raw[0]:.2%} "
            f"accuracy (NMI {raw[1]:.3f})"
            + (": this recipe's short-trained code helps UMAP separate the classes without "
               "matching the ten labels one to one" if n2d[1] > raw[1] and n2d[0] < raw[0] else "")
            + ". N2D's published runs train the autoencoder for 1,000 epochs on 70,000 images, "
            "against 10 + 10 here: a longer training is the lever; UMAP's settings are N2D's, "
            "not tuned on the labels being scored.")


def _dec_keras_kmeans_miss(payload):
    mean, (published, low, high) = _row_means(payload), DEC_KERAS_KMEANS
    ours, dec = mean[AE_KMEANS, "accuracy"], mean[DEC, "accuracy"]
    where = "within" if low <= ours <= high else "below" if ours < low else "above"
    return (f"the 62% is DEC's number; DEC-keras's own autoencoder + k-means averages "
            f"{published:.1%} over its 10 trials ({low:.1%} to {high:.1%}), so tiedae's mean "
            f"({ours:.2%}) is {where} that spread, and DEC's refinement of the same code is "
            f"{'above' if dec >= 0.62 else 'below'} the target ({dec:.2%}).")


def _sda_kmeans_miss(payload):
    mean = _row_means(payload)
    code = mean[KMEANS_SDA_CODE, "accuracy"]
    name, best = max(((row, v) for (row, column), v in mean.items()
                      if column == "accuracy" and row != KMEANS_SDA_CODE), key=lambda item: item[1])
    return (f"this classification stack's 1,000-wide sigmoid code was not built for clustering: "
            f"k-means on it scores {code:.2%}, against {best:.2%} for the best baseline "
            f"({name.removeprefix('k-means on ')}); the clustering sections measure "
            "`DeepEmbeddedClustering` and N2D instead.")


SEMI_GAP_MISS = (
    "the reconstruction loss helps the pretrained network and its random-init control alike "
    "(the control also sees every unlabelled image), so the gap stays a few points; "
    "pseudo-labels did not widen it (seed 0: 72.85% to 73.08%, control 69.90% to 69.60%, an "
    "exploration outside this benchmark).")


def _semi_gap_miss(payload):
    classical = next((t for t in payload.get("targets", []) if t["what"].startswith(
        "100 labels, pretrained minus random init, supervised")), None)
    if classical is None:
        return SEMI_GAP_MISS
    return (f"{SEMI_GAP_MISS} Against the classical SGD control (the supervised rows) the gap "
            f"is {'met' if classical['met'] else 'missed too'}: {classical['measured'] * 100:.1f} points.")


SHIFTED_1000_MISS = (
    "the shifted copies add about a point at 1,000 labels on these stacks (see the comparison "
    "below), which puts the mean less than a point above the target: a run whose seeds fall "
    "low can miss. More copies (2-pixel shifts, all eight neighbours) did not help in a one-seed "
    "exploration.")
SEMI_1000_MISS = (
    "semi-supervised fine-tuning adds about half a point over supervised fine-tuning on the same "
    "stacks and labels. One-seed explorations outside this benchmark (more passes, loss weights, "
    "dropout, pseudo-labels, consistency, self-training, flips, weight averaging, longer "
    "pretraining) each moved it by less than the spread between seeds; four 1-pixel-shifted "
    "copies of the labelled images close it (the *semi_shifted* section).")
CPU_RECIPE_MISS = (
    "this recipe is sized for 2 cores: 10 greedy and 10 end-to-end Adam epochs and at most 2,000 "
    "DEC steps, against DEC-keras's 300 SGD epochs on 70,000 images and 20,000 steps. The GPU "
    "section runs DEC-keras's recipe with the same estimator and meets the target with DEC. On "
    "seed 0 (explorations outside this benchmark) the long recipe on 2 cores added about a point "
    "and took 48 minutes; more DEC steps or end-to-end epochs of this recipe did not help.")

GENERALISE_MISS = (
    "measured on validation rows only (`python -m benchmarks.stopping_curves`: 54,000 of the "
    "training images fitting, 6,000 scoring, seed 0): the supervised phase stops on the validation cross-entropy, which for SdA-3 of "
    "1,000 units is lowest at epoch 7 (89.4% validation accuracy) while the accuracy rises to "
    "epoch 17 (90.3%); at 1,000 labels epoch 4 (80.5%) against epoch 10 (83.4%). Tried: early "
    "stopping with the recipe chosen on smaller sets (this run), then stopping on validation "
    "accuracy (`scoring=\"accuracy\"`), which lost on the selection sets (0.901 against 0.937, "
    "docs/recipe_selection.md) and so is an option, not the default. The previous fixed "
    "50-epoch schedule reached 90.15% on seed 0.")

MISS_REASONS = {
    # Before the "1,000 labels" key, which these targets' text contains too.
    "SdA-3 (default recipe) >": GENERALISE_MISS,
    "all labels, pretrained": (
        "the margin over a plain MLP is small on this dataset; dropout 0.3 with a cosine-decayed "
        "rate over 30 epochs is the best schedule a one-seed exploration found."),
    # Before the plain rows, whose text these targets also contain.
    "1,000 labels, pretrained network, semi-supervised, shifted": SHIFTED_1000_MISS,
    "1,000 labels, pretrained network, supervised fine-tuning, shifted": SHIFTED_1000_MISS,
    "shifted copies of the labelled images": (
        "the shifted copies lift the random-init control as much as the pretrained network (see "
        "the comparison below), so part of what they add is what pretraining adds."),
    "random init, semi-supervised": _semi_gap_miss,
    "1,000 labels, pretrained network, semi-supervised": SEMI_1000_MISS,
    "supervised fine-tuning >= 83%": (
        "the classical constant-rate SGD schedule trains more slowly than Adam; it is measured "
        "for the gap it shows at 100 labels, not as the best recipe."),
    "random init, supervised fine-tuning": (
        "the classical schedule's control is the weaker one, so this gap is the larger."),
    "minus random init": (
        "with Adam and Glorot initialisation the random-init control trains well even from 100 "
        "images, so pretraining mostly supplies a starting point Adam does not need. With the SdA "
        "papers' schedule (SGD, momentum 0.9) the gap is over 40 points (the semi section), so "
        "the 10 points hold against a slow optimiser, not against Adam."),
    "100 labels, pretrained network": (
        "with 100 images the network over-fits them whatever its start; early stopping on a "
        "held-out split is the first thing to try."),
    "1,000 labels": (
        "no corruption, activation or schedule of the sweep closes it alone, nor did the "
        "semi-supervised objectives tried (the semi section); shifted copies of the labelled "
        "images do (the *semi_shifted* section, same stacks and labels)."),
    # Before the short recipe's reason, whose text N2D's target contains too.
    "UMAP of that code": _n2d_miss,
    "(short CPU recipe": CPU_RECIPE_MISS,
    "autoencoder + k-means (tiedae, 10-d code)": _dec_keras_kmeans_miss,
    "k-means on the code": _sda_kmeans_miss,
}


def miss_reason(what, payload):
    """The explanation of a missed target: the first `MISS_REASONS` key found in its text."""
    why = next((why for key, why in MISS_REASONS.items() if key in what), None)
    return why(payload) if callable(why) else why
