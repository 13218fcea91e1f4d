"""The user-facing error every entry point turns into exit code 2 (kept free of imports, so any
module may raise it)."""


class ConfigError(ValueError):
    """A user-facing configuration problem; the message names the bad value and valid choices."""
