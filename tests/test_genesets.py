"""Gene sets from GMT files to adjacency matrices: parsing, matching and reporting."""

import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import tiedae
from tiedae.genesets import GeneSet, gene_set_adjacency, gmt_adjacency, read_gmt

GMT = Path(__file__).parent / "data" / "pathways.gmt"
FEATURES = [
    "TP53", "MDM2", "CDKN1A", "BAX", "MYC", "MAX",
    "KRAS", "BRAF", "MAP2K1", "MAPK1", "EGFR", "GAPDH", "ACTB",
]  # fmt: skip


def test_read_gmt_parses_names_descriptions_and_genes():
    assert tiedae.gmt_adjacency is gmt_adjacency and tiedae.GeneSetReport is not None
    sets = read_gmt(GMT)
    assert [s.name for s in sets] == [
        "P53_SIGNALING", "MYC_TARGETS", "MAPK_CASCADE", "OLFACTORY", "HOUSEKEEPING",
    ]  # fmt: skip
    assert sets[0] == GeneSet(
        "P53_SIGNALING", "http://example.org/p53", ("TP53", "MDM2", "CDKN1A", "BAX", "GADD45A")
    )
    # A gene listed twice counts once; a trailing tab adds no empty gene.
    assert sets[1].genes == ("MYC", "MAX", "NPM1")
    assert sets[2].genes == ("KRAS", "BRAF", "MAP2K1", "MAPK1", "EGFR")
    assert sets[4] == GeneSet("HOUSEKEEPING", "", ("GAPDH",))


def test_gmt_adjacency_matches_features_and_reports_what_it_left_out():
    with pytest.warns(UserWarning) as caught:
        adjacency, set_names, report = gmt_adjacency(GMT, FEATURES)
    message = str(caught[0].message)
    assert "4 genes are not among the feature names" in message
    assert "GADD45A" in message and "OLFACTORY" in message
    assert caught[0].filename == __file__  # points at the caller

    assert scipy.sparse.issparse(adjacency) and adjacency.format == "csr"
    assert adjacency.dtype == np.float32
    assert set_names == ["P53_SIGNALING", "MYC_TARGETS", "MAPK_CASCADE", "HOUSEKEEPING"]
    expected = np.zeros((len(FEATURES), 4), np.float32)
    members = {
        0: ["TP53", "MDM2", "CDKN1A", "BAX"],
        1: ["MYC", "MAX"],
        2: ["KRAS", "BRAF", "MAP2K1", "MAPK1", "EGFR"],
        3: ["GAPDH"],
    }
    for column, genes in members.items():
        for gene in genes:
            expected[FEATURES.index(gene), column] = 1.0
    np.testing.assert_array_equal(adjacency.toarray(), expected)

    assert report.unknown_genes == ("GADD45A", "NPM1", "OR1A1", "OR2B6")
    assert report.n_unknown_genes == 4
    assert report.unknown_by_set == {
        "P53_SIGNALING": ("GADD45A",),
        "MYC_TARGETS": ("NPM1",),
        "OLFACTORY": ("OR1A1", "OR2B6"),
    }
    assert report.dropped_sets == ("OLFACTORY",)
    assert (report.n_sets, report.n_kept_sets, report.n_features) == (5, 4, 13)
    assert report.n_connections == 12
    assert report.n_unconnected_features == 1  # ACTB


def test_on_unknown_raise_and_ignore():
    with pytest.raises(ValueError, match="GADD45A"):
        gmt_adjacency(GMT, FEATURES, on_unknown="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjacency, _, report = gmt_adjacency(GMT, FEATURES, on_unknown="ignore")
    # Ignoring the warning still fills the report.
    assert report.n_unknown_genes == 4 and adjacency.shape == (13, 4)
    with pytest.raises(ValueError, match="on_unknown"):
        gmt_adjacency(GMT, FEATURES, on_unknown="drop")


def test_no_warning_when_everything_matches():
    sets = {"A": ["x", "y"], "B": ["y", "z"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjacency, names, report = gene_set_adjacency(sets, ["x", "y", "z"])
    np.testing.assert_array_equal(adjacency.toarray(), [[1, 0], [1, 1], [0, 1]])
    assert names == ["A", "B"] and report.unknown_genes == () and report.dropped_sets == ()


def test_min_genes_and_case_insensitive_matching():
    sets = {"big": ["a", "B", "c"], "small": ["a"], "upper": ["A", "b"]}
    with pytest.warns(UserWarning, match="small"):
        adjacency, names, report = gene_set_adjacency(sets, ["a", "b", "c"], min_genes=2)
    assert names == ["big"] and report.dropped_sets == ("small", "upper")
    assert report.unknown_genes == ("A", "B")

    adjacency, names, report = gene_set_adjacency(
        sets, ["a", "b", "c"], case_sensitive=False, on_unknown="raise"
    )
    np.testing.assert_array_equal(adjacency.toarray(), [[1, 1, 1], [1, 0, 1], [1, 0, 0]])


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="feature_names.*unique.*MYC"):
        gmt_adjacency(GMT, ["MYC", "TP53", "MYC"])
    with pytest.raises(ValueError, match="No gene set has"):
        gene_set_adjacency({"A": ["q"]}, ["x"], on_unknown="ignore")
    with pytest.raises(ValueError, match="min_genes"):
        gene_set_adjacency({"A": ["x"]}, ["x"], min_genes=0)

    twice = tmp_path / "twice.gmt"
    twice.write_text("S\td\ta\nT\td\tb\nS\td\tc\n")
    with pytest.raises(ValueError, match=r"'S' is defined twice \(lines 1 and 3\)"):
        read_gmt(twice)
    no_description = tmp_path / "short.gmt"
    no_description.write_text("S\td\ta\nJUST_A_NAME\n")
    with pytest.raises(ValueError, match="line 2"):
        read_gmt(no_description)


def test_gzipped_and_windows_line_endings(tmp_path):
    crlf = tmp_path / "crlf.gmt"
    crlf.write_bytes(GMT.read_bytes().replace(b"\n", b"\r\n"))
    packed = tmp_path / "pathways.gmt.gz"
    with open(GMT, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert read_gmt(crlf) == read_gmt(GMT) == read_gmt(packed)


def test_read_gmt_refuses_binary_files_in_plain_words(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(3.0))
    with pytest.raises(ValueError, match="not a GMT text file.*UTF-8 text"):
        read_gmt(tmp_path / "x.npy")
    (tmp_path / "sets.gmt.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a GMT text file"):
        read_gmt(tmp_path / "sets.gmt.gz")
