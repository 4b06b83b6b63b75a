"""Gene sets (GMT files) to adjacency matrices for `MaskedLayerAutoencoder`.

A GMT file holds one gene set per line, tab-separated:
`name<TAB>description<TAB>gene1<TAB>gene2...` (the format of MSigDB,
Enrichr and GSEA). Matching a gene-set collection to a data set's features
always leaves some genes out (other identifiers, retired symbols, filtered
genes); these functions report every one of them instead of dropping them
silently.
"""

import dataclasses
import gzip
import os
import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse

from tiedae._validation import check_positive_int


class GeneSet(NamedTuple):
    """One line of a GMT file: the set's name, description and genes (in file order, unique)."""

    name: str
    description: str
    genes: tuple


@dataclasses.dataclass(frozen=True)
class GeneSetReport:
    """What matching gene sets to feature names kept and left out.

    Attributes:
        n_features: Number of feature names (rows of the adjacency).
        n_sets: Number of gene sets read.
        n_kept_sets: Number of sets kept (columns of the adjacency).
        n_connections: Number of non-zeros of the adjacency.
        unknown_genes: Sorted distinct genes named in some set but absent
            from the feature names.
        unknown_by_set: For each set with unknown genes, those genes.
        dropped_sets: Names of the sets with fewer than `min_genes` known
            genes (with the default `min_genes=1`: no known gene at all),
            left out of the adjacency.
        n_unconnected_features: Features in no kept set (all-zero rows).
    """

    n_features: int
    n_sets: int
    n_kept_sets: int
    n_connections: int
    unknown_genes: tuple
    unknown_by_set: dict
    dropped_sets: tuple
    n_unconnected_features: int

    @property
    def n_unknown_genes(self):
        return len(self.unknown_genes)

    def summary(self, max_names=5):
        """A short human-readable description of the match."""
        lines = [
            f"{self.n_kept_sets} of {self.n_sets} gene sets kept, "
            f"{self.n_connections} connections to {self.n_features} features "
            f"({self.n_unconnected_features} features in no kept set)."
        ]
        if self.unknown_genes:
            lines.append(
                f"{self.n_unknown_genes} genes are not among the feature names: "
                f"{_first(self.unknown_genes, max_names)}."
            )
        if self.dropped_sets:
            lines.append(
                f"{len(self.dropped_sets)} gene sets dropped for too few known genes: "
                f"{_first(self.dropped_sets, max_names)}."
            )
        return "\n".join(lines)


class GeneSetAdjacency(NamedTuple):
    """The result of `gene_set_adjacency`: unpack as `adjacency, set_names, report`.

    Attributes:
        adjacency: `scipy.sparse.csr_matrix` of shape `(n_features, n_kept_sets)`,
            1 where a feature belongs to a set.
        set_names: The kept sets' names, one per column.
        report: A `GeneSetReport`.
    """

    adjacency: scipy.sparse.csr_matrix
    set_names: list
    report: GeneSetReport


def _first(names, count):
    shown = ", ".join(map(str, names[:count]))
    return shown + (f", ... ({len(names) - count} more)" if len(names) > count else "")


def read_gmt(path):
    """Read a GMT file (optionally gzipped, `.gz`) into a list of `GeneSet`.

    Blank lines are skipped, as are empty gene fields (trailing tabs); a gene
    listed twice in a set counts once. Raises `ValueError` for a line without
    a description field and for a set name used twice.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return _parse_gmt(handle, path)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise ValueError(
            f"{path}: not a GMT text file ({error}); a GMT file is UTF-8 text, one gene set "
            "per line ('name<TAB>description<TAB>gene...'), optionally gzipped (.gz)."
        ) from None


def _parse_gmt(handle, path):
    gene_sets, seen = [], {}
    for number, line in enumerate(handle, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            raise ValueError(
                f"{path}, line {number}: a GMT line must be "
                "'name<TAB>description<TAB>gene...'; received "
                f"{line[:80]!r}."
            )
        name = fields[0].strip()
        if name in seen:
            raise ValueError(
                f"{path}: gene set {name!r} is defined twice (lines {seen[name]} "
                f"and {number}); set names must be unique."
            )
        seen[name] = number
        genes = dict.fromkeys(g.strip() for g in fields[2:] if g.strip())
        gene_sets.append(GeneSet(name, fields[1].strip(), tuple(genes)))
    return gene_sets


def gene_set_adjacency(
    gene_sets,
    feature_names,
    min_genes=1,
    case_sensitive=True,
    on_unknown="warn",
):
    """Build the `(features, gene sets)` 0/1 adjacency of a gene-set collection.

    Args:
        gene_sets: A list of `GeneSet` (as returned by `read_gmt`) or a mapping
            from set name to a list of genes.
        feature_names: The data's feature names (e.g. `adata.var_names`), one
            per row of the adjacency and per input of the autoencoder.
        min_genes: Sets with fewer known genes than this are left out (and
            listed in `report.dropped_sets`). Default 1: only sets with no
            known gene are dropped.
        case_sensitive: If `False`, genes and feature names are matched
            ignoring case.
        on_unknown: What to do besides filling the report when genes are
            unknown or sets are dropped: `"warn"` (default, a `UserWarning`
            with counts and names), `"raise"` (a `ValueError`) or `"ignore"`.

    Returns:
        A `GeneSetAdjacency` `(adjacency, set_names, report)`; `adjacency`
        is a float32 CSR matrix ready for `MaskedLayerAutoencoder`.
    """
    return _adjacency(gene_sets, feature_names, min_genes, case_sensitive, on_unknown)


def _adjacency(gene_sets, feature_names, min_genes, case_sensitive, on_unknown, stacklevel=3):
    if on_unknown not in ("warn", "raise", "ignore"):
        raise ValueError(
            f"`on_unknown` must be 'warn', 'raise' or 'ignore'; received {on_unknown!r}."
        )
    check_positive_int(min_genes, "min_genes")
    if isinstance(feature_names, str):
        raise ValueError("`feature_names` must be a list of names, not one string.")
    features = [str(name) for name in feature_names]
    if not features:
        raise ValueError("`feature_names` is empty.")
    key = (lambda name: name) if case_sensitive else (lambda name: name.upper())
    row_of = {}
    duplicates = []
    for row, name in enumerate(features):
        if key(name) in row_of:
            duplicates.append(name)
        row_of.setdefault(key(name), row)
    if duplicates:
        raise ValueError(
            f"`feature_names` must be unique{'' if case_sensitive else ' ignoring case'}; "
            f"{len(duplicates)} repeated, e.g. {_first(sorted(set(duplicates)), 5)}. "
            "(For AnnData: `adata.var_names_make_unique()`.)"
        )

    if isinstance(gene_sets, dict):
        sets = [GeneSet(str(n), "", tuple(dict.fromkeys(map(str, g)))) for n, g in gene_sets.items()]
    else:
        sets = [GeneSet(*s) if not isinstance(s, GeneSet) else s for s in gene_sets]

    rows, cols, set_names, dropped = [], [], [], []
    unknown, unknown_by_set = set(), {}
    for gene_set in sets:
        known_rows = []
        missing = []
        for gene in dict.fromkeys(gene_set.genes):
            row = row_of.get(key(gene))
            if row is None:
                missing.append(gene)
            else:
                known_rows.append(row)
        known_rows = sorted(set(known_rows))  # case folding can merge genes
        if missing:
            unknown.update(missing)
            unknown_by_set[gene_set.name] = tuple(missing)
        if len(known_rows) < min_genes:
            dropped.append(gene_set.name)
            continue
        rows.extend(known_rows)
        cols.extend([len(set_names)] * len(known_rows))
        set_names.append(gene_set.name)

    adjacency = scipy.sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(len(features), len(set_names)),
    )
    report = GeneSetReport(
        n_features=len(features),
        n_sets=len(sets),
        n_kept_sets=len(set_names),
        n_connections=int(adjacency.nnz),
        unknown_genes=tuple(sorted(unknown)),
        unknown_by_set=unknown_by_set,
        dropped_sets=tuple(dropped),
        n_unconnected_features=int(np.count_nonzero(adjacency.getnnz(axis=1) == 0)),
    )
    if not set_names:
        raise ValueError(
            f"No gene set has {min_genes} or more genes among `feature_names`; check "
            "that they use the same identifiers as the gene sets (symbols or Ensembl "
            "IDs, case).\n" + report.summary()
        )
    if (unknown or dropped) and on_unknown != "ignore":
        message = report.summary() + "\nSee the returned report for the full lists."
        if on_unknown == "raise":
            raise ValueError(message)
        warnings.warn(message, UserWarning, stacklevel=stacklevel)
    return GeneSetAdjacency(adjacency, set_names, report)


def gmt_adjacency(path, feature_names, min_genes=1, case_sensitive=True, on_unknown="warn"):
    """Read a GMT file and build its adjacency: `read_gmt` then `gene_set_adjacency`.

    Example:

    >>> adjacency, set_names, report = gmt_adjacency("h.all.v2024.1.Hs.symbols.gmt", genes)
    >>> print(report.summary())
    >>> layer = MaskedLayerAutoencoder(adjacency, layer_sizes=[16], activation="relu")
    """
    return _adjacency(read_gmt(path), feature_names, min_genes, case_sensitive, on_unknown)
