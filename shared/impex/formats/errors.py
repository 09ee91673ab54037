"""Errors a file can cause; each message tells a person what to do about it."""

from impex.errors import ImpexError


class FileProblem(ImpexError):
    """The file cannot be read as a whole (wrong format, bad encoding, unsafe archive...)."""

    code = "bad_file"
