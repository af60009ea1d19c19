"""Tag stage, reading a withdrawal phrase in context: does it ask us, or tell of something?

A pure, stdlib-only companion of ``triage.tag.rules``: ``triage.tag.judge`` asks it about every
withdrawal phrase the matchers found, before the phrase may make a message a withdrawal.
"""

from __future__ import annotations

import itertools
import re

# Withdrawal phrases (themes.toml [requests.withdrawal]) also turn up in stories: "the GP had
# deleted my referral", "they made them take it down", "please don't delete my story", the
# disclaimer's "if you are not the intended recipient ... delete it". A phrase is a request to us
# only when the words around it say so; these are the closed-class words read for that.
NEGATION_WORDS = 6  # how far back in its clause a negator still governs a phrase
_NEGATORS = frozenset(("not", "never", "no", "nt", "without", "nobody", "noone"))
# Just before a phrase, or inside one ("it was cancelled"), these make it a report.
_NARRATIVE = frozenset(("was", "were", "been", "being", "had", "has", "did", "got", "gets"))
_THIRD_PARTY = frozenset(("he", "she", "they", "them", "him", "who", "which", "someone",
                          "somebody", "nobody", "everyone", "everybody", "people"))  # fmt: skip
_SUBJECTS = _THIRD_PARTY | {"i", "we", "it"}
# Who, in a story, removes or withdraws things: "this the GP removed", "the council deleted".
_AGENTS = frozenset(
    (
        "gp",
        "police",
        "council",
        "hospital",
        "doctor",
        "nurse",
        "officer",
        "school",
        "court",
        "home",
        "agency",
        "ward",
        "team",
        "surgery",
        "carer",
        "carers",
        "staff",
        "judge",
        "cps",
        "dwp",
        "consultant",
        "worker",
        "bank",
    )
)
# "Can't share it", "we couldn't use it": what someone cannot do is told, not asked for.
_INABILITY = frozenset(("ca", "can", "could", "cannot"))
_PERFECT = frozenset(("had", "has", "have", "'ve"))
_CONDITIONAL = frozenset(("would", "'d"))  # "it would be removed": told of, as it was to be
_WISHES = frozenset(("want", "like", "need", "prefer", "wish"))  # "want it gone": it is the object
_SECOND_PERSON = frozenset(("you", "u", "ye", "ya"))
_DETERMINERS = frozenset(("my", "the", "this", "that", "his", "her", "our", "their", "your", "a"))
_AUXILIARIES = frozenset(("do", "does", "did", "would", "could", "should", "will", "wo", "ca",
                          "can", "must", "might", "may", "'d", "am", "is", "are", "'m",
                          "'re"))  # fmt: skip
_ADVERBS = frozenset(("just", "then", "also", "already", "finally", "eventually", "quickly",
                      "simply", "actually", "even", "all", "completely", "really",
                      "still"))  # fmt: skip
_CONJUNCTIONS = frozenset(("and", "or", "but", "so", "then", "because", "if", "when", "though",
                           "although", "while", "once"))  # fmt: skip
_IRREGULAR_PAST = frozenset(("withdrew", "took", "forgot", "struck", "drew", "threw", "wrote",
                             "got", "went", "tore", "undid", "wanted", "left", "kept", "made",
                             "did", "withdrawn", "taken", "forgotten", "written", "gone",
                             "done"))  # fmt: skip
# "asked them to delete it" asks someone else; "had to delete it" tells what happened.
_BEFORE_TO = _THIRD_PARTY | {"her", "had", "used", "tried", "managed", "able", "forced"}
# A sentence with one of these words speaks to us ("please", "could you", "I'd rather").
_ADDRESSED = frozenset(("please", "pls", "plz", "kindly", "you", "your", "u", "ye", "ya", "'d",
                        "would", "want", "wish", "ask", "asking", "request", "rather", "prefer",
                        "grateful", "wants", "wishes"))  # fmt: skip  # "he wants it removed"
# "I withdraw my consent", "we are withdrawing it": the sender withdraws, in the present. Not
# "victims withdraw their statements" or "pressured to withdraw my statement": the verb alone
# does not speak to us (every "withdraw ..." phrase has it).
_PERFORMATIVE = frozenset(("withdraw", "withdrawing"))
_PERFORMERS = frozenset(("i", "we", "'m", "am", "are", "'re", "hereby", "now", "formally"))
# "I need to withdraw the email", "we've decided to withdraw it": the sender's own need or
# decision, just before "to" (not "pressured to withdraw", "she decided to withdraw").
_NEEDS = frozenset(("need", "have", "decided", "going", "got", "like", "want", "wish"))
# Words that may come before an imperative at the start of its sentence ("So, delete it").
_OPENERS = frozenset(("so", "and", "but", "anyway", "just", "now", "ok", "okay", "oh", "also",
                      "then", "actually", "sorry", "hi", "hello", "re"))  # fmt: skip
# A sentence matching this is a disclaimer ("If you are not the intended recipient ... delete it").
_DISCLAIMER = re.compile(
    r"intended recipient|named recipient|not the recipient|addressee|"
    r"received this|(?:received|reached you)\W+(?:\w+\W+){0,3}in error|"
    # the environment footer: "please do not print this email unless necessary"
    r"\bprint(?:ing|ed)?\b.{0,40}\bunless\b|\bbefore (?:you )?print"
)
# "I don't want to be named", "not my name": anonymity, the story still to be used; unless the
# phrase names the story too ("I don't want my name or my story used").
_IDENTIFYING = frozenset(("identify", "identifies", "identifying", "identified", "identifiable"))
_ANONYMITY = frozenset(("name", "named", "names", "surname", "identity", "identified",
                        "identifiable", "anonymous", "anonymously", "initials"))  # fmt: skip
# Part of what was sent: "delete the second paragraph", "take out that sentence" ask for an
# amendment, the rest still to be used (request:amend), not a withdrawal. ("Bit" and "part" are
# not here: "pull my bit out", "not use any part of it", "take part" withdraw the whole.)
_PARTS = frozenset(("paragraph", "paragraphs", "sentence", "sentences", "section", "line",
                    "lines", "photo", "photos", "picture", "pictures"))  # fmt: skip
# What a phrase takes its object away from ("keep my name out of it": "it" is the report).
_AWAY = ("out", "from", "off")
_STORY_WORDS = frozenset(("story", "stories", "email", "emails", "message", "letter", "account",
                          "words", "experience", "submission", "it", "this", "everything",
                          "contribution", "piece", "post"))  # fmt: skip
# "Can I withdraw it later?", "If I want to take my story out in future, how?": a question
# about withdrawing one day, asked in the first person before the phrase, is not a request.
_FIRST_PERSON_ASKS = frozenset((("if", "i"), ("can", "i"), ("could", "i"), ("may", "i"),
                                ("do", "i"), ("would", "i"), ("will", "i"), ("if", "we"),
                                ("can", "we"), ("in", "case")))  # fmt: skip
_LATER = frozenset(("later", "future", "ever", "anytime", "whenever", "eventually", "someday",
                    "afterwards"))  # fmt: skip
_SOMEDAY = (("if", "i", "change"), ("if", "i", "decide"), ("if", "i", "ever"))
_CONTRACTIONS = {"dont": "do not", "didnt": "did not", "doesnt": "does not", "cant": "ca not",
                 "wont": "wo not", "wouldnt": "would not", "couldnt": "could not",
                 "wasnt": "was not", "isnt": "is not", "havent": "have not", "hadnt": "had not",
                 "hasnt": "has not", "shouldnt": "should not", "im": "i 'm",
                 "id": "i 'd"}  # fmt: skip
# Mail is hard-wrapped: a line break alone ends nothing, a blank line ends a paragraph.
_SENTENCE_END = re.compile(r"[.!?]|\n\s*\n")
_CLAUSE_END = re.compile(r"[.!?;:,()\"“”–—]|\n\s*\n|\s-+\s")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|'[a-z]+")


def words_of(text: str) -> list[str]:
    """Lower-case words with contractions split: "didn't" -> did, not; "I'd" -> i, 'd."""
    text = text.lower().replace("’", "'").replace("n't", " not")
    text = re.sub(r"(?<=[a-z])'(d|m|re|ll|s|ve)\b", r" '\1", text)
    found = []
    for word in _WORD.findall(text):
        found += _CONTRACTIONS.get(word, word).split()
    return found


def reads_as_request(text: str, start: int, end: int) -> bool:
    """Whether the withdrawal phrase ``text[start:end]`` asks for something rather than tells
    of it: not negated ("please don't delete my story"), not narrative ("the GP had deleted my
    referral", "it was cancelled", "made them take it down"), not in a disclaimer."""
    phrase = words_of(text[start:end])
    if _DISCLAIMER.search(" ".join(_sentence(text, start).lower().split())):
        return False
    if not phrase:  # punctuation alone: nothing to read it by
        return True
    if _PARTS & set(phrase):
        return False
    if _SENTENCE_END.search(text[start:end].rstrip(".!?… \n")):
        return False  # "refused to remove jewellery'. That note": two sentences, no request
    if _idiom(phrase):
        return False
    if words_of(text[end : end + 12])[:1] == ["against"]:
        return False  # "I don't want it used against the officer": that use, not the story
    named = phrase[: min((phrase.index(w) for w in _AWAY if w in phrase), default=len(phrase))]
    # "remove any details that could identify me": what is to go is what identifies
    identifies = _IDENTIFYING & set(words_of(text[end : _next_clause_end(text, end)])[:8])
    if (identifies or _ANONYMITY & set(phrase)) and not _STORY_WORDS & set(named):
        return False  # "I don't want to be named", "keep my name out of it": not the story
    if _hypothetical(text, start):
        return False
    whole = words_of(text[_last_match_end(_CLAUSE_END, text, start) : start])
    clause = whole[max((i + 1 for i, w in enumerate(whole) if w in _CONJUNCTIONS), default=0) :]
    if phrase[0] in _NEGATORS:  # "don't use it": who does not, and in which tense
        return _negated_request(clause, phrase)
    if _NEGATORS & set(clause[-NEGATION_WORDS:]):  # "please don't delete it", "not withdrawing"
        return False
    if phrase[0] == "rather":  # "I'd rather it didn't go in": a wish, whatever the tense
        return True
    if "address" in phrase[-2:] or words_of(text[end : end + 12])[:1] == ["address"]:
        return False  # "remove my email address", "take my email address off": mailing lists
    inside = phrase[1:-1]
    if _CONDITIONAL & set(inside) and "be" in inside and _is_past(phrase[-1]):
        return False  # "we were told it would be removed": what was to happen, not asked
    if _NARRATIVE & set(inside) or any(
        w in _CONJUNCTIONS and _is_past(n) for w, n in zip(inside, phrase[2:], strict=False)
    ):
        return False  # "it was cancelled", "I tidied it up and taken out ..."
    doer = [w for w in phrase[1:-1] if w not in _AUXILIARIES | _PERFECT][-1:]
    if (
        len(phrase) > 2
        and doer
        and doer[0] in _SUBJECTS | _AGENTS
        and _is_past(phrase[-1])
        and phrase[0] not in _WISHES
    ):
        return False  # "the photos I deleted", "this the GP removed"; not "I want it gone"
    if "their" in phrase and _THIRD_PARTY & set(whole):
        return False  # "some people ask you to remove their stories"
    previous = [w for w in clause if w not in _ADVERBS]
    before, earlier = ([""] * 2 + previous)[-1], ([""] * 2 + previous)[-2]
    if _is_past(phrase[0]) and not _past_request(phrase, whole, before, earlier):
        return False  # "the police took it down", "they've withdrawn officers"
    if before in _NARRATIVE and earlier not in _SECOND_PERSON | {"have", "'ve"}:
        return False  # "had deleted", "did delete"; not "I've had second thoughts"
    return not (before in _THIRD_PARTY or (before == "to" and earlier in _BEFORE_TO))


def _next_clause_end(text: str, start: int) -> int:
    found = _CLAUSE_END.search(text, start)
    return found.start() if found else len(text)


def addressed_to_us(text: str, start: int, end: int) -> bool:
    """Whether the sentence holding the phrase ``text[start:end]`` speaks to us: it asks
    ("please", "could you", "I'd rather") or begins with the phrase, a verb (an imperative:
    "Delete it.", not "I wanted out of that marriage")."""
    if _ADDRESSED & set(words_of(_sentence(text, start))):
        return True
    lead = words_of(text[_last_match_end(_SENTENCE_END, text, start) : start])
    phrase = words_of(text[start:end])
    if phrase[:1] and phrase[0] in _PERFORMATIVE and _performed(lead):
        return True
    return (bool(phrase) and all(w in _OPENERS for w in lead)
            and phrase[0] not in _SUBJECTS | _DETERMINERS and not _is_past(phrase[0]))  # fmt: skip


def _performed(lead: list[str]) -> bool:
    # The words before "withdraw" in its sentence make it the sender's act ("I withdraw",
    # "we are withdrawing", "I need to withdraw").
    if lead[-1:] and lead[-1] in _PERFORMERS:
        return True
    return (
        lead[-2:-1] != []
        and lead[-1] == "to"
        and lead[-2] in _NEEDS
        and (bool({"i", "we"} & set(lead[-4:-2])))
    )


def negated(text: str, start: int) -> bool:
    """Whether a negator governs the phrase starting at ``start`` in its clause ("pls no use
    my story", "I'm not happy for you to use it")."""
    whole = words_of(text[_last_match_end(_CLAUSE_END, text, start) : start])
    return bool(_NEGATORS & set(whole[-NEGATION_WORDS:]))


def _hypothetical(text: str, start: int) -> bool:
    # The phrase's sentence, up to the phrase, asks in the first person about a time to come.
    lead = words_of(text[_last_match_end(_SENTENCE_END, text, start) : start])
    sentence = words_of(_sentence(text, start))
    asks = any(pair in _FIRST_PERSON_ASKS for pair in itertools.pairwise(lead))
    someday = any(t in _SOMEDAY for t in zip(sentence, sentence[1:], sentence[2:], strict=False))
    return asks and (someday or bool(_LATER & set(sentence)))


def _past_request(phrase: list[str], clause: list[str], before: str, earlier: str) -> bool:
    # A past form asks only with "you" in its clause ("if you wouldn't use it and deleted it"),
    # after "be" ("that it be removed") or "I/we have" ("I've withdrawn my consent"), or when
    # it names us ("taken out of your campaign").
    perfect = before in ("have", "'ve") and earlier in _SECOND_PERSON | {"i", "we", ""}
    return (
        (before == "be" and earlier not in _CONDITIONAL)  # not "I would be removed from all"
        or perfect
        or bool(_SECOND_PERSON & set(clause + phrase))
        or ("your" in phrase)
    )


def _idiom(phrase: list[str]) -> bool:
    # "I don't want to go into all of it": the telling, not the story, is held back.
    return " want to go into " in f" {' '.join(phrase)} "


def _negated_request(clause: list[str], phrase: list[str]) -> bool:
    # "I'd rather you didn't use it", "he doesn't want it used": requests.
    # "they didn't use it", "I didn't consent", "my mum doesn't use email": reports.
    helpers, between = list(clause), []
    while helpers and helpers[-1] in _AUXILIARIES | _ADVERBS | _NARRATIVE:
        between.append(helpers.pop())
    subject = helpers[-1] if helpers else ""
    # The tense is the subject's own ("they didn't"), not an earlier verb's in the clause ("she
    # has asked me to let you know she no longer wishes it used").
    tense = next((w for w in between if w in _AUXILIARIES | _NARRATIVE), "")
    if tense in _NARRATIVE | _INABILITY and subject not in _SECOND_PERSON:
        return False  # "they didn't use it", "can't share it, apparently"; not "you can't"
    wish = bool({"want", "wish", "like", "wants", "wishes"} & set(phrase))  # "she no longer wishes"
    if tense in ("would", "wo") and not wish and not (_SECOND_PERSON | {"i", "we"}) & set(clause):
        return False  # "the drug service wouldn't share anything": a refusal told, not asked
    return wish or (tense != "does" and subject not in _THIRD_PARTY | _AGENTS)


def _sentence(text: str, at: int) -> str:
    found = _SENTENCE_END.search(text, at)
    return text[_last_match_end(_SENTENCE_END, text, at) : found.end() if found else len(text)]


def _is_past(word: str) -> bool:
    """A past tense or participle ("deleted", "took", "withdrawn"), not "need" or "bed"."""
    return word in _IRREGULAR_PAST or (word.endswith("ed") and len(word) > 4)


def _last_match_end(pattern: re.Pattern[str], text: str, before: int) -> int:
    end = 0
    for match in pattern.finditer(text, 0, before):
        end = match.end()
    return end
