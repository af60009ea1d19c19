"""Tag stage, pure rules: header rules, score combination, review reasons, evaluation metrics,
and how withdrawal phrases and the classifier decide the kind (``triage.tag.judge``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intake.records import Address, Triage
from story_intake.themes import DEFAULT_THEMES, load_themes
from triage.tag.asking import addressed_to_us, reads_as_request, words_of
from triage.tag.evaluate import evaluate
from triage.tag.examples import LabelledText, load_examples, story_from_text
from triage.tag.judge import Hit, Reading, decide_kind
from triage.tag.rules import automated_reason, combine, review_reasons
from triage.tag.training import theme_cats

SETTINGS = load_themes(DEFAULT_THEMES)


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ((("auto-submitted", "auto-replied; owner-email=x"),), "a@example.org", "auto_submitted"),
        ((("auto-submitted", "No"),), "a@example.org", None),
        ((("precedence", "Bulk"),), "a@example.org", "bulk"),
        ((("list-id", "<x.example.org>"),), "a@example.org", "list_mail"),
        ((("return-path", "<>"),), "a@example.org", "null_sender"),
        ((("content-type", "multipart/report; report-type=delivery-status"),), "a@example.org",
         "bounce"),
        ((), "MAILER-DAEMON@example.org", "system_sender"),
        ((), "no-reply@example.org", "system_sender"),
        ((), "noreply@example.org", "system_sender"),
        ((), "jane.noreply.fan@example.org", None),
        ((), "person@example.org", None),
    ],
)  # fmt: skip
def test_rules_automated_reason(
    headers: tuple[tuple[str, str], ...], sender: str, reason: str | None
) -> None:
    story = story_from_text("x", "text")
    story = type(story)(**{**{n: getattr(story, n) for n in story.__slots__},
                           "headers": headers, "sender": Address("", sender)})  # fmt: skip
    assert automated_reason(story) == reason


def test_rules_combine_saturates_and_falls_back_to_evidence() -> None:
    assert combine(0.8, 0, 0.5, 4.0) == 0.4
    assert combine(0.0, 1, 0.5, 4.0) < combine(0.0, 4, 0.5, 4.0) < combine(0.0, 40, 0.5, 4.0) <= 0.5
    assert combine(None, 0, 0.5, 4.0) == 0.0
    assert 0.6 < combine(None, 4, 0.5, 4.0) < 0.7  # untrained theme: evidence only, 1 - e^-1


def test_rules_review_reasons() -> None:
    thresholds = {"health": 0.35}
    assert review_reasons("story", 0.9, {"health": 0.9}, thresholds, 50, SETTINGS) == ()
    assert review_reasons("story", 0.9, {"health": 0.9}, thresholds, 5, SETTINGS) == ("short_text",)
    assert "no_theme" in review_reasons("story", 0.9, {"health": 0.1}, thresholds, 50, SETTINGS)
    assert "low_confidence" in review_reasons("story", 0.9, {"health": 0.37}, thresholds, 50,
                                              SETTINGS)  # fmt: skip
    assert "uncertain_kind" in review_reasons("story", 0.3, {"health": 0.9}, thresholds, 50,
                                              SETTINGS)  # fmt: skip
    assert review_reasons("automated", 0.1, {"health": 0.0}, thresholds, 2, SETTINGS) == ()
    assert "too_large" in review_reasons("story", 0.9, {"health": 0.9}, thresholds, 50, SETTINGS,
                                         ("too_large",))  # fmt: skip


def triage(kind: str, *themes: str) -> Triage:
    return Triage("x", kind, themes, (), (), ())


def test_rules_evaluate_metrics() -> None:
    gold = [LabelledText("1", "", ("health",), "story"), LabelledText("2", "", (), "story"),
            LabelledText("3", "", ("health",), "story"),
            LabelledText("4", "", (), "request:withdrawal")]  # fmt: skip
    predicted = [triage("story", "health"), triage("story", "health"), triage("story"),
                 triage("request:withdrawal")]  # fmt: skip
    report = evaluate(gold, predicted, ["health"])
    (health,) = report.themes
    assert (health.precision, health.recall, health.f1, health.support) == (0.5, 0.5, 0.5, 2)
    assert report.kind_accuracy == 1.0 and report.withdrawal_recall == 1.0
    assert len(report.mistakes) == 2


def test_rules_evaluate_prints_confusion_and_stories_read_as_requests() -> None:
    from triage.tag.evaluate import format_report

    gold = [
        LabelledText("s1", "", ("health",), "story"),
        LabelledText("s2", "", (), "story"),
        LabelledText("s3", "", (), "story"),
        LabelledText("w", "", (), "request:withdrawal"),
    ]
    predicted = [triage("story", "health"), triage("story", "health"),
                 Triage("x", "request:withdrawal", (), (), (), ("withdrawal_by_classifier",)),
                 triage("request:withdrawal")]  # fmt: skip
    report = evaluate(gold, predicted, ["health"])
    (health,) = report.themes
    assert (health.true_pos, health.false_pos, health.false_neg, health.true_neg) == (1, 1, 0, 2)
    assert report.read_as_requests == (("s3", "request:withdrawal",
                                        ("withdrawal_by_classifier",)),)  # fmt: skip
    text = format_report(report)
    assert "TP" in text.splitlines()[0] and "TN" in text.splitlines()[0]
    assert "stories read as requests: 1 (as withdrawals: 1)" in text
    assert "s3: request:withdrawal ['withdrawal_by_classifier']" in text


def test_rules_words_of_splits_contractions() -> None:
    assert words_of("I'd rather you didn't. Dont!") == ["i", "'d", "rather", "you", "did", "not",
                                                       "do", "not"]  # fmt: skip
    assert words_of("It’s been removed") == ["it", "'s", "been", "removed"]


def span(text: str, phrase: str) -> tuple[str, int, int]:
    start = text.index(phrase)
    return text, start, start + len(phrase)


@pytest.mark.parametrize(
    ("text", "phrase", "asks"),
    [
        ("Please delete my story.", "delete my story", True),
        ("Please don't delete my story, I'm proud of it.", "delete my story", False),
        ("To be clear, I'm not withdrawing my story.", "withdrawing my story", False),
        ("I'd be grateful if you wouldn't use this and deleted it.", "deleted it", True),
        ("The GP had deleted my referral by mistake.", "deleted my referral", False),
        ("The council took it down after a week.", "took it down", False),
        ("Mum withdrew her consent for the carers.", "withdrew her consent", False),
        ("It had been erased from the system.", "It had been erased", False),
        ("In the end they made them take it down.", "take it down", False),
        ("I asked them to delete my details.", "delete my details", False),
        ("I had to delete my account in the end.", "delete my account", False),
        ("I'd like it taken down and removed from your website.", "it taken down", True),
        ("She wants it all taken out of your campaign.", "taken out of your campaign", True),
        ("I've changed my mind about it.", "changed my mind about it", True),
        ("I changed my mind about it when the nurse rang.", "changed my mind about it", False),
        ("I'd rather you didn't use it.", "n't use it", True),
        ("I'd rather it didn't go in.", "rather it didn't go", True),
        ("They didn't use it in the end.", "n't use it", False),
        ("He doesn't want his letter used any more.", "n't want his letter used", True),
        ("My mum doesn't use email.", "n't use email", False),
        ("Please remove my email address from the newsletter.", "remove my email", False),
        ("i want it gone", "want it gone", True),
        ("The photos I deleted were the only copy.", "photos I deleted", False),
        ("If you are not the intended recipient, please delete it.", "delete it", False),
        ("This email is confidential; if received in error please delete.", "delete.", False),
        # mail is hard-wrapped: the disclaimer's sentence goes on past the line break
        ("If you are not the intended recipient please tell the\nsender before deleting it.",
         "deleting it", False),
    ],
)  # fmt: skip
def test_rules_withdrawal_phrase_reads_as_request(text: str, phrase: str, asks: bool) -> None:
    assert reads_as_request(*span(text, phrase)) is asks


@pytest.mark.parametrize(
    ("text", "phrase", "addressed"),
    [
        ("The visits stopped. So please don't use it.", "n't use it", True),
        ("We talked it over. Delete it.", "Delete it", True),
        ("We talked it over. I'd ask you to bin it.", "bin it", True),
        ("I wanted out of that marriage for years.", "I wanted out", False),
        ("The neighbours all said leave me out of it and shut the door.", "leave me out", False),
    ],
)
def test_rules_withdrawal_addressed_to_us(text: str, phrase: str, addressed: bool) -> None:
    assert addressed_to_us(*span(text, phrase)) is addressed


STORY_WORDS = " ".join(["The carers changed every week and nobody read the care plan."] * 15)


def reading(text: str, phrase: str | None, **cats: float) -> Reading:
    hits: tuple[Hit, ...] = ()
    if phrase is not None:
        _, start, end = span(text, phrase)
        hits = (Hit("requests", "withdrawal", "pattern[0]", start, end, phrase),)
    kinds = {"story": 0.0, "request:withdrawal": 0.0, "request:amend": 0.0, **{
        k.replace("_", ":"): v for k, v in cats.items()}}  # fmt: skip
    return Reading(kinds, hits, len(text.split()))


@pytest.mark.parametrize(
    ("text", "phrase", "cats", "kind"),
    [
        # a long story the classifier is sure of, closed by a request to us: the request wins
        (STORY_WORDS + " So please don't use it, delete it.", "delete it",
         {"story": 0.99, "request_withdrawal": 0.01}, "request:withdrawal"),
        (STORY_WORDS + " Sorry, Ann", None, {"story": 0.99, "request_withdrawal": 0.01}, "story"),
        # the same phrase told in the middle of the story, not asked: a story
        ("The GP said to delete it. " + STORY_WORDS, "delete it",
         {"story": 0.99, "request_withdrawal": 0.01}, "story"),
        (STORY_WORDS[:400] + " They had to delete it. " + STORY_WORDS[:400], "delete it",
         {"story": 0.99, "request_withdrawal": 0.2}, "story"),
        # a short request: any asking phrase, whatever the classifier says
        ("Bin it please.", "Bin it", {"story": 0.9, "request_withdrawal": 0.05},
         "request:withdrawal"),
        # a paragraph of what was sent: an amendment (the rest still used), not the whole
        ("Please delete the paragraph about my neighbour.", "delete the paragraph",
         {"request_amend": 0.8, "request_withdrawal": 0.1}, "request:amend"),
        # another request with a withdrawal phrase for the whole: over-called, on purpose
        ("Please delete my story and my address.", "delete my story",
         {"request_amend": 0.8, "request_withdrawal": 0.1}, "request:withdrawal"),
        # no phrase at all: the classifier alone, on a short message, sure it is no story
        ("pls withdrw my stroy", None, {"request_withdrawal": 0.7, "story": 0.05},
         "request:withdrawal"),
        ("Night shift again. That's my story.", None, {"request_withdrawal": 0.5, "story": 0.3},
         "story"),
        # a phrase was there and says no: the classifier does not overrule it
        ("Please don't delete it!", "delete it",
         {"request_withdrawal": 0.8, "request_amend": 0.15, "story": 0.01}, "request:amend"),
        # the classifier alone never decides a long message
        (STORY_WORDS, None, {"request_withdrawal": 0.6, "story": 0.4}, "story"),
    ],
)  # fmt: skip
def test_rules_decide_kind_withdrawal(
    text: str, phrase: str | None, cats: dict[str, float], kind: str
) -> None:
    decided, _, evidence = decide_kind(story_from_text("x", text), reading(text, phrase, **cats))
    assert decided == kind
    if kind == "request:withdrawal":  # always with words to show for it
        assert evidence and all(text[h.start : h.end] == h.text for h in evidence)
    else:
        assert evidence == ()


@pytest.mark.parametrize(
    "defect",
    ["html_flattened", "html_without_text", "empty_after_cleaning", "truncated_for_tagging"],
)
def test_rules_text_not_read_whole_is_a_review_reason(defect: str) -> None:
    thresholds = {"health": 0.5}
    reasons = review_reasons("story", 0.9, {"health": 0.9}, thresholds, 50, SETTINGS, (defect,))
    assert reasons == (defect,)


def test_rules_second_reading_disagreements_are_neither_taught_nor_scored(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "t", "themes": ["health", "duplication"], "kind": "story",
         "second_reading": ["health"]},
        {"id": "b", "text": "t", "themes": [], "kind": "story", "second_reading": ["policing"]},
        {"id": "c", "text": "t", "themes": ["health"], "kind": "story"},  # one reading
    ]  # fmt: skip
    path = tmp_path / "train_x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    a, b, c = load_examples([path], ("health", "policing", "duplication"))
    assert (a.unsure, b.unsure, c.unsure) == ({"duplication"}, {"policing"}, frozenset())
    assert theme_cats(a, ("health", "duplication")) == {"health": 1.0}
    assert theme_cats(c, ("health", "duplication")) == {"health": 1.0, "duplication": 0.0}
    # b's policing is not scored: a prediction either way is neither right nor wrong
    read = [triage("story", "health"), triage("story", "policing"), triage("story", "health")]
    report = evaluate([a, b, c], read, ["policing", "duplication"])
    policing, duplication = report.themes
    assert (policing.false_pos, policing.true_neg, duplication.support) == (0, 2, 0)
    assert report.mistakes == ()
