"""``pip install .`` (not editable) gives a working ``story-intake`` from any folder.

Offline: the wheel is built without build isolation into a fresh venv whose only link to
the test environment is a path line naming its site-packages (for the dependencies and
hatchling), so the editable install of this checkout is not seen there.
"""

from __future__ import annotations

import subprocess
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

from story_intake.cli_parser import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with this project installed from a built wheel; returns its bin folder."""
    home = tmp_path_factory.mktemp("install")
    env = home / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    # A plain path line: .pth files in the test environment (the editable install) stay unread.
    Path(purelib.stdout.strip(), "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    command = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
               "--no-build-isolation", str(ROOT)]  # fmt: skip
    subprocess.run(command, cwd=home, check=True, capture_output=True, timeout=600)
    return env / "bin"


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(cwd)}  # nothing of the checkout on any path
    return subprocess.run([str(bin_dir / "story-intake"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip


@pytest.mark.slow
def test_install_version_and_help_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = run(installed, tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"story-intake {version}"
    helped = run(installed, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert all(command in helped.stdout for command in COMMANDS)


@pytest.mark.slow
def test_install_ships_only_three_packages_and_their_data(installed: Path, tmp_path: Path) -> None:
    python = installed / "python"
    code = ("import json, importlib.metadata as m; d = m.distribution('story-intake'); "
            "print(json.dumps([str(f) for f in d.files]))")  # fmt: skip
    files = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    names = {f.split("/")[0] for f in __import__("json").loads(files)}
    top = {n for n in names if not n.endswith(".dist-info") and not n.startswith("..")}
    assert top == {"story_intake", "intake", "triage"}
    for shipped in (
        "story_intake/config/pipeline.toml",
        "story_intake/config/themes.toml",
        "triage/templates/acknowledgement.txt",
        "triage/tag/data/train_a.jsonl",
    ):
        assert shipped in files
    # The installed code finds them inside itself, not in a checkout.
    where = (
        "from story_intake.shipped import CONFIG; from triage.reply.render import TEMPLATES;"
        "from story_intake.themes import load_themes, DEFAULT_THEMES;"
        "print(CONFIG, TEMPLATES, load_themes(DEFAULT_THEMES).data_dir, sep='\\n')"
    )
    found = subprocess.run([str(python), "-c", where], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    assert all(str(ROOT) not in path for path in found) and all(Path(p).is_dir() for p in found)


@pytest.mark.slow
def test_install_migrate_upgrades_a_store_with_the_shipped_migrations(
    installed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/stories.db"\n')
    (tmp_path / "stories.db").write_bytes((ROOT / "tests/data/store_round2.sqlite").read_bytes())
    done = run(installed, tmp_path, "--config", str(config), "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("from unversioned to ")
    assert (tmp_path / "stories.db.from-unversioned.bak").is_file()


@pytest.mark.slow
def test_install_demo_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    """The sample stories and the trained tagger ship inside the wheel: `demo` in an empty
    folder, with no config, seeds them, tags without training, and writes everything under
    ./var there."""
    done = run(installed, tmp_path, "demo")
    assert done.returncode == 0, done.stderr
    samples = len(list((ROOT / "samples" / "stories").glob("*.eml")))
    assert f"seeded {samples} sample stories into {tmp_path}/var/mailbox" in done.stdout
    assert "training the tagger" not in done.stderr  # the shipped model was loaded
    assert (tmp_path / "var" / "stories.db").is_file()
    assert list((tmp_path / "var" / "digests").glob("*.html"))
    assert list((tmp_path / "var" / "outbox").glob("*.eml"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]  # nothing else written here
