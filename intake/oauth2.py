"""OAuth2 access tokens for IMAP and SMTP: the only module that imports MSAL and google-auth
(and requests, for their HTTP). Imports only ``intake``.

App-only access: the client-credentials grant through MSAL for ``microsoft`` (Entra
``IMAP.AccessAsApp`` / ``SMTP.SendAsApp``) and ``generic`` (MSAL's ``oidc_authority``: discovery
at ``<issuer>/.well-known/openid-configuration``); for ``google`` a service account with
domain-wide delegation acting as the mailbox (google-auth's JWT-bearer grant; the secret is
the service account's JSON key). A token is handed out again only while it has more than five
minutes left (MSAL's own rule, kept for Google too), so it is renewed before it expires and
never used after. Tokens and secrets never reach a log, an exception, ``repr`` or the store:
errors carry the provider's error code and the first line of its description only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import google.auth.exceptions
import msal
import requests
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account

from intake.errors import ConfigError, TokenError

Provider = Literal["microsoft", "google", "generic"]
DEFAULT_SCOPES: dict[str, str] = {
    "microsoft": "https://outlook.office365.com/.default",
    "google": "https://mail.google.com/",
    "generic": "",
}
# Delegated (device_code): the person's own IMAP and SMTP permissions, not the app's.
DELEGATED_SCOPES: dict[str, str] = {
    "microsoft": "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send",
    "google": "",
    "generic": "",
}
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/{tenant}"
_DESCRIPTION_CHARS = 200  # of the provider's error description: its first line, this long
RENEW_BEFORE = timedelta(minutes=5)  # a token with less left is not handed out again


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxAuth:
    """How a mailbox logs in: the ``[mailbox]`` keys ``auth`` (``password`` | ``oauth2``), the
    OAuth2 client's, and ``ca_file``. ImapSettings extends it; ``check_auth`` validates it."""

    auth: Literal["password", "oauth2"] = "password"
    oauth2_provider: Provider = "microsoft"
    # client_credentials: app-only (a client secret); device_code: delegated, a person signs in
    # once with `story-intake authorize` and the refresh token lives in oauth2_token_cache.
    oauth2_flow: Literal["client_credentials", "device_code"] = "client_credentials"
    oauth2_token_cache: str = "var/oauth2-token-cache.json"
    oauth2_authority: str = ""
    oauth2_tenant: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret_env: str = "STORY_OAUTH2_SECRET"
    oauth2_scope: str = ""
    ca_file: str = ""
    # Built by the application from the secret (story_intake.secrets); never from the file.
    tokens: TokenProvider | None = field(
        default=None, repr=False, compare=False, metadata={"toml": False}
    )


def check_auth(box: MailboxAuth, section: str = "mailbox") -> None:
    """ConfigError naming the key when ``auth = "oauth2"`` lacks what its provider needs."""
    if box.auth != "oauth2":
        return
    if not box.oauth2_client_id:
        raise ConfigError(f"{section}.oauth2_client_id must be set when {section}.auth = oauth2")
    if box.oauth2_flow == "device_code":
        _check_delegated(box, section)
    elif not box.oauth2_client_secret_env:
        raise ConfigError(f"{section}.oauth2_client_secret_env must name an environment variable")
    if box.oauth2_provider == "microsoft" and not (box.oauth2_tenant or box.oauth2_authority):
        raise ConfigError(f"{section}.oauth2_tenant must be set for oauth2_provider = microsoft")
    if box.oauth2_provider == "generic" and not box.oauth2_authority:
        raise ConfigError(
            f"{section}.oauth2_authority must be set (the OpenID issuer URL) for "
            "oauth2_provider = generic"
        )
    if box.oauth2_authority and urlsplit(box.oauth2_authority).scheme != "https":
        raise ConfigError(f"{section}.oauth2_authority must be an https:// URL")


def _check_delegated(box: MailboxAuth, section: str) -> None:
    if box.oauth2_provider == "google":
        raise ConfigError(f"{section}.oauth2_flow = device_code is for microsoft and generic "
                          "providers (google: a service account)")  # fmt: skip
    if not box.oauth2_token_cache:
        raise ConfigError(f"{section}.oauth2_token_cache must name a file for device_code")


@dataclass(frozen=True, slots=True)
class OAuth2Settings:
    """One OAuth2 client, resolved: the authority URL, the scope and the secret itself."""

    provider: Provider
    client_id: str
    authority: str
    scope: str
    client_secret: str = field(repr=False)
    ca_file: str = ""
    timeout: float = 15.0
    subject: str = ""  # google: the mailbox the service account acts as
    section: str = "mailbox"  # whose ca_file trusts the token endpoint (named in errors)


def oauth2_settings(
    box: MailboxAuth, secret: str, timeout: float, subject: str = "", section: str = "mailbox"
) -> OAuth2Settings:
    """The client ``box`` describes, with its secret; defaults filled in per provider.
    ``section``: whose ``ca_file`` it is, for errors."""
    authority = box.oauth2_authority
    if not authority and box.oauth2_provider == "microsoft":
        authority = MICROSOFT_AUTHORITY.format(tenant=box.oauth2_tenant)
    scope = box.oauth2_scope or DEFAULT_SCOPES[box.oauth2_provider]
    if not box.oauth2_scope and box.oauth2_flow == "device_code":
        scope = DELEGATED_SCOPES[box.oauth2_provider]
    return OAuth2Settings(box.oauth2_provider, box.oauth2_client_id, authority.rstrip("/"),
                          scope, secret, box.ca_file, timeout, subject, section)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token, when it expires, and whether the provider issued it just now."""

    value: str = field(repr=False)
    expires_at: datetime
    fetched: bool


def xoauth2(user: str, token: AccessToken) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={user}\x01auth=Bearer {token.value}\x01\x01"


class TokenProvider:
    """Access tokens for one client. Thread-safe: the sender thread and the fetch may both ask.

    The MSAL application (its token cache) lives as long as this object: the worker keeps one
    for its life, so passes within a token's lifetime reuse it. A failed discovery is retried
    on the next call, never remembered.
    """

    def __init__(self, settings: OAuth2Settings) -> None:
        self.settings = settings
        self.expires_at: datetime | None = None  # of the last token handed out
        self._app: Any = None
        self._lock = threading.Lock()

    def token(self) -> AccessToken:
        """A token with more than five minutes left; TokenError naming the provider's error."""
        s = self.settings
        with self._lock:
            try:
                token = self._google() if s.provider == "google" else self._msal()
            except requests.RequestException as err:
                raise TokenError(_unreachable(s, err)) from None
            except google.auth.exceptions.TransportError as err:  # it wraps requests' errors
                cause = err.__cause__ or err.__context__
                reason = cause if isinstance(cause, requests.RequestException) else err
                raise TokenError(_unreachable(s, reason)) from None
            except google.auth.exceptions.RefreshError as err:
                raise TokenError(_refused(s, {"error": _first_line(str(err.args[0]), s)})) from None
            except ValueError as err:  # discovery answered but not an issuer; a malformed key
                raise TokenError(f"oauth2 ({s.provider}): {_first_line(str(err), s)}") from None
            self.expires_at = token.expires_at
            return token

    def credential_expiry(self) -> dict[str, datetime]:
        """When this client's long-lived credentials expire, where the provider says so. A
        client-credentials token answer dates neither the secret nor the key: nothing here."""
        return {}

    def _msal(self) -> AccessToken:
        s = self.settings
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                s.client_id, client_credential=s.client_secret,
                http_client=_session(s.ca_file, s.timeout), **msal_authority(s),
            )  # fmt: skip
        result = self._app.acquire_token_for_client(scopes=[s.scope] if s.scope else [])
        if not isinstance(result, dict) or "access_token" not in result:
            raise TokenError(_refused(s, result if isinstance(result, dict) else {}))
        return msal_token(result)

    def _google(self) -> AccessToken:
        s = self.settings
        if self._app is None:
            info = json.loads(s.client_secret)
            if not isinstance(info, dict) or info.get("client_id") != s.client_id:
                raise ValueError("the key is not a service account key of oauth2_client_id")
            self._app = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[s.scope], subject=s.subject)  # fmt: skip
        credentials, fetched = self._app, False
        # google-auth keeps expiry as a naive UTC datetime.
        expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else None
        if credentials.token is None or expiry is None or expiry - datetime.now(UTC) < RENEW_BEFORE:
            credentials.refresh(GoogleRequest(_session(s.ca_file, s.timeout)))
            expiry, fetched = credentials.expiry.replace(tzinfo=UTC), True
        return AccessToken(str(credentials.token), expiry, fetched)


class _CaSession(requests.Session):
    """A requests session that trusts exactly ``ca_file`` (when set) and times out.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's ``verify``
    (psf/requests#3829) unless ``trust_env`` is off, which would also drop the proxy settings;
    so the environment is merged as usual and ``verify`` is put back afterwards. The timeout
    goes in the same way: what this returns becomes ``send``'s arguments, and MSAL passes none.
    """

    def __init__(self, ca_file: str, timeout: float) -> None:
        super().__init__()
        self._ca_file = ca_file
        self._timeout = timeout

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        if self._ca_file:
            merged["verify"] = self._ca_file
        merged["timeout"] = self._timeout
        return merged


def msal_authority(s: OAuth2Settings) -> dict[str, str]:
    """MSAL's authority argument: an OpenID issuer (discovery) for ``generic``, else the
    provider's authority URL."""
    return {"oidc_authority" if s.provider == "generic" else "authority": s.authority}


def msal_token(result: dict[str, Any]) -> AccessToken:
    """The access token in an MSAL answer that has one, with its expiry; ``fetched`` unless
    MSAL answered from its cache."""
    expires_in = timedelta(seconds=int(result.get("expires_in", 0)))
    return AccessToken(str(result["access_token"]), datetime.now(UTC) + expires_in,
                       result.get("token_source") != "cache")  # fmt: skip


def _session(ca_file: str, timeout: float) -> requests.Session:
    return _CaSession(ca_file, timeout)


def _refused(s: OAuth2Settings, result: dict[str, Any]) -> str:
    error = str(result.get("error") or "no access_token in the answer")
    description = _first_line(str(result.get("error_description") or ""), s)
    return f"oauth2 ({s.provider}) refused the client: {error}" + (
        f": {description}" if description else "")  # fmt: skip


def _unreachable(s: OAuth2Settings, err: Exception) -> str:
    host = urlsplit(s.authority).hostname or s.provider
    what = type(err).__name__
    if isinstance(err, requests.exceptions.SSLError):
        key = "ca_file" if s.ca_file else "ca_file (not set: the system's CAs)"
        what += f": certificate not trusted or TLS failed ({s.section}.{key})"
    return f"oauth2 ({s.provider}): cannot get a token from {host}: {what}"


def _first_line(text: str, s: OAuth2Settings) -> str:
    """The first line of a provider's text (Entra appends trace and correlation ids), capped;
    the secret blanked should a provider ever echo it."""
    line = (text.strip().splitlines() or [""])[0][:_DESCRIPTION_CHARS]
    return line.replace(s.client_secret, "***") if s.client_secret else line
