"""Acknowledge stage, the rate limit's notion of one person: which addresses reach one inbox. Pure.

Imports the standard library and ``triage.reply.address``. Replies still go to the address as
given (``normalise_sender``: a plus-tag may be how a person files our reply); only the
per-sender window is keyed on :func:`mailbox_identity`, so that ``Victim+1@``, ``v.ictim@``
and ``victim@googlemail.com`` count as the one Gmail inbox they all reach.

What is folded, and why no more:

- case, everywhere (local part too: no provider people use treats it as significant);
- SRS and BATV wrappers (``normalise_sender`` already unwraps them);
- ``+tag`` on every domain: ``+`` is the subaddress separator of RFC 5233's examples and of
  Gmail, Microsoft 365/Outlook.com, iCloud, Fastmail, Proton and Postfix/Dovecot defaults. At
  worst two real mailboxes ``ann@`` and ``ann+x@`` on a domain that gives ``+`` no meaning
  share one window: the second gets no acknowledgement for ``per_sender_days``, a small cost
  next to one inbox receiving a reply per variant;
- dots in the local part, and ``googlemail.com``, for Gmail only: elsewhere ``j.smith@`` and
  ``jsmith@`` are routinely different people;
- the domain as IDNA A-labels (``nameprep`` case-folds Unicode): ``BÜCHER.example`` and
  ``bücher.example`` are one domain.

Not folded: ``-tag``. Yahoo's ``base-keyword@`` disposable addresses use a base name chosen
apart from the account's own, so stripping at ``-`` would not reach the inbox's name, and on
every other domain ``mary-jane@`` and ``mary@`` are different people.
"""

from __future__ import annotations

from triage.reply.address import envelope_address, normalise_sender

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
SUBADDRESS_SEPARATOR = "+"


def mailbox_identity(address: str) -> str:
    """The inbox ``address`` reaches, as the per-sender rate limit keys it (see module doc).

    ``mailbox_identity("<V.ictim+26@GoogleMail.com>") == "victim@gmail.com"``. An address
    without ``@`` comes back normalised and otherwise unchanged.
    """
    address = normalise_sender(address)
    local, at, domain = address.rpartition("@")
    if not at:
        return address.casefold()
    local = local.casefold()
    base = local.split(SUBADDRESS_SEPARATOR, 1)[0]
    local = base or local  # "+tag@" alone has no base to fall back on: keep it whole
    domain = _domain(domain)
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _domain(domain: str) -> str:
    """The domain in ASCII (IDNA 2003 ToASCII, which case-folds), or case-folded as it is
    when it is not a valid IDN (a bad sender is suppressed elsewhere; this only keys it)."""
    domain = domain.rstrip(".")  # "example.org." is the same absolute name
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.casefold()


def person_address(address: str) -> str:
    """An address as erasure and subject access find a person by it: ``normalise_sender``
    (case, SRS/BATV unwrapped) with the domain in A-labels, so ``jane@bücher.example`` and
    ``jane@xn--bcher-kva.example`` are one person. Plus-tags and dots are kept: erasing
    ``ann@`` must not take a different person's ``a.nn@`` on a domain that tells them apart.
    """
    return _with_ascii_domain(normalise_sender(address))


def written_address(address: str) -> str:
    """An address exactly as written, up to case and the domain's spelling (A-labels), with
    nothing unwrapped: a withdrawal puts on hold only the stories sent From this very
    address. (An SRS-wrapped From is the wrapper's own address, not the one it names.)"""
    return _with_ascii_domain(envelope_address(address))


def _with_ascii_domain(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local}@{_domain(domain)}" if at else address
