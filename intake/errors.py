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
    """Outgoing mail could not be handed over.

    ``permanent`` means this message will never be accepted as it is (the server refused it
    with a 5xx, or it cannot be written safely): give up on it. Otherwise (4xx, timeouts, a
    refused connection, a failed login or TLS handshake) the message is fine and a later run may
    retry. ``code`` is the server's reply code when there was one. The text names codes and
    stages only, never an address or any content, so it is safe to log and store.
    """

    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code

    @property
    def reason_class(self) -> str:
        """What the reply history records of it: the SMTP status class (``smtp_4xx``) when
        the server answered, else ``refused`` (permanent) or ``temporary``; never the text."""
        if self.code:
            return f"smtp_{self.code // 100}xx"
        return "refused" if self.permanent else "temporary"


class TokenError(PipelineError):
    """An OAuth2 access token could not be obtained (a revoked client, a wrong secret, an
    unreachable or untrusted token endpoint). The text names the provider and its error code
    and description, never a token or a secret. The IMAP source turns it into a FetchError,
    SMTP into a SendError that a later run retries."""


class UsageError(PipelineError):
    """The command asked for something that cannot be done as asked (an unknown reference, an
    output folder that is not new or empty); the command line exits 2 and says why."""
