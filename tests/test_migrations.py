"""Store migrations: the store upgrades itself with Alembic, after a backup, and ``migrate``.

tests/data/store_round2.sqlite is a store written by the code before migrations (main at
df49e66, round 2): ``Store(StoreSettings("sqlite:///store_round2.sqlite",
hash_key="round2-fixture"))``, then ``commit_batch`` of three synthetic stories
(``round2-{1,2,3}@example.org``, the first two with a triage) and one quarantined message
(``parse``), ``record_run("once", ...)``, ``record_decisions`` (story 1 ``pending`` then
claimed and finished ``sent``; story 2 ``suppressed``), a digest opened, rendered and
finished ``sent``, then ``checkpoint()`` and ``VACUUM``. Every address is example.org/.net.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from intake.errors import StoreError
from intake.store import schema
from intake.store.engine import Store, StoreSettings

TESTS = Path(__file__).resolve().parent
ROUND2 = TESTS / "data" / "store_round2.sqlite"
MIGRATIONS = TESTS.parent / "intake" / "store" / "migrations"


def head() -> str:
    """The newest revision in the migrations folder, read by Alembic itself."""
    if not MIGRATIONS.is_dir():
        return "(no migrations folder)"
    found = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert found is not None
    return found


def version_of(database: Path) -> list[str]:
    """The revisions in a SQLite file's alembic_version ([] if it has none)."""
    with closing(sqlite3.connect(database)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchall():
            return []
        return [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]


def test_migrations_store_from_round_2_is_backed_up_upgraded_and_keeps_every_story(
    tmp_path: Path,
) -> None:
    database = tmp_path / "stories.db"
    shutil.copyfile(ROUND2, database)
    with Store(StoreSettings(f"sqlite:///{database}", hash_key="round2-fixture")) as store:
        ids = [story.story_id for story in store.stories.stories()]
        tagged = [s.story_id for s, triage in store.stories.triaged() if triage is not None]
        counts = store.outbox.outbox_counts()
        quarantined = [entry.stage for entry in store.quarantine.quarantined()]
        last = store.digests.last_digest_end()
    assert ids == [f"round2-{n}@example.org" for n in (1, 2, 3)]
    assert tagged == ["round2-1@example.org", "round2-2@example.org"]
    assert counts == {"sent": 1, "suppressed:auto_submitted": 1}
    assert quarantined == ["parse"] and last is not None
    backup = tmp_path / "stories.db.from-unversioned.bak"
    assert backup.is_file() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert version_of(backup) == []  # the copy is the store as it was
    with closing(sqlite3.connect(backup)) as db:
        assert db.execute("SELECT count(*) FROM stories").fetchone() == (3,)
    assert version_of(database) == [head()]


def test_migrations_backup_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    database = tmp_path / "stories.db"
    shutil.copyfile(ROUND2, database)
    earlier = tmp_path / "stories.db.from-unversioned.bak"
    earlier.write_bytes(b"an earlier backup")
    Store(StoreSettings(f"sqlite:///{database}")).close()
    assert earlier.read_bytes() == b"an earlier backup"
    assert version_of(tmp_path / "stories.db.from-unversioned.1.bak") == []
    assert version_of(database) == [head()]


def test_migrations_fresh_store_is_created_at_head_without_a_backup(tmp_path: Path) -> None:
    database = tmp_path / "var" / "stories.db"
    Store(StoreSettings(f"sqlite:///{database}")).close()
    assert version_of(database) == [head()]
    assert sorted(p.name for p in database.parent.iterdir()) == ["stories.db", "stories.db.key"]


def test_migrations_schema_equals_schema_py(tmp_path: Path) -> None:
    # A column or table added to schema.py without a revision shows up here as a difference.
    Store(StoreSettings(f"sqlite:///{tmp_path}/stories.db")).close()
    engine = create_engine(f"sqlite:///{tmp_path}/stories.db")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, schema.metadata) == []
    finally:
        engine.dispose()


def test_migrations_stores_opened_at_once_upgrade_once(tmp_path: Path) -> None:
    # Several processes (a worker, a `once`, a `status`) opening one fresh store together:
    # one creates the tables, the others wait for its write lock and find them at head.
    database = tmp_path / "stories.db"
    code = ("import sys\nfrom intake.store.engine import Store, StoreSettings\n"
            "Store(StoreSettings('sqlite:///' + sys.argv[1])).close()\n")  # fmt: skip
    children = [subprocess.Popen([sys.executable, "-c", code, str(database)],
                                 cwd=TESTS.parent, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]  # fmt: skip
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0], errors
    assert version_of(database) == [head()]


def test_migrations_migrate_says_what_it_did_and_needs_no_mailbox_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[mailbox]\nmaildir = ""\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\n'
        'username = "stories@example.org"\npassword_env = "STORY_TEST_UNSET_PASSWORD"\n'
        f'[store]\nurl = "sqlite:///{tmp_path}/stories.db"\n'
        f'[smtp]\npickup_dir = "{tmp_path}/outbox"\n'
    )
    shutil.copyfile(ROUND2, tmp_path / "stories.db")
    env = {k: v for k, v in os.environ.items() if k != "STORY_TEST_UNSET_PASSWORD"}

    def migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config",
                               str(config), "migrate"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    first = migrate()
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"from unversioned to {head()} (backup: ")
    again = migrate()
    assert (again.returncode, again.stdout.strip()) == (0, f"up to date ({head()})")
    assert version_of(tmp_path / "stories.db") == [head()]


def test_migrations_store_from_before_a_table_existed_gets_it_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    # Round 1 had no unsubscribe list: 0001 creates what a store made before it lacks.
    database = tmp_path / "stories.db"
    shutil.copyfile(ROUND2, database)
    with closing(sqlite3.connect(database)) as db:
        db.execute("DROP TABLE unsubscribed")
        db.commit()
    with Store(StoreSettings(f"sqlite:///{database}")) as store:
        assert store.unsubscribe.unsubscribed_among(["k"]) == set()
        assert len(list(store.stories.stories())) == 3
    assert version_of(database) == [head()]


def test_migrations_store_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    database = tmp_path / "stories.db"
    Store(StoreSettings(f"sqlite:///{database}")).close()
    with closing(sqlite3.connect(database)) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
        db.commit()
    with pytest.raises(StoreError, match="9999 is newer"):
        Store(StoreSettings(f"sqlite:///{database}"))
    assert version_of(database) == ["9999"]
    assert not list(tmp_path.glob("*.bak"))
