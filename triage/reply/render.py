"""Mail out, the rendering: jinja2 templates into RFC 5322 messages (``triage.reply.smtp``
sends them).

The only module that imports jinja2 (messages are built with the stdlib ``email``); besides it
imports ``intake`` (records, errors) and ``triage.reply.policy`` (Decision, the address check).
Rendering is pure: ``now`` and the settings are arguments. A reply never holds the story's text
or subject: the templates are not given them, so no template edit can leak them. Headers follow
RFC 3834 (``Auto-Submitted``, no ``Precedence``) and the loop convention of
:mod:`triage.acknowledge` (``<ack-…@our-domain>`` Message-IDs, ``X-Loop``).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from intake.errors import ConfigError, SendError
from triage.reply.policy import Decision, is_plausible_mailbox

if TYPE_CHECKING:
    from triage.reply.settings import SmtpSettings

__all__ = [
    "SUBJECTS", "TEMPLATES", "Outgoing", "check_templates", "checked_recipient", "first_name",
    "make_environment", "message_id_for", "our_message_id", "render_acknowledgement",
    "render_team_mail", "render_template",
]  # fmt: skip

# The shipped templates: inside the package when installed, at the checkout's root otherwise.
_TRIAGE = Path(__file__).resolve().parents[1]
_INSIDE = _TRIAGE / "templates"
TEMPLATES = _INSIDE if _INSIDE.is_dir() else _TRIAGE.parent / "templates"
SUBJECTS = {
    "acknowledgement": "Auto: Thank you for sharing your story [{reference}]",
    "acknowledgement_urgent": "Auto: Thank you for sharing your story [{reference}]",
    "withdrawal_confirmation": "Auto: We have received your request [{reference}]",
    "unsubscribe_confirmation": "Auto: You will not get any more emails from us [{reference}]",
    "request_press": "Auto: We have received your press enquiry [{reference}]",
    "request_event": "Auto: We have received your question about an event [{reference}]",
    "request_question": "Auto: We have received your question [{reference}]",
    "request_amend": "Auto: We have received your request to change your story [{reference}]",
}

_REFERENCE = re.compile(r"[A-Z0-9-]{1,32}")
_STORY_MESSAGE_ID = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII but space, < and >
_NAME = re.compile(r"(?:[^\W\d_]+['’-])*[^\W\d_]+")  # Sam, O'Brien, Anne-Marie, Zoë
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _WirePolicy(Compat32):
    """compat32 writing a short ASCII header as it is: most of a reply's headers are, and
    folding each one through ``email.header.Header`` cost a third of rendering a reply.
    Anything longer, or not ASCII, is folded (and RFC 2047-encoded) as compat32 does."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        """The header line, CRLF-terminated."""
        line = f"{name}: {value}"
        if (
            isinstance(value, str)
            and line.isascii()
            and len(line) <= 78
            and not _CONTROL.search(value)
        ):
            return (line + self.linesep).encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _WirePolicy(linesep="\r\n")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A rendered message, ready to hand over; plain values only."""

    message_id: str  # "<ack-<digest of the story_id>@<domain of from_address>>"
    to: str
    data: bytes  # the whole RFC 5322 message, CRLF line endings
    # Envelope: an acknowledgement goes from the null sender to ``to`` alone (the defaults);
    # mail to the team goes from our address to every recipient.
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()


def make_environment(template_dir: Path) -> jinja2.Environment:
    """The template environment: a missing variable is an error; only ``.html`` is escaped."""
    if not template_dir.is_dir():
        raise ConfigError(f"template folder {template_dir} does not exist")
    autoescape = jinja2.select_autoescape(("html",), default_for_string=False, default=False)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir), undefined=jinja2.StrictUndefined,
        autoescape=autoescape, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        auto_reload=False,  # read once a run: no stat of the template for every reply
    )  # fmt: skip


def check_templates(env: jinja2.Environment) -> None:
    """Render every reply template with sample values, so a broken edit stops the program at
    start (ConfigError naming the template) instead of failing every acknowledgement."""
    for urgent in (False, True):  # a request's template shows the help text when urgent
        context = _context("Sam", "ABC-123", "The Team", "team@example.org", "Call 999.",
                           urgent)  # fmt: skip
        for template in SUBJECTS:
            for extension in ("txt", "html"):
                _render(env, f"{template}.{extension}", context)


def render_acknowledgement(
    env: jinja2.Environment,
    decision: Decision,
    story_id: str,
    sender_name: str,
    reference: str,
    settings: SmtpSettings,
    now: datetime,
    *,
    help_text: str,
    team_name: str,
    subjects: Mapping[str, str] = SUBJECTS,
) -> Outgoing:
    """Render the reply ``decision`` asks for, to story ``story_id`` from someone whose
    display name is ``sender_name`` (the greeting), as one message ready to hand over.

    SendError (permanent) when the recipient is not exactly one plain address or the reference
    is not ``[A-Z0-9-]{1,32}``; ConfigError when a template is missing or broken, or the
    sender address, team name or subject could not go in a header.
    """
    if not decision.send or decision.template not in SUBJECTS:
        raise ValueError(f"decision {decision.reason!r} has no reply to render")
    to = checked_recipient(decision.to)
    if not _REFERENCE.fullmatch(reference):
        raise SendError("reference is not [A-Z0-9-]{1,32}", permanent=True)
    if not is_plausible_mailbox(settings.from_address):
        raise ConfigError("smtp.from_address cannot go in a header")
    context = _context(first_name(sender_name), reference, team_name,
                       settings.from_address, help_text, decision.urgent)  # fmt: skip
    message_id = message_id_for(story_id, settings.from_address)
    # replace, not str.format: a subject from config must not reach attributes or indexes.
    subject = subjects.get(decision.template, SUBJECTS[decision.template])
    subject = subject.replace("{reference}", reference)
    parent = _parent_message_id(story_id)
    headers = _common_headers(settings.from_address, team_name, to, subject, message_id, now)
    if parent:  # threads the reply under the story in the sender's mail program
        headers += [("In-Reply-To", parent), ("References", parent)]
    headers.append(("Auto-Submitted", "auto-replied"))  # RFC 3834; no Precedence: it says not to
    text = _render(env, f"{decision.template}.txt", context)
    html = _render(env, f"{decision.template}.html", context)
    return Outgoing(message_id, to, _assemble(headers, text, html))


def _common_headers(
    from_address: str, team_name: str, to: str, subject: str, message_id: str, now: datetime
) -> list[tuple[str, str]]:
    return [("From", formataddr((team_name, from_address), charset="utf-8")), ("To", to),
            ("Subject", subject), ("Date", format_datetime(now)), ("Message-ID", message_id),
            ("X-Auto-Response-Suppress", "All"),  # asks Exchange not to auto-answer us
            ("X-Loop", from_address)]  # fmt: skip


def _assemble(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """The message: ``headers``, then ``text`` and ``html`` as multipart/alternative, UTF-8,
    quoted-printable (7-bit clean, still readable as source), CRLF line endings.

    Built with the compat32 classes: the default policy parses every header we set back into
    an object, which made rendering cost 1.7 ms a reply, most of the acknowledge stage on a
    backlog. The values here are ours and checked.
    """
    # "=" starts the boundary: quoted-printable writes every "=" in a body as "=3D", so the
    # boundary cannot occur in one (and the generator need not search the bodies for it). So
    # the rest need not be secret either: no system call for random bytes per reply.
    boundary = f"=_{random.getrandbits(96):024x}"
    message = MIMEMultipart("alternative", boundary=boundary, policy=_WIRE)
    for name, value in headers:
        if _CONTROL.search(value):
            raise ConfigError(f"the {name} header would hold a control character")
        message[name] = value  # the generator RFC 2047-encodes what is not ASCII
    for subtype, body in (("plain", text), ("html", html)):
        part = MIMENonMultipart("text", subtype, policy=_WIRE)
        part.set_payload(body, _UTF8)
        message.attach(part)
    return message.as_bytes(policy=_WIRE)


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
    name: str, reference: str, team_name: str, team_address: str, help_text: str,
    urgent: bool = False,
) -> dict[str, Any]:  # fmt: skip
    # Deliberately no story, subject or text: a template cannot show what it is not given.
    return {"first_name": name, "reference": reference, "team_name": team_name,
            "team_address": team_address, "help_text": help_text, "urgent": urgent}  # fmt: skip


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """One template rendered on its own (the digest's .html file); ConfigError when broken."""
    return _render(env, name, dict(context))


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as err:  # messages name variables and templates, not values
        raise ConfigError(f"template {name}: {type(err).__name__}: {err.message}") from err


def message_id_for(story_id: str, from_address: str) -> str:
    """Our Message-ID for a story's acknowledgement: the same on every attempt, so a retry is
    recognisably the same message, and ``ack-`` marks replies to it as a loop."""
    return our_message_id("ack", story_id, from_address)


def _parent_message_id(story_id: str) -> str | None:
    """The story's Message-ID in brackets; None for a ``sha256:`` id or one unsafe in a header."""
    if story_id.startswith("sha256:") or "@" not in story_id:
        return None
    bare = story_id.strip("<>")
    return f"<{bare}>" if _STORY_MESSAGE_ID.fullmatch(bare) else None


def render_team_mail(
    env: jinja2.Environment, template: str, context: Mapping[str, Any], *, subject: str,
    to: Sequence[str], message_id: str, settings: SmtpSettings, team_name: str, now: datetime,
) -> Outgoing:  # fmt: skip
    """A message to the team (a digest, an alert) from ``template``.txt and .html.

    ``Auto-Submitted: auto-generated`` (RFC 3834): it is not a reply, and nobody should answer
    it automatically. ConfigError when a template is missing or broken or a header would hold
    a control character; SendError (permanent) when a recipient is not one plain address.
    """
    recipients = tuple(checked_recipient(a) for a in to)
    if not recipients:
        raise SendError("no recipients", permanent=True)
    headers = _common_headers(settings.from_address, team_name, ", ".join(recipients), subject,
                              message_id, now)  # fmt: skip
    headers.append(("Auto-Submitted", "auto-generated"))
    data = _assemble(headers, _render(env, f"{template}.txt", dict(context)),
                     _render(env, f"{template}.html", dict(context)))  # fmt: skip
    return Outgoing(message_id, recipients[0], data,
                    envelope_from=settings.from_address, envelope_to=recipients)  # fmt: skip


def our_message_id(kind: str, key: str, from_address: str) -> str:
    """A Message-ID of ours: ``<kind-<digest of key>@our domain>``, the same for the same key,
    so a resend after a crash is recognisably the same message."""
    domain = from_address.rpartition("@")[2].encode("idna").decode("ascii").lower()
    return f"<{kind}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}@{domain}>"
