"""Tag stage: Story -> Triage. The spaCy adapter, with ``spacy_parts`` (the pipeline's parts)
and ``training`` (train, save, load): the only modules that import spacy or thinc.

The pipeline is ``spacy.blank("en")`` with a lower-case lookup lemmatizer (tables from
spacy-lookups-data) and two bag-of-lemmas classifiers trained from the repository's data:
``textcat_multilabel`` for themes and an exclusive ``textcat`` named ``kind``. Rule matchers built
from themes.toml find the evidence spans; ``triage.tag.rules`` combines the two into scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy
import spacy
from spacy.attrs import IDX, IS_ALPHA, LEMMA, LENGTH, LIKE_NUM, LOWER
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.pipeline import Sentencizer, TextCategorizer
from spacy.tokens import Doc

from intake.errors import ConfigError
from intake.records import Story, Triage
from triage.tag.examples import load_examples, training_files
from triage.tag.judge import Hit, Reading, judge
from triage.tag.limit import fit_for_tagging, tagged_text
from triage.tag.model_cache import current_model
from triage.tag.near import SequenceSet, TokenSequence, compile_sequence
from triage.tag.rules import WITHDRAWAL, TagSettings
from triage.tag.spacy_parts import KIND, LEMMATIZER, THEMES, blank_nlp
from triage.tag.subject import as_withdrawal, asks_withdrawal, may_ask_in_subject, own_subject
from triage.tag.training import load_or_train, load_shipped, shipped_members, train
from triage.tag.vocabulary import near_any, near_index, request_vocabulary

# Re-exported: callers import the tagger's whole surface from here.
__all__ = [
    "KIND", "LEMMATIZER", "THEMES", "Tagger", "blank_nlp", "build_tagger", "load_or_train",
    "load_shipped", "load_tagger", "shipped_members", "tag", "tag_many", "train",
]  # fmt: skip

MAX_EXPLAINED = 60  # sentences scored when a theme has no rule evidence
SENTENCIZER = Sentencizer()


def _textcat(nlp: Language, name: str) -> TextCategorizer:
    return cast(TextCategorizer, nlp.get_pipe(name))


def _classifiers(nlp: Language) -> list[str]:
    return [name for name in (THEMES, KIND) if name in nlp.pipe_names]


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

    def pipe(self, texts: Iterable[str], rules_only: bool = False) -> Iterable[Doc]:
        """Run the pipeline over texts in batches (without the classifiers: for rules alone)."""
        disable = _classifiers(self.nlp) if rules_only else []
        return self.nlp.pipe(texts, batch_size=64, disable=disable)

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
    read = [(tagger.read(doc, text), doc) for text, doc in zip(texts, docs, strict=True)]
    triages = [
        judge(story, reading, tagger.settings, trained, partial(tagger.best_sentence, doc))
        for story, (reading, doc) in zip(stories, read, strict=True)
    ]
    return _asked_in_subject(stories, triages, [r.words for r, _ in read], tagger)


def _asked_in_subject(stories: Sequence[Story], triages: list[Triage], words: list[int],
                      tagger: Tagger) -> list[Triage]:  # fmt: skip
    """``triages`` with a withdrawal asked in the sender's own subject line read as one."""
    read = [(i, own_subject(stories[i].subject)) for i, t in enumerate(triages)
            if may_ask_in_subject(t)]  # fmt: skip
    wanted, subjects = [i for i, s in read if s], [s for _, s in read if s]
    for i, subject, doc in zip(wanted, subjects, tagger.pipe(subjects, True), strict=True):
        if asks_withdrawal(subject, tagger.read(doc, subject)):
            triages[i] = as_withdrawal(triages[i], words[i])
    return triages


def tag(story: Story, tagger: Tagger) -> Triage:
    """Tag one story."""
    return tag_many([story], tagger)[0]
