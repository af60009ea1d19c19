"""SMTP's OAuth2 client (``[smtp] auth = "oauth2"``), resolved from ``[smtp]``'s own
``oauth2_*`` keys with ``[mailbox]``'s for those left unset.

Each channel gets a token provider of its own (``story_intake.secrets``): its own MSAL
application and token cache, so a client that is revoked or whose secret is wrong fails only
its own channel (zammad#3294: one failing token stopped every channel). The one exception is
a delegated (device_code) client that ``[smtp]`` inherits whole: one person's sign-in lives in
one token cache file, and two providers refreshing it at once would lose a rotated refresh
token, so that provider is shared.
"""

from __future__ import annotations

from intake.oauth2 import MailboxAuth, check_auth
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from triage.reply.settings import SmtpSettings

# The [smtp] keys that override [mailbox]'s; "" means inherit.
CLIENT_KEYS = ("oauth2_provider", "oauth2_authority", "oauth2_tenant", "oauth2_client_id",
               "oauth2_client_secret_env", "oauth2_scope")  # fmt: skip


def owns_client(smtp: SmtpSettings) -> bool:
    """Whether ``[smtp]`` sets any OAuth2 client key of its own."""
    return any(getattr(smtp, key) for key in CLIENT_KEYS)


def smtp_client(smtp: SmtpSettings, mailbox: ImapSettings | MaildirSettings) -> MailboxAuth:
    """The OAuth2 client SMTP logs in with: ``[smtp]``'s keys, ``[mailbox]``'s (or their
    defaults, for a Maildir) where ``[smtp]`` leaves one unset. A client of SMTP's own is
    app-only (client_credentials); only an inherited client keeps ``[mailbox]``'s flow. The
    token endpoint is trusted through the ``ca_file`` of the section it comes from
    (``ca_section``)."""
    base = mailbox if isinstance(mailbox, ImapSettings) else MailboxAuth()
    values = {key: getattr(smtp, key) or getattr(base, key) for key in CLIENT_KEYS}
    flow = "client_credentials" if owns_client(smtp) else base.oauth2_flow
    ca_file = smtp.ca_file if ca_section(smtp, mailbox) == "smtp" else base.ca_file
    return MailboxAuth(auth="oauth2", oauth2_flow=flow,
                       oauth2_token_cache=base.oauth2_token_cache, ca_file=ca_file,
                       **values)  # fmt: skip


def ca_section(smtp: SmtpSettings, mailbox: ImapSettings | MaildirSettings) -> str:
    """Whose ``ca_file`` trusts SMTP's token endpoint: ``[smtp]``'s when it names the
    endpoint itself (provider, authority or tenant) or there is no IMAP mailbox to inherit
    from, else ``[mailbox]``'s (the same endpoint the mailbox's client already trusts)."""
    own = smtp.oauth2_provider or smtp.oauth2_authority or smtp.oauth2_tenant
    return "smtp" if own or not isinstance(mailbox, ImapSettings) else "mailbox"


def check_smtp_client(smtp: SmtpSettings, mailbox: ImapSettings | MaildirSettings) -> None:
    """ConfigError naming the key when SMTP's resolved OAuth2 client lacks what its provider
    needs (the key may be set in ``[smtp]`` or inherited from ``[mailbox]``)."""
    check_auth(smtp_client(smtp, mailbox), "smtp")


def secret_section(smtp: SmtpSettings) -> str:
    """Which section names the client secret's variable: ``[smtp]``'s own, or ``[mailbox]``'s."""
    return "smtp" if smtp.oauth2_client_secret_env else "mailbox"


def shares_mailbox_provider(smtp: SmtpSettings, client: MailboxAuth) -> bool:
    """Whether SMTP must use ``[mailbox]``'s provider: an inherited delegated sign-in (one
    token cache file has one writer)."""
    return client.oauth2_flow == "device_code" and not owns_client(smtp)
