import numpy as np
import pytest

from tiedae.io import DataError, load_labels, load_matrix


@pytest.fixture
def matrix(rng):
    return rng.random((6, 4)).astype(np.float32)


def test_npy_round_trip(tmp_path, matrix):
    np.save(tmp_path / "x.npy", matrix)
    X, y, names = load_matrix(tmp_path / "x.npy")
    np.testing.assert_array_equal(X, matrix)
    assert y is None and names is None


def test_npy_memory_mapped(tmp_path, matrix):
    np.save(tmp_path / "x.npy", matrix)
    X, _, _ = load_matrix(tmp_path / "x.npy", mmap=True)
    assert isinstance(X, np.memmap)
    np.testing.assert_array_equal(np.asarray(X), matrix)


def test_npz_with_labels_and_names(tmp_path, matrix):
    np.savez(tmp_path / "d.npz", X=matrix, y=np.arange(6), feature_names=np.array(list("abcd")))
    X, y, names = load_matrix(tmp_path / "d.npz")
    np.testing.assert_array_equal(X, matrix)
    np.testing.assert_array_equal(y, np.arange(6))
    assert names == ["a", "b", "c", "d"]


def test_npz_with_ambiguous_arrays_is_refused(tmp_path, matrix):
    np.savez(tmp_path / "d.npz", a=matrix, b=matrix)
    with pytest.raises(DataError, match="name the features 'X'"):
        load_matrix(tmp_path / "d.npz")


def test_csv_with_header_and_named_label_column(tmp_path):
    (tmp_path / "d.csv").write_text("f1,label,f2\n1.5,cat,2\n3,dog,4.25\n")
    X, y, names = load_matrix(tmp_path / "d.csv", label_column="label")
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, 4.25]])
    assert list(y) == ["cat", "dog"]
    assert names == ["f1", "f2"]


def test_tsv_without_header_and_label_index(tmp_path):
    (tmp_path / "d.tsv").write_text("1\t2\t0\n3\t4\t1\n")
    X, y, names = load_matrix(tmp_path / "d.tsv", label_column=-1)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])
    assert y.dtype.kind == "i" and names is None


def test_csv_non_numeric_cell_names_row_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"'oops' at row 3, column 'b'"):
        load_matrix(tmp_path / "d.csv")


def test_csv_ragged_row(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n3\n")
    with pytest.raises(DataError, match="row 2 has 1 columns"):
        load_matrix(tmp_path / "d.csv")


def test_nan_values_are_counted_and_located(tmp_path, matrix):
    matrix[2, 3] = np.nan
    matrix[4, 0] = np.inf
    np.save(tmp_path / "x.npy", matrix)
    with pytest.raises(DataError, match=r"2 value\(s\) are NaN or infinite \(first at row 2, column 3\)"):
        load_matrix(tmp_path / "x.npy")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.save(p / "x.npy", np.arange(5.0)), "1-D array of length 5"),
        (lambda p: np.save(p / "x.npy", np.zeros((0, 3))), "empty"),
        (lambda p: np.save(p / "x.npy", np.array(["a", "b"]).reshape(1, 2)), "expected numbers"),
        (lambda p: (p / "x.npy").write_bytes(b"\x93NUMPY garbage"), "truncated"),
        (lambda p: (p / "x.npz").write_bytes(b"PK\x03\x04 broken"), "truncated"),
        (lambda p: (p / "x.parquet").write_bytes(b""), "unknown extension"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, make, message):
    make(tmp_path)
    candidates = sorted(tmp_path.glob("x.*")) or [tmp_path / "x.npy"]
    with pytest.raises(DataError, match=message):
        load_matrix(candidates[0])


def test_labels_from_text_with_header_and_length_check(tmp_path):
    (tmp_path / "y.csv").write_text("label\n3\n1\n2\n")
    np.testing.assert_array_equal(load_labels(tmp_path / "y.csv"), [3, 1, 2])
    with pytest.raises(DataError, match="3 labels .* but the data has 4 rows"):
        load_labels(tmp_path / "y.csv", n_rows=4)


def test_labels_from_npy_column_vector(tmp_path):
    np.save(tmp_path / "y.npy", np.array([[1], [0], [1]]))
    np.testing.assert_array_equal(load_labels(tmp_path / "y.npy"), [1, 0, 1])


def test_text_labels_without_header_keep_their_first_label_when_rows_match(tmp_path):
    (tmp_path / "y.txt").write_text("cat\ndog\ncat\n")
    np.testing.assert_array_equal(load_labels(tmp_path / "y.txt", n_rows=3), ["cat", "dog", "cat"])
    # One more row than the data: the first is a header.
    (tmp_path / "h.txt").write_text("animal\ncat\ndog\ncat\n")
    np.testing.assert_array_equal(load_labels(tmp_path / "h.txt", n_rows=3), ["cat", "dog", "cat"])


def test_a_file_that_is_not_npy_is_named_as_such(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"not a numpy file at all")
    with pytest.raises(DataError, match=r"is not a NumPy \.npy file .*numpy\.save"):
        load_matrix(tmp_path / "x.npy")


def test_a_semicolon_separated_csv_is_named_as_such_and_long_cells_are_shortened(tmp_path):
    row = ";".join(["0.5"] * 30)
    (tmp_path / "x.csv").write_text(f"{row}\n{row}\n")
    with pytest.raises(DataError, match="separated by ';'.*convert it") as error:
        load_matrix(tmp_path / "x.csv")
    assert row not in str(error.value) and "..." in str(error.value)


def test_read_errors_add_a_likely_cause_only_where_it_is_one(tmp_path):
    np.savez(tmp_path / "named.npz", a=np.ones((3, 2)), b=np.ones((3, 2)))
    with pytest.raises(DataError) as info:
        load_matrix(tmp_path / "named.npz")
    assert "name the features 'X'" in str(info.value) and "truncated" not in str(info.value)

    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="holds Python objects, refused for safety") as info:
        load_matrix(tmp_path / "objects.npy")
    assert "truncated" not in str(info.value)

    whole = tmp_path / "whole.npz"
    np.savez(whole, X=np.ones((30, 20)))
    (tmp_path / "cut.npz").write_bytes(whole.read_bytes()[:200])
    with pytest.raises(DataError, match="the file may be truncated"):
        load_matrix(tmp_path / "cut.npz")


def test_an_error_of_the_operating_system_names_its_own_cause():
    from tiedae.io.errors import read_error

    message = str(read_error("x.npz", ".npz", PermissionError(13, "Permission denied")))
    assert message == "cannot read 'x.npz' as .npz (PermissionError: [Errno 13] Permission denied)."
    assert str(read_error("x.npz", ".npz", EOFError("no data"))).endswith("; the file may be truncated.")
