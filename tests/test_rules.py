"""Tag stage, pure rules: header rules, score combination, review reasons, evaluation metrics."""

from __future__ import annotations

import pytest

from config.themes import DEFAULT_THEMES, load_themes
from intake.records import Address, Triage
from triage.evaluate import evaluate
from triage.examples import LabelledText, story_from_text
from triage.rules import automated_reason, combine, review_reasons

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
