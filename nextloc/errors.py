"""The errors nextloc raises on bad input, so callers can tell them from bugs."""


class NextlocError(Exception):
    """Base class: a problem with the user's input or configuration, stated in one message."""


class DataError(NextlocError):
    """The data files are missing, malformed, or give an empty split."""


class ConfigError(NextlocError):
    """An unknown model or experiment name, a bad option, or a model over the parameter budget."""
