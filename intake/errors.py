"""The pipeline's exceptions. Each adapter translates its library's errors into one of these
(``raise FetchError(...) from err``), so callers never import a library's exception types."""


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """Bad configuration or a missing secret; the message names the key, never its value."""


class FetchError(PipelineError):
    """The mailbox could not be reached or read; the run aborts and nothing is marked."""


class ParseError(PipelineError):
    """Nothing worth keeping could be read from a message (it is quarantined)."""


class StoreError(PipelineError):
    """The store could not commit; nothing of the batch is marked on the server."""


class SendError(PipelineError):
    """Outgoing mail could not be handed over."""
