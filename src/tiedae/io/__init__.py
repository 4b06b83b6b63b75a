"""Data input and atomic output."""

from tiedae.io.anndata import load_h5ad, read_h5ad, write_h5ad
from tiedae.io.atomic import atomic_path, save_keras_model, save_npy, write_json, write_text
from tiedae.io.errors import DataError
from tiedae.io.mtx import MatrixMarketData, read_mtx
from tiedae.io.tables import MATRIX_FORMATS, check_matrix, load_labels, load_matrix

__all__ = [
    "DataError",
    "MATRIX_FORMATS",
    "MatrixMarketData",
    "atomic_path",
    "check_matrix",
    "load_h5ad",
    "load_labels",
    "load_matrix",
    "read_h5ad",
    "read_mtx",
    "save_keras_model",
    "save_npy",
    "write_h5ad",
    "write_json",
    "write_text",
]
