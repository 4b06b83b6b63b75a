"""The error raised for unusable user data."""


class DataError(ValueError):
    """Input data cannot be used; the message says what is wrong and how to fix it."""


def read_error(path, what, err, likely="the file may be truncated"):
    """The DataError for `path`, which could not be read as `what` because of `err`.

    `likely` (a guess at the cause) is added only where `err` is what a damaged
    file gives: an error of the operating system (no permission, a folder, ...)
    names its cause itself, and so do refused object arrays.
    """
    message = f"cannot read {path!r} as {what} ({type(err).__name__}: {err})"
    if isinstance(err, OSError) and err.errno is not None:
        return DataError(message + ".")
    if "allow_pickle" in str(err):
        return DataError(message + "; it holds Python objects, refused for safety: save numeric arrays.")
    return DataError(f"{message}; {likely}.")
