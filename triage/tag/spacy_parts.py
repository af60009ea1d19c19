"""The tagger's spaCy parts: the lower-case lemmatizer, the bag-of-lemmas architecture and the
untrained pipeline they make. Registered with spaCy on import (a saved model names them).
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import numpy
import spacy
from spacy.attrs import LEMMA, ORTH
from spacy.language import Language
from spacy.lookups import load_lookups
from spacy.ml.extract_ngrams import extract_ngrams
from spacy.ml.models.textcat import NEG_VALUE, resize_and_set_ref
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Logistic, Model, SparseLinear_v2, chain, resizable, softmax_activation
from thinc.layers.resizable import resize_linear_weighted

LEMMATIZER = "story_lemmatizer"
THEMES = "textcat_multilabel"
KIND = "kind"


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
