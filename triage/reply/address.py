"""Acknowledge stage, addresses: how a sender's address is compared, and whether a reply could
reach it. Pure; the standard library only (``triage.reply.policy`` and
``triage.reply.identity`` build on it).
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f\"(),:;<>\[\]\\]")  # O'Brien is fine


def envelope_address(value: str) -> str:
    """An envelope address as replied to: trimmed, unbracketed, lower-case, not unwrapped."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value.lower()


def normalise_sender(address: str) -> str:
    """An address as compared and replied to: trimmed, unbracketed, lower-case, unwrapped.

    Unwraps SRS (``SRS0=hash=tt=domain=local@forwarder``, ``SRS1=hash=fwd==hash=tt=domain=
    local@forwarder``) and BATV (``prvs=tag=local@domain``, ``btv1==tag==local@domain``).
    Plus-tags are kept: ``ann+stories@`` and ``ann@`` may be different mailboxes.
    """
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    address = address.lower()
    for _ in range(4):  # wrappers can nest (SRS around BATV); each pass removes one
        unwrapped = _unwrap(address)
        if unwrapped == address:
            break
        address = unwrapped
    return address


def _unwrap(address: str) -> str:
    local, _, domain = address.rpartition("@")
    tag = local[:5]
    if tag in ("srs0=", "srs0+", "srs0-") or (tag in ("srs1=", "srs1+", "srs1-") and "==" in local):
        rest = local.split("==", 1)[1] if tag.startswith("srs1") else local[5:]
        parts = rest.split("=", 3)  # hash, timestamp, original domain, original local part
        if len(parts) == 4 and parts[2] and parts[3]:
            return f"{parts[3]}@{parts[2]}"
    elif local.startswith(("prvs=", "msprvs1=", "btv1==")):
        parts = local.split("==" if tag == "btv1=" else "=", 2)  # tag, tag value, local part
        if len(parts) == 3 and parts[2]:
            return f"{parts[2]}@{domain}"
    return address


def is_plausible_mailbox(address: str) -> bool:
    """True for one ordinary ``local@domain`` address a reply could reach (not quoted forms)."""
    if not address or len(address) > 254 or address.count("@") != 1 or _FORBIDDEN.search(address):
        return False
    local, _, domain = address.partition("@")
    if not 0 < len(local) <= 64 or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    return _is_plausible_domain(domain)


def _is_plausible_domain(domain: str) -> bool:
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return False
    labels = ascii_domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    return all(_LABEL.fullmatch(label) for label in labels)
