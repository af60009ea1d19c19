"""Labelled texts for training and evaluating the tagger (``triage/tag/data/*.jsonl``). Stdlib only.

``train_*.jsonl`` files are training data. A training story may carry ``second_reading``: the
themes an independent reader gave it from the label definitions alone, without the writer's
labels; a theme the two disagree on is ``unsure``, neither taught nor scored. ``eval_r5.jsonl``
is the held-out evaluation set: written from the label definitions alone by someone who had read
none of the data, themes.toml or the code, scored once on the model it ships beside, never
trained or tuned on, its mistakes never read. The earlier held-out sets (``eval.jsonl``,
``eval_fresh.jsonl``, ``eval_r2.jsonl``, ``eval_r3.jsonl``, ``eval_r4.jsonl``) have each been
looked at often enough since that they now half-serve as development data, like ``dev_*.jsonl``
(never trained on either).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from intake.errors import ConfigError
from intake.records import Address, Kind, Story

KINDS = tuple(Kind)


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One example: a body as typed, its themes and its kind.

    ``unsure``: themes two independent readers disagreed on (the writer's ``themes`` and a
    second reader's ``second_reading``); the classifier learns neither answer for them.
    """

    id: str
    text: str
    themes: tuple[str, ...]
    kind: str
    unsure: frozenset[str] = frozenset()


def load_examples(paths: Iterable[Path], themes: Iterable[str]) -> list[LabelledText]:
    """Read JSONL files; a bad line raises ConfigError naming the file and line."""
    known = set(themes)
    examples = []
    for path in sorted(paths):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    examples.append(_parse_line(line, known, f"{path.name}:{number}"))
    return examples


def _parse_line(line: str, known: set[str], where: str) -> LabelledText:
    try:
        row = json.loads(line)
        themes = tuple(str(t) for t in row["themes"])
        second = {str(t) for t in row.get("second_reading", themes)}
        example = LabelledText(str(row["id"]), str(row["text"]), themes, str(row["kind"]))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{where}: not a labelled example ({type(err).__name__})") from err
    if example.kind not in KINDS and not Kind.is_request(example.kind):
        raise ConfigError(f"{where}: unknown kind {example.kind!r}")
    # Themes the current themes.toml does not know are ignored, so removing a theme needs no
    # data edit; adding one picks up whatever examples carry its name.
    unsure = frozenset(second.symmetric_difference(themes) & known)
    return LabelledText(example.id, example.text, tuple(t for t in themes if t in known),
                        example.kind, unsure)  # fmt: skip


def story_from_text(story_id: str, text: str) -> Story:
    """A Story holding only a text (what evaluation and training examples are)."""
    epoch = datetime.fromtimestamp(0, UTC)
    return Story(story_id, Address("", ""), (), "", None, epoch, text, "", "", "", False, False,
                 (), (), (), ("examples", 0, 0))  # fmt: skip


def training_files(data_dir: Path) -> list[Path]:
    """The training files in ``data_dir`` (never the eval or dev sets)."""
    return sorted(data_dir.glob("train_*.jsonl"))
