"""Exceptions for bad user input; the CLI turns them into one-line messages."""


class NeucoError(Exception):
    """Base class of every error neuco_jax raises for bad input or configuration."""


class InputError(NeucoError, ValueError):
    """A data file (labels, submission, exclude list, results) cannot be used as given."""


class ConfigError(NeucoError, ValueError):
    """A configuration key has a missing, unknown or invalid value."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when empty), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
