"""Tag stage, an optional feature extractor: lemma n-grams plus character n-grams of each word.

Character n-grams ("stor", "tory", "orie") let a misspelt or non-native form ("storie",
"referal") share weights with the word it means. Each word form's n-gram keys are computed
once and cached (a story repeats its words), so the cost per story stays small. Used by
``story.LemmaCharBOW.v1`` in ``triage.tag.tagger`` when ``[tagger] char_ngrams`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy
from spacy.attrs import LEMMA, LOWER
from spacy.strings import hash_string  # type: ignore[attr-defined]
from thinc.api import Model

_SALT = 0x5F3759DF  # keeps character n-gram keys apart from lemma hashes


def extract_lemma_char_ngrams(ngram_size: int, char_size: int) -> Model[Any, Any]:
    """Lemma 1..``ngram_size``-grams and ``char_size``-character grams of each lower-case word
    (with ``<`` and ``>`` marking its edges), as extract_ngrams' (keys, counts, lengths)."""
    model: Model[Any, Any] = Model("extract_lemma_char_ngrams", _forward)
    model.attrs.update({"ngram_size": ngram_size, "char_size": char_size, "cache": {}})
    return model


def _word_keys(word: str, size: int) -> list[int]:
    marked = f"<{word}>"
    if len(marked) <= size:
        return [(int(hash_string(marked)) ^ _SALT) & 0xFFFFFFFFFFFFFFFF]
    return [(int(hash_string(marked[i : i + size])) ^ _SALT) & 0xFFFFFFFFFFFFFFFF
            for i in range(len(marked) - size + 1)]  # fmt: skip


def _forward(model: Model[Any, Any], docs: Any, is_train: bool) -> Any:
    ops, cache = model.ops, model.attrs["cache"]
    size, char = model.attrs["ngram_size"], model.attrs["char_size"]
    batch_keys, batch_vals = [], []
    for doc in docs:
        table = doc.to_array([LEMMA, LOWER])
        unigrams: Any = ops.asarray(numpy.ascontiguousarray(table[:, 0]))  # type: ignore[arg-type]
        parts = [unigrams] + [ops.ngrams(n, unigrams) for n in range(2, size + 1)]
        chars: list[int] = []
        strings = doc.vocab.strings
        for lower in table[:, 1].tolist():
            found = cache.get(lower)
            if found is None:
                found = cache[lower] = _word_keys(strings[lower], char)
            chars.extend(found)
        parts.append(numpy.array(chars, dtype="uint64"))
        keys, vals = numpy.unique(numpy.concatenate(parts), return_counts=True)
        batch_keys.append(keys)
        batch_vals.append(vals)
    lengths = numpy.array([len(k) for k in batch_keys], dtype="int32")
    keys_all = numpy.concatenate(batch_keys)
    vals_all = numpy.concatenate(batch_vals).astype("float32")

    def backprop(d_output: Any) -> list[Any]:
        return []

    return (keys_all, vals_all, lengths), backprop
