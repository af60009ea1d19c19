"""The trained tagger shipped inside the package (triage/tag/model): it is the model the
repository's data trains, and a new install loads it instead of training (cold start)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from story_intake.themes import load_themes
from triage.tag.examples import load_examples, training_files
from triage.tag.model_cache import model_key, untrained
from triage.tag.rules import TagSettings
from triage.tag.shipped_model import REBUILD, SHIPPED, WEIGHTS, read, shipped_archive

ROOT = Path(__file__).resolve().parents[1]
STALE = (f"the shipped tagger model is not the one the repository's training data and "
         f"config/themes.toml give: run `{REBUILD}` and commit triage/tag/model")  # fmt: skip


def _repository_settings(model_dir: Path) -> TagSettings:
    return replace(load_themes(ROOT / "config/themes.toml"), model_dir=str(model_dir))


def _key(settings: TagSettings) -> str:
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    return model_key(examples, settings)


def test_shipped_model_matches_the_training_data(tmp_path: Path) -> None:
    """Fails when triage/tag/data, the theme names, seed, epochs or the training code's
    version change without the shipped model being rebuilt (so CI catches a stale one)."""
    key = _key(_repository_settings(tmp_path))
    assert shipped_archive(key) is not None, STALE
    assert [p.name for p in SHIPPED.glob("*.tar.gz")] == [f"{key}.tar.gz"], STALE
    size = (SHIPPED / f"{key}.tar.gz").stat().st_size
    # The hashed tables are 12.6 MB unpacked; the archive grows with the n-grams the data
    # touches (2,159 examples 4.7 MB, 2,920 5.3 MB). A jump past this is a wrong table size.
    assert size < 8_000_000, f"the shipped model is {size} bytes"


def test_shipped_model_is_loaded_without_training_or_writing(tmp_path: Path) -> None:
    """A new install tags at once and writes nothing for it (a read-only install, or a small
    file-size limit, still starts): the model is read from the package into memory."""
    import srsly

    from triage.tag.tagger import THEMES, load_tagger

    settings = _repository_settings(tmp_path / "cache")
    assert untrained(settings) is None  # no "training first" note: nothing will train
    tagger = load_tagger(settings)
    assert not (tmp_path / "cache").exists()
    archive = shipped_archive(_key(settings))
    assert archive is not None
    shipped = srsly.msgpack_loads(read(archive)[WEIGHTS])
    # The shipped classifier's weights, not a blank or a freshly trained one.
    assert tagger.nlp.get_pipe(THEMES).to_bytes(exclude=["vocab"]) == shipped[THEMES]


@pytest.mark.slow
def test_shipped_model_retraining_reproduces_it_byte_for_byte(tmp_path: Path) -> None:
    """Training is deterministic (fixed seed, fixed order) and the archive has no times or
    owners in it: rebuilding from the same data gives the same bytes."""
    from story_intake.cli_tagger import ship_model

    settings = _repository_settings(tmp_path)
    key = _key(settings)
    shipped = shipped_archive(key)
    assert shipped is not None, STALE
    folder = tmp_path / "rebuilt"
    ship_model(settings, folder)
    assert (folder / f"{key}.tar.gz").read_bytes() == shipped.read_bytes()
