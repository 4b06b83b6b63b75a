"""The error raised for unusable user data."""


class DataError(ValueError):
    """Input data cannot be used; the message says what is wrong and how to fix it."""
