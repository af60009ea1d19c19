"""Measure the tagger on labelled examples: precision, recall, F1, kind accuracy. Stdlib only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intake.records import Triage
from triage.tag.examples import LabelledText
from triage.tag.rules import STORY, WITHDRAWAL


@dataclass(frozen=True, slots=True)
class ThemeScore:
    """Precision, recall and F1 of one theme, with the counts behind them."""

    theme: str
    precision: float
    recall: float
    f1: float
    support: int
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    true_neg: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    """The evaluation of one labelled set."""

    themes: tuple[ThemeScore, ...]
    macro_f1: float
    kind_accuracy: float
    withdrawal_recall: float
    withdrawals: int
    mistakes: tuple[tuple[LabelledText, Triage], ...]
    # Stories (gold kind ``story``) read as a request: (id, kind read, review reasons).
    read_as_requests: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def evaluate(
    gold: Sequence[LabelledText], predicted: Sequence[Triage], themes: Sequence[str]
) -> Report:
    """Compare predictions with the gold labels (same order); themes are scored on stories,
    except those two readers disagreed on (``LabelledText.unsure``)."""
    scores = tuple(_theme_score(t, gold, predicted) for t in themes)
    kinds_right = sum(g.kind == p.kind for g, p in zip(gold, predicted, strict=True))
    withdrawals = [(g, p) for g, p in zip(gold, predicted, strict=True) if g.kind == WITHDRAWAL]
    found = sum(p.kind == WITHDRAWAL for _, p in withdrawals)
    mistakes = tuple((g, p) for g, p in zip(gold, predicted, strict=True)
                     if g.kind != p.kind or _sure(g.themes, g) != _sure(p.themes, g))  # fmt: skip
    return Report(
        themes=scores,
        macro_f1=sum(s.f1 for s in scores) / len(scores) if scores else 0.0,
        kind_accuracy=kinds_right / len(gold) if gold else 0.0,
        withdrawal_recall=found / len(withdrawals) if withdrawals else 1.0,
        withdrawals=len(withdrawals),
        mistakes=mistakes,
        read_as_requests=tuple(
            (g.id, p.kind, p.review_reasons)
            for g, p in zip(gold, predicted, strict=True)
            if g.kind == STORY and p.kind.startswith("request:")
        ),
    )


def _sure(themes: Sequence[str], gold: LabelledText) -> set[str]:
    return set(themes) - gold.unsure


def _theme_score(
    theme: str, gold: Sequence[LabelledText], predicted: Sequence[Triage]
) -> ThemeScore:
    # A theme two readers disagreed on (LabelledText.unsure) has no right answer to score.
    pairs = [(g, p) for g, p in zip(gold, predicted, strict=True) if theme not in g.unsure]
    true_pos = sum(theme in g.themes and theme in p.themes for g, p in pairs)
    false_pos = sum(theme not in g.themes and theme in p.themes for g, p in pairs)
    false_neg = sum(theme in g.themes and theme not in p.themes for g, p in pairs)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_neg = len(pairs) - true_pos - false_pos - false_neg
    return ThemeScore(theme, precision, recall, f1, true_pos + false_neg,
                      true_pos, false_pos, false_neg, true_neg)  # fmt: skip


def format_report(report: Report, show_mistakes: bool = True) -> str:
    """The report as the ``evaluate`` command prints it."""
    lines = [
        f"{'theme':<14} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"
        f" {'TP':>5} {'FP':>5} {'FN':>5} {'TN':>5}"
    ]
    lines += [f"{s.theme:<14} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} {s.support:>8}"
              f" {s.true_pos:>5} {s.false_pos:>5} {s.false_neg:>5} {s.true_neg:>5}"
              for s in report.themes]  # fmt: skip
    lines.append(f"{'macro':<14} {'':>9} {'':>7} {report.macro_f1:>6.3f}")
    lines.append(f"kind accuracy {report.kind_accuracy:.3f}; withdrawal recall "
                 f"{report.withdrawal_recall:.3f} ({report.withdrawals} withdrawals)")  # fmt: skip
    lines.append(
        f"stories read as requests: {len(report.read_as_requests)} "
        f"(as withdrawals: {sum(k == WITHDRAWAL for _, k, _ in report.read_as_requests)})"
    )
    lines += [f"  {story_id}: {kind} {list(reasons)}"
              for story_id, kind, reasons in report.read_as_requests]  # fmt: skip
    if show_mistakes:
        lines.append(f"misclassified: {len(report.mistakes)}")
        for gold, triage in report.mistakes:
            lines.append(f"  {gold.id}: expected {gold.kind} {list(gold.themes)}, got "
                         f"{triage.kind} {list(triage.themes)} "
                         f"{dict((k, round(v, 2)) for k, v in triage.scores)}")  # fmt: skip
    return "\n".join(lines)
