"""Acknowledge stage, the mail-out adapter: render with jinja2, hand over with smtplib.

The only module that imports jinja2 and smtplib (messages are built with the stdlib ``email``);
besides them it imports ``intake`` (records, errors, ``is_loopback``), ``triage.acknowledge``
(Decision, the address check) and ``triage.pickup`` (the embedded default: .eml files).
Rendering is pure: ``now`` and the settings are arguments. A reply never holds the story's text
or subject: the templates are not given them, so no template edit can leak them. Headers follow
RFC 3834 (``Auto-Submitted``, no ``Precedence``) and the loop convention of
:mod:`triage.acknowledge` (``<ack-…@our-domain>`` Message-IDs, ``X-Loop``).
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from intake.errors import ConfigError, SendError
from intake.fetch import is_loopback
from intake.records import Story
from triage.acknowledge import Decision, is_plausible_mailbox
from triage.pickup import write_pickup

if TYPE_CHECKING:
    from config.settings import SmtpSettings

__all__ = [
    "DEFAULT_TIMEOUT", "SUBJECTS", "Outgoing",
    "SmtpConnection", "check_templates", "checked_recipient", "first_name", "make_environment",
    "render_acknowledgement", "send", "write_pickup",
]  # fmt: skip

DEFAULT_TIMEOUT = 30.0  # seconds per SMTP operation; SmtpSettings has no timeout key (yet)
SUBJECTS = {
    "acknowledgement": "Auto: Thank you for sharing your story [{reference}]",
    "acknowledgement_urgent": "Auto: Thank you for sharing your story [{reference}]",
    "withdrawal_confirmation": "Auto: We have received your request [{reference}]",
}

_REFERENCE = re.compile(r"[A-Z0-9-]{1,32}")
_STORY_MESSAGE_ID = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII but space, < and >
_NAME = re.compile(r"(?:[^\W\d_]+['’-])*[^\W\d_]+")  # Sam, O'Brien, Anne-Marie, Zoë
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENHANCED_STATUS = re.compile(rb"\s*([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A rendered message, ready to hand over; plain values only."""

    message_id: str  # "<ack-<digest of the story_id>@<domain of from_address>>"
    to: str
    data: bytes  # the whole RFC 5322 message, CRLF line endings


def make_environment(template_dir: Path) -> jinja2.Environment:
    """The template environment: a missing variable is an error; only ``.html`` is escaped."""
    if not template_dir.is_dir():
        raise ConfigError(f"template folder {template_dir} does not exist")
    autoescape = jinja2.select_autoescape(("html",), default_for_string=False, default=False)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir), undefined=jinja2.StrictUndefined,
        autoescape=autoescape, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )  # fmt: skip


def check_templates(env: jinja2.Environment) -> None:
    """Render every reply template with sample values, so a broken edit stops the program at
    start (ConfigError naming the template) instead of failing every acknowledgement."""
    context = _context("Sam", "ABC-123", "The Team", "team@example.org", "Call 999.")
    for template in SUBJECTS:
        for extension in ("txt", "html"):
            _render(env, f"{template}.{extension}", context)


def render_acknowledgement(
    env: jinja2.Environment,
    decision: Decision,
    story: Story,
    reference: str,
    settings: SmtpSettings,
    now: datetime,
    *,
    help_text: str,
    team_name: str,
    subjects: Mapping[str, str] = SUBJECTS,
) -> Outgoing:
    """Render the reply ``decision`` asks for as one message, ready to hand over.

    SendError (permanent) when the recipient is not exactly one plain address or the reference
    is not ``[A-Z0-9-]{1,32}``; ConfigError when a template is missing or broken, or the
    sender address or team name could not go in a header.
    """
    if not decision.send or decision.template not in SUBJECTS:
        raise ValueError(f"decision {decision.reason!r} has no reply to render")
    to = checked_recipient(decision.to)
    if not _REFERENCE.fullmatch(reference):
        raise SendError("reference is not [A-Z0-9-]{1,32}", permanent=True)
    if not is_plausible_mailbox(settings.from_address) or _CONTROL.search(team_name):
        raise ConfigError("smtp.from_address or the team name cannot go in a header")
    context = _context(first_name(story.sender.name), reference, team_name,
                       settings.from_address, help_text)  # fmt: skip
    message_id = message_id_for(story.story_id, settings.from_address)
    # replace, not str.format: a subject from config must not reach attributes or indexes.
    subject = subjects.get(decision.template, SUBJECTS[decision.template])
    subject = subject.replace("{reference}", reference)
    parent = _parent_message_id(story.story_id)
    message = _headers(to, subject, message_id, parent, settings.from_address, team_name, now)
    message.set_content(_render(env, f"{decision.template}.txt", context))
    message.add_alternative(_render(env, f"{decision.template}.html", context), subtype="html")
    return Outgoing(message_id, to, message.as_bytes())


def _headers(
    to: str, subject: str, message_id: str, parent: str | None, from_address: str,
    team_name: str, now: datetime,
) -> EmailMessage:  # fmt: skip
    message = EmailMessage(policy=SMTP)
    message["From"] = HeaderAddress(team_name, addr_spec=from_address)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = now
    message["Message-ID"] = message_id
    if parent:  # threads the reply under the story in the sender's mail program
        message["In-Reply-To"] = parent
        message["References"] = parent
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834; no Precedence: it says not to
    message["X-Auto-Response-Suppress"] = "All"  # asks Exchange not to auto-answer us
    message["X-Loop"] = from_address
    return message


def first_name(display_name: str) -> str:
    """The name to greet someone by, or "" when the display name does not look like a name.

    Only letters joined by apostrophes or hyphens pass: anything else (an address, a URL, markup)
    gets the plain "Hello," greeting, because a forged From could otherwise put a phishing line
    into a reply that goes to someone else.
    """
    name = " ".join(display_name.split())
    before, comma, after = name.partition(",")
    if comma:  # "Okafor, Sam" as directories write it; "Sam Okafor, Nurse" as people do
        name = after.strip() if " " not in before.strip() else before
    words = [word for word in name.split(" ") if word.rstrip(".").lower() not in _TITLES]
    if not words or len(words[0]) > 40 or not _NAME.fullmatch(words[0]):
        return ""
    return words[0].capitalize() if words[0].isupper() and len(words[0]) > 1 else words[0]


def checked_recipient(address: str) -> str:
    """``address`` if it is exactly one plain ASCII mailbox (domain IDNA-encoded); otherwise
    SendError (permanent): header injection and extra recipients must be impossible."""
    if any(c in address for c in "\r\n,;") or not is_plausible_mailbox(address):
        raise SendError("recipient is not exactly one plain address", permanent=True)
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise SendError("recipient needs SMTPUTF8, which is not supported", permanent=True)
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _context(
    name: str, reference: str, team_name: str, team_address: str, help_text: str
) -> dict[str, Any]:
    # Deliberately no story, subject or text: a template cannot show what it is not given.
    return {"first_name": name, "reference": reference, "team_name": team_name,
            "team_address": team_address, "help_text": help_text}  # fmt: skip


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as err:  # messages name variables and templates, not values
        raise ConfigError(f"template {name}: {type(err).__name__}: {err.message}") from err


def message_id_for(story_id: str, from_address: str) -> str:
    """Our Message-ID for a story's acknowledgement: the same on every attempt, so a retry is
    recognisably the same message, and ``ack-`` marks replies to it as a loop."""
    domain = from_address.rpartition("@")[2].encode("idna").decode("ascii").lower()
    return f"<ack-{hashlib.sha256(story_id.encode('utf-8')).hexdigest()[:24]}@{domain}>"


def _parent_message_id(story_id: str) -> str | None:
    """The story's Message-ID in brackets; None for a ``sha256:`` id or one unsafe in a header."""
    if story_id.startswith("sha256:") or "@" not in story_id:
        return None
    bare = story_id.strip("<>")
    return f"<{bare}>" if _STORY_MESSAGE_ID.fullmatch(bare) else None


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

    ``ssl`` and ``starttls`` verify the server's certificate (``ssl.create_default_context``).
    After a lost connection the next send opens a new one.
    """

    def __init__(self, settings: SmtpSettings, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._settings = settings
        self._timeout = timeout
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, outgoing: Outgoing) -> None:
        """Send one message; SendError (``permanent`` for a 5xx about it) when it is refused."""
        client = self._client or self._open()
        try:
            # RFC 3834 3.3: an automatic reply goes from the null sender unless a relay refuses it.
            envelope = self._settings.envelope_sender
            client.sendmail(envelope, [outgoing.to], outgoing.data)
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
        context = ssl.create_default_context()
        try:
            if settings.security == "ssl":
                self._client = smtplib.SMTP_SSL(settings.host, settings.port,
                                                timeout=self._timeout, context=context)  # fmt: skip
            else:
                self._client = smtplib.SMTP(settings.host, settings.port, timeout=self._timeout)
            if settings.security == "starttls":
                self._client.starttls(context=context)
                self._client.ehlo()  # RFC 3207: forget what was said before TLS
            if settings.username:
                self._client.login(settings.username, settings.password)
        except OSError as err:
            self._drop()
            # A session that cannot start is never this message's fault: retry, not give up.
            code = err.smtp_code if isinstance(err, smtplib.SMTPResponseException) else None
            raise SendError(f"smtp connect: {type(err).__name__} {code or ''}".rstrip(),
                            code=code) from err  # fmt: skip
        return self._client

    def _drop(self) -> None:
        # No QUIT: the server is gone or hung, and a polite goodbye would wait another timeout.
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _forget_if_closed(self) -> None:
        # smtplib closes the socket itself on a 421; the next send must reconnect.
        if self._client is not None and self._client.sock is None:
            self._client = None


def _refused(stage: str, code: int, reply: bytes | str) -> SendError:
    """The error for a refusal: the code and RFC 3463 status only (the text may echo addresses)."""
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED_STATUS.match(raw)
    status = f" {match.group(1).decode()}" if match else ""
    return SendError(f"smtp {stage} refused: {code}{status}", permanent=code >= 500, code=code)
