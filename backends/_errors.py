"""The error every part of gdnet.backends raises for a library or device this machine lacks."""


class BackendUnavailableError(RuntimeError):
    """The requested array library or device is not usable on this machine."""
