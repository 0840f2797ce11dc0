"""The platform's base error for bad settings, at the bottom of the layers so every module can raise it."""


class ConfigurationError(ValueError):
    """A setting of the platform is invalid.

    The message is one sentence naming the setting, its value, where the value came from and what is
    expected. The CLI prints it alone; a run fails with it before any step runs and is never retried.
    Every configuration error the package raises subclasses this one.
    """
