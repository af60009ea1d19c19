"""The test suite's only conftest. Real servers on loopback, never mocks.

Fixtures:
- ``dovecot`` (session): a real Dovecot IMAP server (Debian package dovecot-imapd) started from
  ``tests/dovecot.conf.in`` on a free 127.0.0.1 port. A missing binary fails the run.
- ``own_dovecot`` (function): a private Dovecot the test may stop and restart.
- ``dovecot_without_move`` (session): a Dovecot that does not advertise MOVE.
- ``mailbox`` (function): a fresh IMAP user on ``dovecot`` (the static passdb takes any name), so
  every test starts with an empty INBOX; helpers to append and read flags.
- ``imap_settings`` (function): a factory of Settings pointing at a mailbox and a fresh store.
- ``maildir_settings`` (function): Settings for the embedded default in ``tmp_path``.
- ``corpus`` (session): the real-world mail in ``../shared/corpus`` (or ``$STORY_CORPUS``);
  skips with the reason when neither exists.
- ``now``: a fixed aware UTC instant.
- ``smtp_sink`` (function): an aiosmtpd SMTP server on a free 127.0.0.1 port that keeps every
  message and refuses on request (``fail_next(451)``, ``reject(address, 550)``).
- ``tagger`` (session): the theme tagger for the shipped themes.toml: the model shipped in
  triage/tag/model (or, when stale, one trained from triage/tag/data into var/model).
Helpers: ``story_message()`` builds a synthetic story email as bytes; ``nested_message()`` one
nested many multiparts deep; ``seed_maildir()`` delivers messages into a Maildir;
``maildir_config()`` writes a pipeline.toml for the embedded default inside a test's folder.
"""

from __future__ import annotations

import collections
import contextlib
import grp
import mailbox as stdlib_mailbox
import os
import pwd
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from imapclient import IMAPClient

from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from intake.store.engine import StoreSettings
from story_intake.app_settings import IntakeSettings, Settings
from story_intake.themes import DEFAULT_THEMES, load_themes
from triage.reply.settings import SmtpSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from intake.store.engine import Store
    from story_intake.web.settings import ReviewSettings
    from triage.tag.tagger import Tagger

TESTS = Path(__file__).resolve().parent
FUZZ_COUNTS = pytest.StashKey[Counter[str]]()  # filled by test_fuzz, printed in the summary
FAULT_TALLY = pytest.StashKey[dict[str, Counter[str]]]()  # filled by test_faults, likewise
PASSWORD = "secret"
# Parse and tag in the test's own process (a worker pool takes seconds to start, and faults
# injected with monkeypatch would not reach it); test_run_once covers [intake] workers.
IN_PROCESS = IntakeSettings(workers=0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DovecotServer:
    """A Dovecot master process in the foreground, with its own config, mail and logs."""

    def __init__(self, extra_config: str = "") -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not os.access(binary, os.X_OK):
            pytest.fail("dovecot not found: install the Debian package dovecot-imapd (make test)")
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="story-dovecot-"))
        self.base.chmod(0o755)  # the mail processes run as an unprivileged user
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self.base / "dovecot.conf"
        self._write_config(extra_config)

    def _write_config(self, extra_config: str) -> None:
        user, group = _service_user()
        template = (TESTS / "dovecot.conf.in").read_text()
        text = template.replace("@BASE@", str(self.base)).replace("@PORT@", str(self.port))
        text = text.replace("@USER@", user).replace("@GROUP@", group)
        self.config.write_text(text + extra_config)
        for sub in ("mail", "home"):
            (self.base / sub).mkdir(exist_ok=True)
            shutil.chown(self.base / sub, user, group)

    def start(self) -> None:
        """Start the master and wait until a login succeeds."""
        # Its own session, so stop() can end the imap children too: they outlive the master.
        command = [self.binary, "-F", "-c", str(self.config)]
        self.process = subprocess.Popen(command, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dovecot exited at start: {self.log_tail()}")
            try:
                with self.client("probe"):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"dovecot did not accept logins within 20 s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the master and every process it started, dropping open connections."""
        if self.process is None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.05)

    def remove(self) -> None:
        """Stop and delete everything the server wrote."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    @contextlib.contextmanager
    def client(self, user: str) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient for ``user``."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        try:
            client.login(user, PASSWORD)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def log_tail(self) -> str:
        log = self.base / "dovecot.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _service_user() -> tuple[str, str]:
    if os.geteuid() == 0:
        return "dovecot", "dovecot"
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Mailbox:
    """One fresh IMAP user on a Dovecot server, with helpers tests use to set the scene."""

    def __init__(self, server: DovecotServer, user: str) -> None:
        self.server = server
        self.user = user

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        """APPEND messages in order (each gets the next UID)."""
        with self.server.client(self.user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for data in messages:
                client.append(folder, data)

    def flags(self, folder: str = "INBOX") -> dict[int, set[bytes]]:
        """UID -> flags of every message in ``folder``."""
        with self.server.client(self.user) as client:
            client.select_folder(folder, readonly=True)
            rows = client.fetch("1:*", ["FLAGS"]) if client.search() else {}
            return {uid: set(row[b"FLAGS"]) for uid, row in rows.items()}

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.server.client(self.user) as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def delete_folder(self, folder: str) -> None:
        with self.server.client(self.user) as client:
            client.delete_folder(folder)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def dovecot_without_move() -> Iterator[DovecotServer]:
    # Advertise no MOVE after login, so the COPY + UID EXPUNGE fallback is exercised.
    server = DovecotServer("imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS\n")
    server.start()
    yield server
    server.remove()


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Mailbox:
    return Mailbox(dovecot, f"user-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def imap_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(box: Mailbox, **mailbox_overrides: Any) -> Settings:
        imap = ImapSettings(
            host="127.0.0.1", port=box.server.port, security="none", username=box.user,
            password_env="STORY_TEST_IMAP_PASSWORD", password=PASSWORD, connect_timeout=5,
            read_timeout=10, **mailbox_overrides,
        )  # fmt: skip
        return Settings(mailbox=imap, store=StoreSettings(f"sqlite:///{tmp_path}/stories.db"),
                        smtp=SmtpSettings(pickup_dir=str(tmp_path / "outbox")),
                        intake=IN_PROCESS)  # fmt: skip

    return make


@pytest.fixture
def maildir_settings(tmp_path: Path) -> Settings:
    return Settings(
        mailbox=MaildirSettings(maildir=str(tmp_path / "mailbox")),
        store=StoreSettings(f"sqlite:///{tmp_path}/stories.db"),
        smtp=SmtpSettings(pickup_dir=str(tmp_path / "outbox")),
        intake=IN_PROCESS,
    )


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = Path(os.environ.get("STORY_CORPUS") or TESTS.parents[1] / "shared" / "corpus")
    if not (path / "MANIFEST.tsv").exists():
        pytest.skip(f"real-world corpus not found at {path} (set STORY_CORPUS to its folder)")
    return path


@pytest.fixture(scope="session")
def tagger() -> Tagger:
    from triage.tag.tagger import load_tagger  # here: the benchmark's pipeline runs import conftest

    return load_tagger(load_themes(DEFAULT_THEMES))


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def story_message(
    n: int, *, message_id: str | None = "", body: str = "", sender: str = "",
    date: str = "Tue, 24 Nov 2026 09:00:00 +0000", **headers: str,
) -> bytes:  # fmt: skip
    """A synthetic story email; message_id "" means a fresh one, None means no header."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender or f"Person {n} <person{n}@example.org>"
    msg["To"] = "stories@example.org"
    msg["Subject"] = f"My story number {n}"
    msg["Date"] = date
    if message_id is not None:
        msg["Message-ID"] = message_id or f"<story-{n}-{uuid.uuid4().hex[:8]}@example.org>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(
        body
        or f"Story {n}. I had to tell the GP, the hospital and the council the same "
        "thing three times before anyone listened.\n"
    )
    return msg.as_bytes()


def nested_message(depth: int) -> bytes:
    """A message nested ``depth`` multiparts deep, written as text (the stdlib generator itself
    recurses too deeply to write one)."""
    body = "Content-Type: text/plain\n\nThe deepest part says: my GP never got the letter.\n"
    for level in reversed(range(depth)):
        boundary = f"b{level}"
        body = (f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
                f"--{boundary}\n{body}\n--{boundary}--\n")  # fmt: skip
    head = "From: deep@example.org\nMessage-ID: <deep@example.org>\nMIME-Version: 1.0\n"
    return (head + body).encode()


class SmtpSink:
    """An aiosmtpd handler that keeps every message it accepts and refuses on request.

    ``messages`` holds (mail_from, rcpt_tos, data); ``peers`` the client's (host, port) for
    each, so ``connections`` counts the SMTP sessions that delivered. ``fail_next(code)``
    answers the next RCPT (or DATA, with ``at="data"``) with ``code``; ``reject(address, code)``
    answers every RCPT to ``address``. ``on_message`` runs once a message is kept, before the
    reply goes back. AUTH is offered without TLS (loopback only) and accepts
    ``SINK_USER`` with ``PASSWORD``; ``logins`` records who logged in.
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[tuple[str, tuple[str, ...], bytes]] = []
        self.peers: list[Any] = []
        self.logins: list[str] = []
        self.refused: list[str] = []  # every RCPT address answered with a refusal
        self._rejects: dict[str, int] = {}
        self._next: dict[str, list[int]] = {"rcpt": [], "data": []}
        self._random: tuple[float, int, random.Random] | None = None
        # Called once a message is kept, before the reply: a test can kill the sender there.
        self.on_message: Callable[[], None] | None = None

    def fail_next(self, code: int, at: str = "rcpt") -> None:
        self._next[at].append(code)

    def reject(self, address: str, code: int) -> None:
        self._rejects[address.lower()] = code

    def fail_randomly(self, fraction: float, code: int, seed: int) -> None:
        """Answer a random ``fraction`` of RCPTs with ``code`` (seeded: reproducible)."""
        self._random = (fraction, code, random.Random(seed))

    def _random_code(self) -> int:
        if self._random is None:
            return 0
        fraction, code, rng = self._random
        return code if rng.random() < fraction else 0

    @property
    def connections(self) -> int:
        return len(set(self.peers))

    def _pending(self, stage: str) -> int:
        return self._next[stage].pop(0) if self._next[stage] else 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        code = self._rejects.get(address.lower()) or self._pending("rcpt") or self._random_code()
        if code:
            self.refused.append(address.lower())
            return f"{code} {code // 100}.0.0 refused by the test sink"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        code = self._pending("data")
        if code:
            return f"{code} {code // 100}.0.0 refused by the test sink"
        self.messages.append((envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content))
        self.peers.append(session.peer)
        if self.on_message is not None:
            self.on_message()
        return "250 2.0.0 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and tuple(auth_data) == (
            SINK_USER.encode(), PASSWORD.encode())  # fmt: skip
        if ok:
            self.logins.append(SINK_USER)
        return AuthResult(success=ok, handled=False)


SINK_USER = "sink-user"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname=sink.host, port=sink.port,
                            authenticator=sink.authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def untrusted_tls_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """An SmtpSink that offers STARTTLS with a self-signed certificate no client trusts."""
    import ssl

    from aiosmtpd.controller import Controller

    key, cert = tmp_path / "sink.key", tmp_path / "sink.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = SmtpSink()
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=context)
    controller.start()
    yield sink
    controller.stop()


def seed_maildir(path: str | Path, *messages: bytes) -> stdlib_mailbox.Maildir:
    """Deliver messages into the Maildir at ``path`` (created when missing)."""
    box = stdlib_mailbox.Maildir(str(path), factory=None, create=True)
    for data in messages:
        box.add(data)
    return box


def maildir_config(folder: Path, extra: str = "", smtp: str = "") -> Path:
    """A pipeline.toml for the embedded default with everything under ``folder``; ``smtp``
    adds lines to [smtp], ``extra`` adds sections."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "pipeline.toml"
    config.write_text(
        f'[mailbox]\nmaildir = "{folder}/mailbox"\n[store]\nurl = "sqlite:///{folder}/s.db"\n'
        f'[smtp]\npickup_dir = "{folder}/outbox"\n{smtp}{extra}'
    )
    return config


def imap_config(
    folder: Path, box: Mailbox, *, batch_size: int = 100, smtp_port: int = 0, extra: str = ""
) -> Path:
    """A pipeline.toml for ``box`` with the store in ``folder``: acknowledgements go to the
    SMTP server on ``smtp_port`` (loopback, no TLS) or, without one, the pickup folder."""
    smtp = (f'pickup_dir = ""\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            if smtp_port else f'pickup_dir = "{folder}/outbox"\n')  # fmt: skip
    config = folder / "pipeline.toml"
    config.write_text(
        f'[mailbox]\nmaildir = ""\nhost = "127.0.0.1"\nport = {box.server.port}\n'
        f'security = "none"\nusername = "{box.user}"\npassword_env = "STORY_TEST_IMAP_PASSWORD"\n'
        f"batch_size = {batch_size}\nconnect_timeout = 5.0\nread_timeout = 10.0\n"
        f'[store]\nurl = "sqlite:///{folder}/stories.db"\n[smtp]\n{smtp}{extra}'
    )
    return config


def start_pipeline(config: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """``run_pipeline.py --config CONFIG ARGS...`` as a child process, output captured."""
    env = {**os.environ, "STORY_TEST_IMAP_PASSWORD": PASSWORD}
    command = [sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config", str(config),
               *args]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=TESTS.parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # fmt: skip


def count_stories(database: Path) -> int:
    """Stories committed so far, read while another process may be writing."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM stories").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshake; no greeting ever comes
        yield int(listener.getsockname()[1])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Report how many fuzzing cases ran and the fault suite's table (the README's figures)."""
    counts = config.stash.get(FUZZ_COUNTS, None)
    if counts:
        terminalreporter.write_line(f"fuzz: {sum(counts.values())} mutated corpus messages "
                                    f"{dict(sorted(counts.items()))}")  # fmt: skip
    tally = config.stash.get(FAULT_TALLY, None)
    if tally:
        columns = ("trials", "messages", "lost", "duplicates", "duplicate_acks", "missing_acks",
                   "held")  # fmt: skip
        terminalreporter.write_line("| scenario | " + " | ".join(columns) + " |")
        terminalreporter.write_line("|---" + "|---:" * len(columns) + "|")
        for scenario, row in tally.items():
            cells = " | ".join(f"{row[c]:,}" for c in columns)
            terminalreporter.write_line(f"| {scenario} | {cells} |")


# --- OAuth2 (issue 19): a local OpenID issuer over HTTPS with its own test CA, a Dovecot with
# the oauth2 passdb validating the issuer's HS256 tokens locally (and STARTTLS with a
# certificate of that CA), and an SMTP sink with AUTH XOAUTH2 checking the same tokens.
# ``oauth_ca`` / ``other_ca``: TestCa (ca_file, cert_file, key_file); ``oauth_issuer``:
# OpenIdIssuer (``register(email)`` -> (client_id, Client)); ``oauth_dovecot``: DovecotServer;
# ``xoauth2_sink``: an SmtpSink whose ``logins`` lists the users that logged in by XOAUTH2.


@pytest.fixture(scope="session")
def oauth_ca(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from oauth_issuer import make_ca

    return make_ca(tmp_path_factory.mktemp("oauth-ca"), "issuer")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A second CA that signed nothing the tests' servers use: trusting it alone must fail."""
    from oauth_issuer import make_ca

    return make_ca(tmp_path_factory.mktemp("other-ca"), "other")


@pytest.fixture(scope="session")
def oauth_issuer(oauth_ca: Any) -> Iterator[Any]:
    from oauth_issuer import OpenIdIssuer

    issuer = OpenIdIssuer(oauth_ca, free_port())
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_ca: Any, oauth_issuer: Any) -> Iterator[DovecotServer]:
    # Not under pytest's tmp folder (owner-only): Dovecot's auth process reads the key.
    folder = Path(tempfile.mkdtemp(prefix="story-dovecot-keys-"))
    folder.chmod(0o755)
    # Dovecot looks the key up as shared/<azp>/<alg>/<kid> ("default" for a missing azp and
    # kid); the fs dict drops "shared/" and reads the base64 key from this file.
    key = folder / "keys" / "default" / "HS256" / "default"
    key.parent.mkdir(parents=True)
    for part in (folder / "keys", key.parent.parent, key.parent):
        part.chmod(0o755)
    key.write_text(oauth_issuer.key_base64)
    key.chmod(0o644)
    conf = folder / "dovecot-oauth2.conf.ext"
    conf.write_text("introspection_mode = local\n"
                    f"local_validation_key_dict = fs:posix:prefix={folder}/keys/\n"
                    "username_attribute = email\n")  # fmt: skip
    conf.chmod(0o644)
    server = DovecotServer(
        f"ssl = yes\nssl_cert = <{oauth_ca.cert_file}\nssl_key = <{oauth_ca.key_file}\n"
        "auth_mechanisms = plain login xoauth2 oauthbearer\n"
        f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {conf}\n}}\n"
    )
    server.start()
    yield server
    server.remove()
    shutil.rmtree(folder, ignore_errors=True)


class XOAuth2Sink(SmtpSink):
    """An SmtpSink whose only login is AUTH XOAUTH2 with a token of ``issuer`` for the user."""

    def __init__(self, issuer: Any) -> None:
        super().__init__()
        self.issuer = issuer

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        import base64

        from aiosmtpd.smtp import AuthResult

        # handled=False: aiosmtpd then answers 535 itself (True would mean "already answered").
        if len(args) != 2:
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in
                      base64.b64decode(args[1]).decode().split("\x01") if "=" in part)  # fmt: skip
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if not self.issuer.validate(token, user):
            return AuthResult(success=False, handled=False)
        self.logins.append(user)
        return AuthResult(success=True, auth_data=user)


@pytest.fixture
def xoauth2_sink(oauth_issuer: Any) -> Iterator[XOAuth2Sink]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class LongAuthSMTP(SMTP):  # type: ignore[misc]
        # RFC 4954 4: an AUTH line may be 12288 octets (a bearer token is 1-3 KB), not 512.
        line_length_limit = 12288 + 16

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.command_size_limits = collections.defaultdict(lambda: 512, AUTH=12288)

    class LongAuthController(Controller):  # type: ignore[misc]
        def factory(self) -> SMTP:
            return LongAuthSMTP(self.handler, **self.SMTP_kwargs)

    sink = XOAuth2Sink(oauth_issuer)
    controller = LongAuthController(sink, hostname=sink.host, port=sink.port,
                                    auth_require_tls=False,
                                    auth_exclude_mechanism=["LOGIN", "PLAIN"])  # fmt: skip
    controller.start()
    yield sink
    controller.stop()


# --- The review page (story_intake/web): a store with stories and two accounts. ---
REVIEW_PASSWORD = "correct horse battery staple"
REVIEW_XSS = "<script>alert('xss')</script>"


class ReviewSite:
    """A config and store (Maildir default) holding four stories, tagged and acknowledged:
    ``refs`` names them (story, xss, withdrawal awaiting confirmation, held reply); users
    ``ann`` (admin) and ``rob`` (reviewer) with ``REVIEW_PASSWORD``."""

    def __init__(self, folder: Path, tagger: Tagger) -> None:
        import dataclasses

        from intake.store.engine import Store
        from story_intake.passwords import hash_password
        from story_intake.pipeline import run_once
        from story_intake.settings import load_settings
        from triage.reply.policy import reference
        from triage.reply.send_watch import resume

        self.config = maildir_config(folder, extra=f'[digest]\noutput_dir = "{folder}/digests"\n')
        self.settings = load_settings(self.config, {})
        jane = "Jane Doe <jane@example.net>"
        messages = {
            "story": story_message(1, message_id="<review-1@example.org>", sender=jane),
            "xss": story_message(2, message_id="<review-2@example.org>",
                                 sender=f'"{REVIEW_XSS}" <mallory@example.org>',
                                 body=f"{REVIEW_XSS} My GP and the police never shared it."),
            "withdrawal": story_message(3, message_id="<review-3@example.org>", sender=jane,
                                        body="Please withdraw my story. I do not want it "
                                        "used any more, delete it."),
            "held": story_message(4, message_id="<review-4@example.org>",
                                  sender="Sam <sam@example.org>"),
        }  # fmt: skip
        seed_maildir(self.settings.mailbox.maildir, *messages.values())  # type: ignore[union-attr]
        self.refs = {name: reference(f"review-{n}@example.org") for n, name in
                     enumerate(messages, 1)}  # fmt: skip
        paused = dataclasses.replace(self.settings.acknowledgement, max_per_hour=0)
        now = datetime.now(UTC)
        run_once(dataclasses.replace(self.settings, acknowledgement=paused), now, tagger=tagger)
        with Store(self.settings.store) as store:
            # a crash mid-send: held next pass
            store.outbox.claim_ids(["review-4@example.org"], now)
            accounts = store.accounts
            accounts.add_user("ann", "admin", hash_password(REVIEW_PASSWORD), now)
            accounts.add_user("rob", "reviewer", hash_password(REVIEW_PASSWORD), now)
            resume(store, now)  # the paused first pass tripped the breaker
        run_once(self.settings, now, tagger=tagger)


@pytest.fixture
def review_site(tmp_path: Path, tagger: Tagger) -> ReviewSite:
    return ReviewSite(tmp_path / "site", tagger)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def client_for(site: ReviewSite, store: Store, clock: Clock, host: str = "192.0.2.1",
               review: ReviewSettings | None = None, app: Starlette | None = None
               ) -> TestClient:  # fmt: skip
    """A browser at ``host`` on the page (a new app, or ``app``: the same throttle)."""
    import dataclasses

    from starlette.testclient import TestClient

    from story_intake.web.app import build_app
    from story_intake.web.settings import ReviewSettings

    settings = dataclasses.replace(site.settings, review=review or ReviewSettings())
    return TestClient(app or build_app(settings, store, clock), client=(host, 40000),
                      base_url="https://testserver", follow_redirects=False)  # fmt: skip


def login_token(client: TestClient) -> str:
    """The login form's anti-forgery token (its cookie is now in the client)."""
    import re

    page = client.get("/login")
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def log_in(client: TestClient, name: str, password: str = REVIEW_PASSWORD) -> int:
    token = login_token(client)
    reply = client.post("/login", data={"login_token": token, "username": name,
                                        "password": password})  # fmt: skip
    return reply.status_code


def csrf(client: TestClient) -> str:
    """The signed-in session's anti-forgery token, as its pages carry it."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/health").text)
    assert found
    return found.group(1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site_store(review_site: ReviewSite) -> Iterator[Store]:
    from intake.store.engine import Store

    with Store(review_site.settings.store) as store:
        yield store
