"""Domain errors that the gRPC interceptor and the gateway turn into proper status codes."""


class InvalidInput(ValueError):
    """The caller sent something we refuse (INVALID_ARGUMENT / HTTP 422)."""


class NotReady(RuntimeError):
    """The model or index is not loaded (yet); retry later (UNAVAILABLE / HTTP 503)."""


class ConfigError(RuntimeError):
    """A file or setting on this machine is unusable; the message says how to fix it."""
