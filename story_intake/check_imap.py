"""``story-intake check``, the mailbox over IMAP: DNS, TCP, TLS, authentication, the folder,
its PERMANENTFLAGS, the capabilities and the processed folder, in that order. Each step is a
function of the ``Probe`` that returns what it found or raises ``Failed``."""

from __future__ import annotations

import socket

from intake.errors import ConfigError, FetchError, TokenError
from intake.errtext import tls_hint
from intake.sources.imap import ImapSettings
from intake.sources.imap_probe import ImapProbe
from story_intake.check_base import Failed, Probe, asked
from story_intake.secrets import with_secrets


def _imap(state: Probe) -> ImapSettings:
    box = state.settings.mailbox
    assert isinstance(box, ImapSettings)  # checks_for lists these for IMAP only
    return box


def dns(state: Probe) -> str:
    box = _imap(state)
    try:
        found = socket.getaddrinfo(box.host, box.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise Failed(f"{box.host} does not resolve ({err})",
                     "check [mailbox] host: `getent hosts HOST` must find it") from err  # fmt: skip
    addresses = sorted({str(info[4][0]) for info in found})
    return f"{box.host} → {', '.join(addresses)}"


def tcp(state: Probe) -> str:
    box = _imap(state)
    try:
        with socket.create_connection((box.host, box.port), timeout=box.connect_timeout):
            pass
    except OSError as err:
        raise Failed(f"{box.host}:{box.port}: {type(err).__name__}",
                     "check [mailbox] host and port, and that the server and every firewall "
                     "between let this machine connect") from err  # fmt: skip
    return f"{box.host}:{box.port} accepts connections"


def tls(state: Probe) -> str:
    box = _imap(state)
    state.imap = ImapProbe(box)
    try:
        certificate = state.imap.connect()
    except FetchError as err:
        hint = tls_hint(err.__cause__) if err.__cause__ else ""
        raise Failed(str(err), hint or "check [mailbox] security (ssl: port 993, starttls: "
                     "143) and that the certificate names the host and is signed by a CA this "
                     "machine trusts") from err  # fmt: skip
    if certificate is None:
        return f"not used (security = {box.security}); the server greeted"
    expiry = "no expiry given"
    if certificate.expires_at is not None:
        days = (certificate.expires_at - state.now).days
        expiry = f"expires {certificate.expires_at:%Y-%m-%d} (in {days} days)"
    return (f"{box.security}, verified: subject {certificate.subject}, issuer "
            f"{certificate.issuer}, {expiry}")  # fmt: skip


def authentication(state: Probe) -> str:
    box, imap = _imap(state), state.imap
    assert imap is not None  # tls passed
    variable = box.oauth2_client_secret_env if box.auth == "oauth2" else box.password_env
    try:  # the password, or an OAuth2 client with its secret, as the worker gets them
        ready = with_secrets(state.settings, state.environ, ("mailbox",)).mailbox
    except ConfigError as err:
        raise Failed(str(err), f"export {variable or 'the variable'} with the mailbox's "
                     f"{'client secret' if box.auth == 'oauth2' else 'password'}, as the "
                     "worker's environment does") from err  # fmt: skip
    assert isinstance(ready, ImapSettings)
    imap.settings = box = ready
    try:
        mechanism = imap.login()
    except (FetchError, TokenError) as err:
        hint = ("check [mailbox] oauth2_client_id, the secret and the app's mailbox permission"
                if box.auth == "oauth2" else
                f"check [mailbox] username and the password in ${box.password_env}; Microsoft "
                '365 and Google refuse passwords: use auth = "oauth2"')  # fmt: skip
        raise Failed(str(err), hint) from err
    return f"logged in as {box.username} with {mechanism}{_token_said(box)}"


def _token_said(box: ImapSettings) -> str:
    """For OAuth2: which flow gave the token and when it expires (never the token)."""
    if box.auth != "oauth2" or box.tokens is None:
        return ""
    expires = getattr(box.tokens, "expires_at", None)
    until = f", token expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    return f" ({box.oauth2_provider}, {box.oauth2_flow.replace('_', ' ')} token{until})"


def folder(state: Probe) -> str:
    box, imap = _imap(state), state.imap
    assert imap is not None
    state.folder = info = asked(lambda: imap.folder(box.folder))
    if not info.exists:
        raise Failed(f"no folder {box.folder!r}",
                     "set [mailbox] folder to an existing folder (INBOX always is)")  # fmt: skip
    return f"{box.folder} exists"


def permanent_flags(state: Probe) -> str:
    box, info = _imap(state), state.folder
    assert info is not None
    if info.can_keyword:
        return "$Triaged can be stored: stored messages are marked"
    if box.processed_folder:
        return (f"$Triaged cannot be stored ({' '.join(info.permanent_flags) or 'no flags'}); "
                f"stored messages are moved to {box.processed_folder} instead")  # fmt: skip
    raise Failed("the folder keeps no $Triaged keyword: nothing on the server shows what was "
                 "stored (the UID checkpoint still prevents duplicates)",
                 "set [mailbox] processed_folder, so stored messages are moved there")  # fmt: skip


def capabilities(state: Probe) -> str:
    box, imap = _imap(state), state.imap
    assert imap is not None
    offered = asked(imap.capabilities)
    has = {name: name in offered for name in ("MOVE", "UIDPLUS", "IDLE")}
    listed = ", ".join(f"{name} {'yes' if yes else 'no'}" for name, yes in has.items())
    if box.processed_folder and not (has["MOVE"] or has["UIDPLUS"]):
        raise Failed(f"{listed}: the processed folder needs MOVE or UIDPLUS",
                     "leave [mailbox] processed_folder empty on this server")  # fmt: skip
    idle = ("new mail within seconds" if has["IDLE"] else
            f"polling every {state.settings.schedule.poll_seconds}s")  # fmt: skip
    return f"{listed} ({idle})"


def processed_folder(state: Probe) -> str:
    box, imap = _imap(state), state.imap
    assert imap is not None
    if not box.processed_folder:
        return "not set: stored messages stay in the folder"
    if asked(lambda: imap.folder(box.processed_folder)).exists:
        return f"{box.processed_folder} exists"
    return f"{box.processed_folder} does not exist yet: the first pass creates it"
