"""Mail out, the hand-over: smtplib to a relay, or the pickup folder (the embedded default).

The only module that imports smtplib. Refusals become SendError with the reply code and the
RFC 3463 status only, never the server's text (it can echo addresses).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SendError, TokenError
from intake.errtext import tls_hint
from intake.network import is_loopback
from intake.oauth2 import xoauth2
from triage.reply.pickup import write_pickup

if TYPE_CHECKING:
    from triage.reply.render import Outgoing
    from triage.reply.settings import SmtpSettings

_ENHANCED_STATUS = re.compile(rb"\s*([245]\.\d{1,3}\.\d{1,3})\b")


def send(
    outgoing: Outgoing, settings: SmtpSettings, connection: SmtpConnection | None = None
) -> None:
    """Hand ``outgoing`` over: over SMTP when ``settings.host`` is set (through ``connection``
    when given, else a connection of its own), otherwise into the pickup folder."""
    if not settings.host:
        write_pickup(outgoing, Path(settings.pickup_dir))
    elif connection is not None:
        connection.send(outgoing)
    else:
        with SmtpConnection(settings) as own:
            own.send(outgoing)


class SmtpConnection:
    """One SMTP session reused for many messages: opened on the first send, closed on exit.
    Every step (connect, greeting, each reply) waits at most ``[smtp] timeout`` seconds.

    ``ssl`` and ``starttls`` verify the server's certificate (``ssl.create_default_context``).
    After a lost connection the next send opens a new one.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> smtplib.SMTP:
        """The session, connected (and logged in) now if it is not; SendError when the server
        cannot be reached, so a caller can stop before touching any message."""
        return self._client or self._open()

    def send(self, outgoing: Outgoing) -> None:
        """Send one message; SendError (``permanent`` for a 5xx about it) when it is refused."""
        client = self.open()
        try:
            # RFC 3834 3.3: an automatic reply goes from the null sender unless a relay refuses it.
            envelope = self._settings.envelope_sender
            if outgoing.envelope_from is not None:
                envelope = outgoing.envelope_from
            client.sendmail(envelope, list(outgoing.envelope_to or [outgoing.to]), outgoing.data)
        except smtplib.SMTPRecipientsRefused as err:
            code, reply = next(iter(err.recipients.values()), (0, b""))
            self._forget_if_closed()
            raise _refused("recipient", code, reply) from err
        except smtplib.SMTPResponseException as err:  # sender refused, data refused
            self._forget_if_closed()
            raise _refused("message", err.smtp_code, err.smtp_error) from err
        except OSError as err:  # disconnects, timeouts, TLS errors (smtplib's errors are OSErrors)
            self._drop()
            raise SendError(f"smtp send: {type(err).__name__}") from err

    def close(self) -> None:
        """Say QUIT if the server is still there, and drop the connection."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except OSError:
                client.close()

    def _open(self) -> smtplib.SMTP:
        settings = self._settings
        if settings.security == "none" and settings.username and not is_loopback(settings.host):
            raise SendError("smtp: refusing to send a password without TLS to a remote host")
        # ca_file: exactly these CAs (SSL_CERT_FILE and SSL_CERT_DIR are then not consulted).
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        try:
            if settings.security == "ssl":
                self._client = smtplib.SMTP_SSL(settings.host, settings.port, context=context,
                                                timeout=settings.timeout)  # fmt: skip
            else:
                self._client = smtplib.SMTP(settings.host, settings.port,
                                            timeout=settings.timeout)  # fmt: skip
            if settings.security == "starttls":
                self._client.starttls(context=context)
                self._client.ehlo()  # RFC 3207: forget what was said before TLS
            if settings.username:
                self._log_in(self._client)
        except TokenError as err:
            self._drop()
            raise SendError(f"smtp login: {err}") from None
        except OSError as err:
            self._drop()
            # A session that cannot start is never this message's fault: retry, not give up.
            code = err.smtp_code if isinstance(err, smtplib.SMTPResponseException) else None
            hint = f" ({tls_hint(err)})" if tls_hint(err) else ""
            raise SendError(f"smtp connect: {type(err).__name__} {code or ''}".rstrip() + hint,
                            code=code) from err  # fmt: skip
        return self._client

    def _log_in(self, client: smtplib.SMTP) -> None:
        """LOGIN/PLAIN with the password, or AUTH XOAUTH2 with a token of SMTP's own client."""
        settings = self._settings
        if settings.auth != "oauth2":
            client.login(settings.username, settings.password)
            return
        xoauth2_login(client, settings)

    def _drop(self) -> None:
        # No QUIT: the server is gone or hung, and a polite goodbye would wait another timeout.
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _forget_if_closed(self) -> None:
        # smtplib closes the socket itself on a 421; the next send must reconnect.
        if self._client is not None and self._client.sock is None:
            self._client = None


def xoauth2_login(client: smtplib.SMTP, settings: SmtpSettings) -> None:
    """AUTH XOAUTH2 as ``settings.username`` with a token of ``settings.tokens`` (SMTP's own
    OAuth2 client); TokenError when no token can be had (nothing was sent to the server)."""
    if settings.tokens is None:
        raise SendError("smtp.auth = oauth2 but no token provider was set up")
    response = xoauth2(settings.username, settings.tokens.token())
    # On a refusal the server sends a 334 challenge (an error description): answer it with
    # an empty line, as the XOAUTH2 protocol asks, to get the final 535.
    client.ehlo_or_helo_if_needed()
    client.auth("XOAUTH2", lambda challenge=None: response if challenge is None else "")


def _refused(stage: str, code: int, reply: bytes | str) -> SendError:
    """The error for a refusal: the code and RFC 3463 status only (the text may echo addresses)."""
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED_STATUS.match(raw)
    status = f" {match.group(1).decode()}" if match else ""
    return SendError(f"smtp {stage} refused: {code}{status}", permanent=code >= 500, code=code)


@dataclass(frozen=True, slots=True)
class ProbeStep:
    """One step of ``probe``: ``connect``, ``starttls`` or ``auth``, whether it worked, and
    what to say about it (codes and exception types only, never the server's text)."""

    name: str
    ok: bool
    detail: str


def probe(settings: SmtpSettings) -> list[ProbeStep]:
    """Connect, STARTTLS and log in as a send would, sending nothing (``check``): one step
    each, ending at the first that fails."""
    steps: list[ProbeStep] = []
    client: smtplib.SMTP | None = None
    stage = "connect"
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(settings.host, settings.port,
                                      context=_context(settings),
                                      timeout=settings.timeout)  # fmt: skip
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        steps.append(ProbeStep(stage, True, f"{settings.host}:{settings.port} answered"))
        stage = "starttls"
        steps.append(ProbeStep(stage, True, _starttls(client, settings)))
        stage = "auth"
        steps.append(ProbeStep(stage, True, _auth(client, settings)))
    except OSError as err:
        code = err.smtp_code if isinstance(err, smtplib.SMTPResponseException) else None
        hint = f" ({tls_hint(err)})" if tls_hint(err) else ""
        steps.append(ProbeStep(stage, False, f"{type(err).__name__} {code or ''}".rstrip() + hint))
    except (TokenError, SendError) as err:  # the provider's one line, never a token
        steps.append(ProbeStep(stage, False, str(err)))
    finally:
        if client is not None:
            with contextlib.suppress(OSError):
                client.quit()
    return steps


def _starttls(client: smtplib.SMTP, settings: SmtpSettings) -> str:
    if settings.security != "starttls":
        return f"not used (security = {settings.security})"
    client.starttls(context=_context(settings))
    client.ehlo()
    version = client.sock.version() if isinstance(client.sock, ssl.SSLSocket) else "TLS"
    return f"{version}, certificate verified"


def _auth(client: smtplib.SMTP, settings: SmtpSettings) -> str:
    if not settings.username:
        return "no username: the relay is used without logging in"
    if settings.security == "none" and not is_loopback(settings.host):
        raise smtplib.SMTPException("refusing to send a password without TLS to a remote host")
    if settings.auth == "oauth2":  # SMTP's own client, as the sending does
        xoauth2_login(client, settings)
        expires = settings.tokens.expires_at if settings.tokens else None
        until = f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
        return f"logged in with XOAUTH2 (a token of [smtp]'s OAuth2 client{until})"
    client.login(settings.username, settings.password)
    return "logged in with the password (AUTH)"


def _context(settings: SmtpSettings) -> ssl.SSLContext:
    # ca_file: exactly these CAs, as the sending trusts (``SmtpConnection._open``).
    return ssl.create_default_context(cafile=settings.ca_file or None)
