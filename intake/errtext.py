"""Errors as a person reads them: the server's own words, decoded, and a hint where one helps.

Stdlib only. The adapters (``intake.sources.imap``, ``triage.reply.smtp``) use it when they
translate a library's exception, so an operator sees ``[AUTHENTICATIONFAILED] Authentication
failed.``, the
server's text, and not ``b'[AUTHENTICATIONFAILED] …'``, Python's representation of the bytes
that text arrived in (imaplib and imapclient put server responses into exceptions as bytes, or
as the repr of bytes inside a string).
"""

from __future__ import annotations

import ast
import re
import ssl

TLS_HINT = ("the server does not speak TLS on this port; "
            "try security = starttls or the server's TLS port")  # fmt: skip
# A bytes literal as repr() writes it, quotes and escapes included.
_BYTES_REPR = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*\"""")


def describe(err: BaseException) -> str:
    """``Type: text`` for ``err``: its text with every bytes repr decoded, and the TLS hint
    when TLS was spoken to a port that answered in plain text."""
    if err.args and isinstance(err.args[0], bytes):
        text = _decode(err.args[0])
    else:
        text = _BYTES_REPR.sub(_literal, str(err))
    hint = tls_hint(err)
    return f"{type(err).__name__}: {text}" + (f" ({hint})" if hint else "")


def tls_hint(err: BaseException) -> str:
    """The hint for a TLS handshake that met a plain-text server, else ``""``.

    OpenSSL reports ``WRONG_VERSION_NUMBER`` when the first bytes back are not a TLS record:
    an IMAP ``* OK`` or SMTP ``220`` greeting on a port that expects STARTTLS or nothing.
    """
    if isinstance(err, ssl.SSLError) and err.reason == "WRONG_VERSION_NUMBER":
        return TLS_HINT
    return ""


def _literal(match: re.Match[str]) -> str:
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):  # not a well-formed literal after all: leave it
        return match.group(0)
    return _decode(value) if isinstance(value, bytes) else match.group(0)


def _decode(data: bytes) -> str:
    # IMAP responses are ASCII or UTF-8 (RFC 9051); anything else is shown, not fatal.
    return data.decode("utf-8", "replace").strip()
