"""Configuration: the shipped file loads, every key is commented, bad input names the key."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from intake.errors import ConfigError
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from story_intake.app_settings import Settings
from story_intake.settings import load_settings, settings_from
from story_intake.themes import DEFAULT_THEMES
from triage.tag.rules import TagSettings

PIPELINE_TOML = Path(__file__).resolve().parents[1] / "config" / "pipeline.toml"
IMAP = {"maildir": "", "host": "imap.example.org", "username": "stories",
        "password_env": "STORY_IMAP_PASSWORD"}  # fmt: skip


def test_config_shipped_file_loads_as_embedded_default() -> None:
    settings = load_settings(PIPELINE_TOML, {}, base=Path("/srv/here"))  # as with no config
    assert isinstance(settings.mailbox, MaildirSettings)
    assert settings.mailbox.maildir == "/srv/here/var/mailbox"
    assert settings.store.url == "sqlite:////srv/here/var/stories.db"
    assert settings.acknowledgement.per_sender_days == 7
    assert settings.intake.workers == 1


def test_config_every_key_has_a_comment_line_above_it() -> None:
    lines = PIPELINE_TOML.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[number - 1].startswith("# "), f"no comment above: {line}"


def test_config_shipped_file_names_every_settings_field() -> None:
    document = tomllib.loads(PIPELINE_TOML.read_text())
    settings = load_settings(PIPELINE_TOML, {})
    for section, table in document.items():
        if section == "mailbox":
            continue
        fields = {
            f.name
            for f in dataclasses.fields(getattr(settings, section))
            if f.metadata.get("toml", True)
        }  # secrets are never in the file
        assert set(table) == fields, section


DERIVED = {("intake", "addresses"), ("smtp", "from_address")}


def test_config_shipped_values_are_the_defaults() -> None:
    # pipeline.toml shows every key "with its default": the two must not drift apart.
    document = tomllib.loads(PIPELINE_TOML.read_text())
    defaults = Settings(mailbox=MaildirSettings(maildir="var/mailbox"))
    loaded = load_settings(PIPELINE_TOML, {})
    for section, table in document.items():
        if section != "mailbox":
            for key, value in table.items():
                expected = getattr(getattr(defaults, section), key)
                if (section, key) in DERIVED:  # "" or []: filled in from the mailbox
                    assert not value and getattr(getattr(loaded, section), key) == expected
                    continue
                assert (tuple(value) if isinstance(value, list) else value) == expected, key


def test_config_shipped_tagger_knobs_are_the_defaults() -> None:
    knobs = tomllib.loads(DEFAULT_THEMES.read_text())["tagger"]
    defaults = TagSettings(themes=())
    for key, value in knobs.items():
        if key != "data_dir":  # resolved against the repository when loaded
            assert getattr(defaults, key) == value, key


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"mailbox": {"maildir": "m", "colour": "blue"}}, "mailbox.colour"),
        ({"store": {"uri": "sqlite://"}, "mailbox": {"maildir": "m"}}, "store.uri"),
        ({"mailbox": {"maildir": "m"}, "digest": {"send_empty": "yes"}}, "digest.send_empty"),
        ({"mailbox": {"maildir": "m"}, "intake": {"workers": -1}}, "intake.workers"),
        ({"mailbox": {"maildir": "m"}, "intake": {"workers": "2"}}, "intake.workers"),
        ({"mailbox": {"maildir": "m", "batch_size": "100"}}, "mailbox.batch_size"),
        ({"mailbox": {"maildir": "m", "batch_size": True}}, "mailbox.batch_size"),
        ({"mailbox": {"maildir": "m"}, "intake": {"addresses": "a@x.org"}}, "intake.addresses"),
        ({"mailbox": {"maildir": "m"}, "intake": {"addresses": [1]}}, "intake.addresses[0]"),
        ({"mailbox": {**IMAP, "security": "tls"}}, "mailbox.security"),
        ({"mailbox": {"maildir": "m"}, "extra": {}}, "[extra]"),
        ({"mailbox": {"maildir": "m", "password": "x"}}, "mailbox.password"),
        ({"mailbox": {"maildir": ""}}, "mailbox.maildir"),
        ({"mailbox": {**IMAP, "maildir": "m"}}, "mailbox.maildir"),
        (
            {"mailbox": {"maildir": "m"}, "smtp": {"from_address": "x@example.net"}},
            "smtp.from_address",
        ),
        (
            {"mailbox": {"maildir": "m"}, "smtp": {"host": "smtp.example.org", "security": "none"}},
            "smtp.security",
        ),
        ({"mailbox": {"maildir": "m"}, "digest": {"schedule": "0 8 * *"}}, "digest.schedule"),
        ({"mailbox": {"maildir": "m"}, "digest": {"schedule": "0 25 * * *"}}, "digest.schedule"),
        ({"mailbox": {"maildir": "m"}, "digest": {"schedule": "0 8 * * 9"}}, "digest.schedule"),
        ({"mailbox": {"maildir": "m"}, "digest": {"timezone": "Europe/Lodnon"}}, "digest.timezone"),
        (
            {"mailbox": {"maildir": "m"}, "digest": {"recipients": ["a@x.org, b@x.org"]}},
            "digest.recipients[0]",
        ),
        ({"mailbox": {"maildir": "m"}, "alerts": {"recipients": ["team"]}}, "alerts.recipients[0]"),
    ],
)
def test_config_bad_document_names_the_key(document: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        settings_from(document, {"STORY_IMAP_PASSWORD": "pw"})


def test_config_missing_secret_names_variable_not_value() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({"mailbox": IMAP}, {"OTHER": "hunter2"})
    assert "STORY_IMAP_PASSWORD" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_config_imap_password_comes_from_environment_and_is_not_in_repr() -> None:
    settings = settings_from({"mailbox": IMAP}, {"STORY_IMAP_PASSWORD": "s3cret-value"})
    assert isinstance(settings.mailbox, ImapSettings)
    assert settings.mailbox.password == "s3cret-value"
    assert "s3cret-value" not in repr(settings)


def test_config_smtp_login_requires_its_secret() -> None:
    smtp = {"host": "smtp.example.org", "username": "stories"}
    with pytest.raises(ConfigError, match=r"smtp\.password_env"):
        settings_from({"mailbox": {"maildir": "m"}, "smtp": smtp}, {})
    relay = {"mailbox": {"maildir": "m"}, "smtp": {"host": "127.0.0.1"}}
    assert settings_from(relay, {}).smtp.password == ""  # a relay without login needs none


@pytest.mark.parametrize("host", ["imap.example.org", "192.0.2.10", "10.1.2.3"])
def test_config_plaintext_refused_off_loopback(host: str) -> None:
    document = {"mailbox": {**IMAP, "host": host, "security": "none"}}
    with pytest.raises(ConfigError, match=r"mailbox\.security"):
        settings_from(document, {"STORY_IMAP_PASSWORD": "pw"})
    allowed = {"mailbox": {**document["mailbox"], "allow_insecure": True}}
    assert settings_from(allowed, {"STORY_IMAP_PASSWORD": "pw"}).mailbox.security == "none"  # type: ignore[union-attr]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.8.9.10"])
def test_config_plaintext_allowed_on_loopback(host: str) -> None:
    document = {"mailbox": {**IMAP, "host": host, "security": "none", "port": 143}}
    assert settings_from(document, {"STORY_IMAP_PASSWORD": "pw"}).mailbox.port == 143  # type: ignore[union-attr]


def test_config_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[mailbox\nmaildir = ")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(path, {})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", {})


@pytest.mark.parametrize("mailbox", [{"maildir": "m"}, IMAP])
def test_config_batch_bytes_is_read_and_must_be_positive(mailbox: dict[str, Any]) -> None:
    env = {"STORY_IMAP_PASSWORD": "pw"}
    settings = settings_from({"mailbox": {**mailbox, "batch_bytes": 5_000_000}}, env)
    assert settings.mailbox.batch_bytes == 5_000_000
    # The loader's rule for every number (greater than 0) speaks first; the settings' own
    # check (at least 1) guards settings built in code.
    with pytest.raises(ConfigError, match=r"mailbox\.batch_bytes must be"):
        settings_from({"mailbox": {**mailbox, "batch_bytes": 0}}, env)
