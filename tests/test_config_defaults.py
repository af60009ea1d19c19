"""Configuration for a first hour without traps: partial files inherit the documented
defaults, the mailbox's own address is derived from its username, numbers must be positive,
and no shape of TOML gets past the loader as anything but a one-line ConfigError."""

from __future__ import annotations

import json
import logging
import math
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, DovecotServer, Mailbox, story_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.errors import ConfigError
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from story_intake.addresses import address_warnings
from story_intake.cli import main
from story_intake.settings import load_settings, settings_from

PIPELINE_TOML = Path(__file__).resolve().parents[1] / "config" / "pipeline.toml"
ENV = {"STORY_IMAP_PASSWORD": "pw"}
TEAM = "team@example.net"


def test_config_partial_file_inherits_the_documented_defaults() -> None:
    imap = settings_from({"mailbox": {"host": "imap.example.net", "username": TEAM}}, ENV)
    assert isinstance(imap.mailbox, ImapSettings)
    assert imap.mailbox.password_env == "STORY_IMAP_PASSWORD" and imap.mailbox.password == "pw"
    assert imap.mailbox.port == 993 and imap.mailbox.folder == "INBOX"
    for document in ({}, {"mailbox": {}}, {"acknowledgement": {"enabled": False}}):
        embedded = settings_from(document, {})
        assert isinstance(embedded.mailbox, MaildirSettings)
        assert embedded.mailbox.maildir == "var/mailbox"
    with pytest.raises(ConfigError, match=r"mailbox\.username"):
        settings_from({"mailbox": {"host": "imap.example.net"}}, ENV)


def readme_mailbox_config(tmp_path: Path, username: str = TEAM) -> Path:
    """The shipped pipeline.toml with only [mailbox] changed, as README's "Using a real
    mailbox" says."""
    text = PIPELINE_TOML.read_text()
    changed = (text.replace('maildir = "var/mailbox"', 'maildir = ""')
               .replace('host = ""', 'host = "imap.example.net"', 1)
               .replace('username = ""', f'username = "{username}"', 1))  # fmt: skip
    assert changed.count(username) == 1  # the first host/username are [mailbox]'s
    path = tmp_path / "pipeline.toml"
    path.write_text(changed)
    return path


def test_config_own_addresses_default_to_the_mailbox_username(tmp_path: Path) -> None:
    settings = load_settings(readme_mailbox_config(tmp_path, "Team@Example.net"), ENV)
    assert settings.intake.addresses == (TEAM,)
    assert settings.smtp.from_address == TEAM
    assert address_warnings(settings) == []
    given_ = {"mailbox": {"host": "imap.example.net", "username": TEAM},
              "intake": {"addresses": ["stories@example.org", TEAM]}}  # fmt: skip
    explicit = settings_from(given_, ENV)
    assert explicit.intake.addresses == ("stories@example.org", TEAM)
    assert explicit.smtp.from_address == "stories@example.org"  # the first of them


def test_config_warns_at_start_when_the_mailbox_address_is_not_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = readme_mailbox_config(tmp_path)
    text = config.read_text().replace("addresses = []", 'addresses = ["other@example.net"]')
    config.write_text(text.replace("[store]", f'[store]\nurl = "sqlite:///{tmp_path}/s.db"', 1)
                      .replace('url = "sqlite:///var/stories.db"\n', ""))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert main(["--config", str(config), "status"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("mailbox.username is not among intake.addresses" in w for w in warnings)
    assert not any(TEAM in w or "other@example.net" in w for w in warnings)  # keys, not values
    nameless = settings_from({"mailbox": {"host": "imap.example.net", "username": "team"}}, ENV)
    assert address_warnings(nameless) and "intake.addresses" in address_warnings(nameless)[0]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("mailbox", "batch_size", 0), ("mailbox", "port", 0), ("mailbox", "connect_timeout", 0.0),
     ("mailbox", "read_timeout", -5.0), ("mailbox", "max_message_bytes", -1),
     ("smtp", "port", -25), ("smtp", "timeout", 0.0), ("acknowledgement", "per_sender_days", 0),
     ("acknowledgement", "max_age_days", -1), ("acknowledgement", "max_per_hour", -1),
     ("schedule", "poll_seconds", 0), ("schedule", "poll_seconds", -300),
     ("alerts", "after_failures", 0), ("retention", "raw_days", 0),
     ("retention", "outbox_days", -30), ("mailbox", "read_timeout", math.nan),
     ("smtp", "timeout", math.inf)],
)  # fmt: skip
def test_config_zero_or_negative_numbers_are_refused_naming_the_key(
    section: str, key: str, value: float
) -> None:
    mailbox: dict[str, Any] = {"host": "imap.example.net", "username": TEAM}
    document: dict[str, Any] = {"mailbox": mailbox, section: {key: value}}
    if section == "mailbox":
        document["mailbox"] = {**mailbox, key: value}
    with pytest.raises(ConfigError, match=re.escape(f"{section}.{key}")):
        settings_from(document, ENV)
    assert settings_from({"intake": {"workers": 0}}, {}).intake.workers == 0  # 0: documented
    paused = settings_from({"acknowledgement": {"max_per_hour": 0}}, {})  # 0: hold every reply
    assert paused.acknowledgement.max_per_hour == 0


@pytest.mark.parametrize(
    ("text", "named"),
    [("[[mailbox]]\nmaildir = 'a'\n[[mailbox]]\nmaildir = 'b'\n", "[[mailbox]]"),
     ("mailbox = 3\n", "[mailbox]"), ("mailbox = 'var/mailbox'\n", "[mailbox]"),
     ("[[smtp]]\nhost = 'a'\n", "[[smtp]]"), ("smtp = []\n", "smtp"),
     ("[intake]\naddresses = {a = 1}\n", "intake.addresses"),
     ("[mailbox]\nport = 1979-05-27\n", "mailbox.port")],
)  # fmt: skip
def test_config_wrong_shapes_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(text)
    assert main(["--config", str(config), "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: ") and err.count("\n") == 1 and named in err, err


KNOWN = tomllib.loads(PIPELINE_TOML.read_text())
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(), st.text(max_size=30), st.sampled_from(["", "var/x", "127.0.0.1", "none",
                                                        "ssl", TEAM, "0 8 * * *"]),
    st.dates(), st.datetimes(),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """TOML-shaped documents, mostly of the real sections and keys with values of any type."""
    document: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*KNOWN, "extra"]), max_size=5, unique=True)):
        known = list(KNOWN.get(section, {})) or ["x"]
        keys = draw(st.lists(st.sampled_from([*known, "colour"]), max_size=4, unique=True))
        table = {key: draw(VALUES) for key in keys}
        document[section] = draw(st.sampled_from([table, [table, table], table, "x", 1]))
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_config_any_document_loads_or_is_a_config_error(document: dict[str, Any]) -> None:
    try:
        settings_from(document, ENV)
    except ConfigError as err:
        assert "\n" not in str(err)


def test_config_readme_real_mailbox_acknowledges_mail_to_it(
    tmp_path: Path, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # README's "Using a real mailbox", literally: only [mailbox] changes in the shipped file.
    box = Mailbox(dovecot, f"stories-{uuid.uuid4().hex[:8]}@example.org")
    text = PIPELINE_TOML.read_text()
    mailbox = (f'[mailbox]\nmaildir = ""\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
               f'security = "none"\nusername = "{box.user}"\n'
               'password_env = "STORY_IMAP_PASSWORD"\nfolder = "INBOX"\n')  # fmt: skip
    config = tmp_path / "pipeline.toml"
    rest = text[text.index("[smtp]") :]  # its var/ folders moved under tmp_path, nothing else
    rest = rest.replace('"var/', f'"{tmp_path}/var/').replace("///var/", f"///{tmp_path}/var/")
    config.write_text(mailbox + rest)
    message = story_message(1).replace(b"To: stories@example.org", f"To: {box.user}".encode())
    box.append(message)
    monkeypatch.setenv("STORY_IMAP_PASSWORD", PASSWORD)
    assert main(["--config", str(config), "once", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["stored"] == 1 and counts["acknowledged"] == 1, counts
    (reply,) = (tmp_path / "var" / "outbox").glob("*.eml")
    assert f"<{box.user}>" in reply.read_text().split("\nTo:")[0]  # from_address: derived too
