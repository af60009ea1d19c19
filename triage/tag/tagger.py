"""Tag stage: Story -> Triage. The spaCy adapter; the only module that imports spacy or thinc.

The pipeline is ``spacy.blank("en")`` with a sentencizer, a lower-case lookup lemmatizer (tables
from spacy-lookups-data), and two bag-of-lemmas classifiers trained from the repository's data:
``textcat_multilabel`` for themes and an exclusive ``textcat`` named ``kind``. Rule matchers built
from themes.toml find the evidence spans; ``triage.tag.rules`` combines the two into scores.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy
import spacy
from spacy.attrs import IDX, IS_ALPHA, LEMMA, LENGTH, LIKE_NUM, LOWER, ORTH
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.lookups import load_lookups
from spacy.matcher import Matcher, PhraseMatcher
from spacy.ml.extract_ngrams import extract_ngrams
from spacy.ml.models.textcat import NEG_VALUE, resize_and_set_ref
from spacy.pipeline import Sentencizer, TextCategorizer
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry
from thinc.api import (
    Adam,
    Config,
    Logistic,
    Model,
    SparseLinear_v2,
    chain,
    fix_random_seed,
    resizable,
    softmax_activation,
)
from thinc.layers.resizable import resize_linear_weighted

from intake.errors import ConfigError
from intake.records import Story, Triage
from triage.tag.examples import LabelledText, load_examples, training_files
from triage.tag.judge import Hit, Reading, judge
from triage.tag.limit import fit_for_tagging, tagged_text
from triage.tag.model_cache import current_model, model_path
from triage.tag.near import SequenceSet, TokenSequence, compile_sequence
from triage.tag.rules import WITHDRAWAL, TagSettings
from triage.tag.shipped_model import CONFIG, WEIGHTS, read, shipped_archive
from triage.tag.vocabulary import near_any, near_index, request_vocabulary

LEMMATIZER = "story_lemmatizer"
THEMES = "textcat_multilabel"
KIND = "kind"
MIN_POSITIVES = 5  # a theme with fewer labelled examples is scored on evidence alone
MAX_EXPLAINED = 60  # sentences scored when a theme has no rule evidence
SENTENCIZER = Sentencizer()


class LowerLemmatizer:
    """Lemmas from the English lookup table, always lower-case, cached per word form.

    spaCy's lookup lemmatizer is case-sensitive ("Officers" stays "Officers"); matching and
    classifying on lower-case lemmas lets "Officers", "officer" and "OFFICERS" count as one.
    """

    def __init__(self) -> None:
        self._table: Any = None
        self._cache: dict[int, int] = {}

    def __call__(self, doc: Doc) -> Doc:
        if self._table is None:
            self._table = load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
        cache, strings = self._cache, doc.vocab.strings
        orths = doc.to_array(ORTH)
        lemmas = [cache.get(o) or self._lemma(o, strings) for o in orths.tolist()]
        # One array assignment instead of setting token.lemma token by token.
        column = numpy.array(lemmas, dtype="uint64").reshape(-1, 1)
        doc.from_array([LEMMA], cast(Any, column))
        return doc

    def _lemma(self, orth: int, strings: Any) -> int:
        lower = strings[orth].lower()
        lemma = self._cache[orth] = strings.add(self._table.get(lower, lower))
        return int(lemma)


@Language.factory(LEMMATIZER)
def make_lemmatizer(nlp: Language, name: str) -> LowerLemmatizer:
    """spaCy factory for LowerLemmatizer."""
    return LowerLemmatizer()


@registry.architectures("story.LemmaBOW.v1")  # type: ignore[untyped-decorator]
def lemma_bow(
    exclusive_classes: bool, ngram_size: int, length: int = 262144, nO: int | None = None
) -> Model[list[Doc], Any]:
    """spaCy's bag-of-words text classifier, over lemmas instead of exact word forms."""
    fill = {"b": NEG_VALUE, "W": 0}
    sparse: Model[Any, Any] = SparseLinear_v2(nO=nO, length=length)
    resize = partial(resize_linear_weighted, fill_defaults=fill)
    layer: Model[Any, Any] = resizable(sparse, resize_layer=resize)
    output = softmax_activation() if exclusive_classes else Logistic()
    model: Model[list[Doc], Any] = chain(extract_ngrams(ngram_size, attr=LEMMA), layer, output)
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("output_layer", sparse)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=layer)
    return model


def blank_nlp() -> Language:
    """The untrained pipeline: tokenizer and lower-case lemmatizer.

    No sentencizer: only the rare last-resort evidence needs sentences (see best_sentence).
    """
    nlp = spacy.blank("en")
    tokenizer = cast(Tokenizer, nlp.tokenizer)
    for form in ("A&E", "a&e"):  # otherwise "A&E." at a sentence end is one token
        tokenizer.add_special_case(f"{form}.", [{ORTH: form}, {ORTH: "."}])
    nlp.add_pipe(LEMMATIZER)
    return nlp


def _classifier(exclusive: bool) -> dict[str, Any]:
    return {"model": {"@architectures": "story.LemmaBOW.v1", "exclusive_classes": exclusive,
                      "ngram_size": 2}}  # fmt: skip


def train(examples: Sequence[LabelledText], settings: TagSettings) -> Language:
    """Train both classifiers from labelled texts; the same data and seed give the same model."""
    fix_random_seed(settings.seed)
    nlp = blank_nlp()
    themes = [t for t in settings.theme_names
              if sum(t in e.themes for e in examples) >= MIN_POSITIVES]  # fmt: skip
    kinds = sorted({e.kind for e in examples})
    theme_pipe = cast(TextCategorizer, nlp.add_pipe(THEMES, config=_classifier(False)))
    kind_pipe = cast(TextCategorizer, nlp.add_pipe("textcat", name=KIND, config=_classifier(True)))
    docs = list(nlp.pipe((e.text for e in examples), disable=[THEMES, KIND]))
    pairs = [(_example(d, {t: float(t in e.themes) for t in themes}),
              _example(d, {k: float(k == e.kind) for k in kinds}))
             for d, e in zip(docs, examples, strict=True)]  # fmt: skip
    # Separately: the exclusive kind classifier rejects examples with several positive cats.
    theme_pipe.initialize(lambda: [p[0] for p in pairs], nlp=nlp, labels=themes)
    kind_pipe.initialize(lambda: [p[1] for p in pairs], nlp=nlp, labels=kinds)
    optimizer = Adam(0.001)
    order = random.Random(settings.seed)
    for _ in range(settings.epochs):
        order.shuffle(pairs)
        for start in range(0, len(pairs), 16):
            batch = pairs[start : start + 16]
            theme_pipe.update([p[0] for p in batch], drop=0.2, sgd=optimizer)
            kind_pipe.update([p[1] for p in batch], drop=0.2, sgd=optimizer)
    return nlp


def _textcat(nlp: Language, name: str) -> TextCategorizer:
    return cast(TextCategorizer, nlp.get_pipe(name))


def _classifiers(nlp: Language) -> list[str]:
    return [name for name in (THEMES, KIND) if name in nlp.pipe_names]


def _example(doc: Doc, cats: dict[str, float]) -> Example:
    return Example.from_dict(doc, {"cats": cats})


def load_or_train(examples: Sequence[LabelledText], settings: TagSettings) -> Language:
    """The cached model for this data and settings; else the shipped one when its key
    matches (read into memory: nothing is written, so a read-only install starts at once);
    else trained and saved on first use."""
    path = model_path(examples, settings)
    if path.is_dir():
        return spacy.load(path)
    archive = shipped_archive(path.name)
    if archive:
        return load_shipped(archive)
    nlp = train(examples, settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written aside and renamed into place: a run killed while saving, or two runs training at
    # once, never leave a half-written model where the next run would load it.
    partial_dir = Path(tempfile.mkdtemp(prefix=".training-", dir=path.parent))
    nlp.to_disk(partial_dir)
    try:
        partial_dir.rename(path)
    except OSError:  # another run finished first: keep its model, drop ours
        shutil.rmtree(partial_dir, ignore_errors=True)
    return nlp


def load_shipped(archive: Path) -> Language:
    """The model in a shipped archive: the pipeline built from its config, then its weights
    and vocabulary loaded from bytes (spaCy's documented way to load without a folder)."""
    members = read(archive)
    config = Config().from_str(members[CONFIG].decode("utf-8"))
    nlp = spacy.util.get_lang_class(config["nlp"]["lang"]).from_config(config)
    return nlp.from_bytes(members[WEIGHTS])


def shipped_members(nlp: Language) -> dict[str, bytes]:
    """What ``load_shipped`` reads back: the config and the pipeline's bytes."""
    return {CONFIG: nlp.config.to_str().encode("utf-8"), WEIGHTS: nlp.to_bytes()}


@dataclass(frozen=True)
class Tagger:
    """A trained pipeline plus the rule matchers built from themes.toml."""

    nlp: Language
    settings: TagSettings
    terms: PhraseMatcher
    patterns: Matcher
    fast: SequenceSet
    key_parts: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # Lemma and lower-case hashes of the withdrawal vocabulary (triage.tag.vocabulary).
    asking_words: Any = None
    # The same words one edit away, for misspellings (triage.tag.vocabulary.near_index).
    asking_near: frozenset[tuple[str, int]] = frozenset()

    @property
    def trained_themes(self) -> frozenset[str]:
        """Themes the classifier has a label for (the rest are scored on evidence alone)."""
        return frozenset(_textcat(self.nlp, THEMES).labels)

    def pipe(self, texts: Iterable[str]) -> Iterable[Doc]:
        """Run the pipeline over texts in batches."""
        return self.nlp.pipe(texts, batch_size=64)

    def read(self, doc: Doc, text: str | None = None) -> Reading:
        """Everything the judgement needs from a processed Doc, as plain values.

        ``text`` is the text the Doc was made from, when the caller has it: ``Doc.text``
        rebuilds it token by token.
        """
        strings = self.nlp.vocab.strings
        table = doc.to_array([LEMMA, LOWER, LIKE_NUM, IS_ALPHA, IDX, LENGTH])
        found = [(strings[m], s, e) for m, s, e in self.terms(doc)]
        if len(self.patterns):  # every shipped pattern takes the fast path; others land here
            found += [(strings[m], s, e) for m, s, e in self.patterns(doc)]
        found += self.fast.find(table[:, :3])
        # Character offsets from the token table: a Span per hit cost as much as the matching.
        offsets, lengths, parts = table[:, 4].tolist(), table[:, 5].tolist(), self.key_parts
        text = doc.text if text is None else text
        hits = []
        for key, start, end in found:
            section, name, rule = parts.get(key) or _split_key(key)
            first, last = offsets[start], offsets[end - 1] + lengths[end - 1]
            hits.append(Hit(section, name, rule, first, last, text[first:last]))
        on_topic = (
            self.asking_words is None
            or bool(numpy.isin(table[:, :2], self.asking_words).any())
            or near_any({strings[o] for o in set(table[:, 1].tolist())}, self.asking_near)
        )
        return Reading(dict(doc.cats), tuple(sorted(hits, key=lambda h: h.start)),
                       int(table[:, 3].sum()), on_topic)  # fmt: skip

    def best_sentence(self, doc: Doc, theme: str) -> Hit | None:
        """The sentence the classifier finds most about ``theme`` (evidence of last resort)."""
        if not doc.has_annotation("SENT_START"):
            SENTENCIZER(doc)
        sentences = [s for s in doc.sents if any(t.is_alpha for t in s)][:MAX_EXPLAINED]
        if theme not in self.trained_themes or not sentences:
            return None
        # Sentence texts through the pipeline in one batch: far cheaper than Span.as_doc().
        scored = self.nlp.pipe((s.text for s in sentences), disable=[KIND])
        scores = [d.cats.get(theme, 0.0) for d in scored]
        span = sentences[max(range(len(sentences)), key=scores.__getitem__)]
        return Hit("themes", theme, "sentence", span.start_char, span.end_char, span.text)


def build_tagger(nlp: Language, settings: TagSettings) -> Tagger:
    """Compile themes.toml's terms and patterns against ``nlp``; errors name the key."""
    terms = PhraseMatcher(nlp.vocab, attr="LEMMA")
    patterns = Matcher(nlp.vocab, validate=True)
    fast: list[tuple[str, TokenSequence]] = []
    groups = [("themes", t.name, "", t.terms, t.patterns) for t in settings.themes]
    groups += [("themes", t.name, "weak", t.weak_terms, t.weak_patterns) for t in settings.themes]
    groups += [("requests", r.name, "", r.terms, r.patterns) for r in settings.requests]
    groups += [("agencies", a.name, "", a.terms, a.patterns) for a in settings.agencies]
    groups += [("automated", "automated", "", settings.automated_terms, ())]
    for section, name, strength, phrases, token_patterns in groups:
        prefix = f"{strength}-" if strength else ""
        if phrases:
            docs = list(nlp.pipe(phrases, disable=_classifiers(nlp)))
            terms.add(f"{section}:{name}:{prefix}term", docs)
        for index, pattern in enumerate(token_patterns):
            key = f"{section}:{name}:{prefix}pattern[{index}]"
            tokens = [dict(t) for t in pattern]
            try:
                patterns.add(key, [tokens])  # validates the pattern, whichever path runs it
            except (ValueError, KeyError) as err:
                where = f"{section}.{name}.{prefix.replace('-', '_')}patterns[{index}]"
                raise ConfigError(f"{where} is not a valid token pattern: {err}") from err
            sequence = compile_sequence(tokens, nlp.vocab.strings.add)
            if sequence is not None:  # same matches, a fraction of the Matcher's time
                patterns.remove(key)
                fast.append((key, sequence))
    keys = [key for key, _ in fast] + [
        f"{section}:{name}:{f'{strength}-' if strength else ''}term"
        for section, name, strength, _, _ in groups
    ]
    asking: set[str] = set()
    for spec in settings.requests:
        if f"request:{spec.name}" == WITHDRAWAL:
            asking |= request_vocabulary(spec, STOP_WORDS)
    hashes = sorted({nlp.vocab.strings.add(w) for w in asking})
    return Tagger(
        nlp,
        settings,
        terms,
        patterns,
        SequenceSet(fast),
        {key: _split_key(key) for key in keys},
        numpy.array(hashes, dtype="uint64") if hashes else None,
        near_index(asking),
    )


def _split_key(key: str) -> tuple[str, str, str]:
    """A match key ``section:name:rule`` in its three parts."""
    section, name, rule = key.split(":", 2)
    return section, name, rule


def load_tagger(settings: TagSettings) -> Tagger:
    """The tagger for these settings: the cached model, or one trained now from data_dir."""
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    if not examples:
        raise ConfigError(f"tagger.data_dir: no train_*.jsonl examples in {settings.data_dir}")
    swapped = current_model(settings, examples)  # retrained with corrections by housekeeping
    nlp = spacy.load(swapped) if swapped else load_or_train(examples, settings)
    return build_tagger(nlp, settings)


def tag_many(stories: Sequence[Story], tagger: Tagger) -> list[Triage]:
    """Tag stories in one pass of the pipeline (batched: much faster than one by one)."""
    # An empty text would be a zero-token Doc, which breaks the bag-of-words layer when it
    # shares a batch with others (thinc IndexError): one space is an empty story too. A text
    # over spaCy's max_length is read up to it (the story carries truncated_for_tagging).
    stories = [fit_for_tagging(story) for story in stories]
    texts = [tagged_text(story.text) or " " for story in stories]
    docs = tagger.pipe(texts)
    trained = tagger.trained_themes
    return [
        judge(story, tagger.read(doc, text), tagger.settings, trained,
              partial(tagger.best_sentence, doc))
        for story, text, doc in zip(stories, texts, docs, strict=True)
    ]  # fmt: skip


def tag(story: Story, tagger: Tagger) -> Triage:
    """Tag one story."""
    return tag_many([story], tagger)[0]
