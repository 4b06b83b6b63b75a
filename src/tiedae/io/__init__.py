"""Data input and atomic output."""

from tiedae.io.atomic import atomic_path, save_keras_model, save_npy, write_json, write_text
from tiedae.io.errors import DataError
from tiedae.io.tables import MATRIX_FORMATS, check_matrix, load_labels, load_matrix

__all__ = [
    "DataError",
    "MATRIX_FORMATS",
    "atomic_path",
    "check_matrix",
    "load_labels",
    "load_matrix",
    "save_keras_model",
    "save_npy",
    "write_json",
    "write_text",
]
