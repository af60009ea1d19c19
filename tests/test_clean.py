"""Tests for intake.clean: hand-written cases, pathological input and the public corpus.

The corpus tests use the ``corpus`` fixture (../shared/corpus or $STORY_CORPUS).
Fixture families and what their expected files mean are described in its SOURCES.md.
"""

from __future__ import annotations

import email
import json
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake.clean.body import Cleaned, clean

STORY = (
    "My mother was discharged from hospital on a Friday and nobody told her GP.\n"
    "I had to explain the whole thing again to the district nurse, the social worker\n"
    "and the pharmacy, because none of them could see what the others had written."
)


# --- hand-written cases ------------------------------------------------------------------------

QUOTE_CASES = {
    "gt_quotes": f"{STORY}\n\n> Thank you for getting in touch.\n> Please tell us more.\n",
    "outlook_block": (
        f"{STORY}\n\n________________________________\nFrom: Story Team <stories@example.org>\n"
        "Sent: 03 March 2025 10:15\nTo: Jane Doe <jane@example.org>\n"
        "Subject: Tell us your story\n\nWe would like to hear from you.\n"
    ),
    "original_message": (
        f"{STORY}\n\n-----Original Message-----\nFrom: stories@example.org\n"
        "Sent: Monday, 3 March 2025 10:15\nTo: jane@example.org\nSubject: Your story\n\nHello\n"
    ),
    "english_wrote": (
        f"{STORY}\n\nOn Mon, 3 Mar 2025 at 10:15, Story Team <stories@example.org> wrote:\n\n"
        "> Please tell us more.\n"
    ),
    "german_schrieb": (
        f"{STORY}\n\nAm 03.03.2025 um 10:15 schrieb Story Team <stories@example.org>:\n\n"
        "> Bitte erzählen Sie uns mehr.\n"
    ),
    "french_a_ecrit": (
        f"{STORY}\n\nLe lun. 3 mars 2025 à 10:15, Story Team <stories@example.org> a écrit :\n\n"
        "> Dites-nous en plus.\n"
    ),
    "spanish_escribio": (
        f"{STORY}\n\nEl lun, 3 mar 2025 a las 10:15, Story Team (<stories@example.org>) "
        "escribió:\n\n> Cuéntenos más.\n"
    ),
    "dutch_schreef": (
        f"{STORY}\n\nOp ma 3 mrt. 2025 om 10:15 schreef Story Team <stories@example.org>:\n\n"
        "> Vertel ons meer.\n"
    ),
    "italian_ha_scritto": (
        f"{STORY}\n\nIl giorno lun 3 mar 2025 alle ore 10:15 Story Team <stories@example.org> "
        "ha scritto:\n\n> Raccontaci di più.\n"
    ),
    "portuguese_escreveu": (
        f"{STORY}\n\nEm seg., 3 de mar. de 2025 às 10:15, Story Team <stories@example.org> "
        "escreveu:\n\n> Conte-nos mais.\n"
    ),
    "swedish_skrev": (
        f"{STORY}\n\nDen 3 mars 2025 kl. 10:15 skrev Story Team <stories@example.org>:\n\n"
        "> Berätta mer.\n"
    ),
    "polish_pisze": (
        f"{STORY}\n\nW dniu 3.03.2025 o 10:15, Story Team <stories@example.org> pisze:\n\n"
        "> Opowiedz nam więcej.\n"
    ),
    "wrapped_attribution": (
        f"{STORY}\n\nOn Mon, Mar 3, 2025 at 10:15 AM Story Team via Campaign <\n"
        "stories@example.org> wrote:\n\n> Please tell us more.\n"
    ),
    "german_outlook": (
        f"{STORY}\n\nVon: Story Team <stories@example.org>\nGesendet: Montag, 3. März 2025 10:15\n"
        "An: Jane Doe <jane@example.org>\nBetreff: Ihre Geschichte\n\nHallo\n"
    ),
    "french_outlook": (
        f"{STORY}\n\nDe : Story Team <stories@example.org>\nEnvoyé : lundi 3 mars 2025 10:15\n"
        "À : Jane Doe <jane@example.org>\nObjet : Votre histoire\n\nBonjour\n"
    ),
    "spanish_outlook": (
        f"{STORY}\n\nDe: Story Team <stories@example.org>\nEnviado el: lunes, 3 de marzo de 2025\n"
        "Para: Jane Doe <jane@example.org>\nAsunto: Su historia\n\nHola\n"
    ),
}


@pytest.mark.parametrize("body", QUOTE_CASES.values(), ids=QUOTE_CASES.keys())
def test_clean_separates_quoted_history(body: str) -> None:
    result = clean(body)
    assert result.text == STORY
    assert result.quoted
    assert "example.org" not in result.text
    assert not result.forwarded


SIGNATURE_CASES = {
    "dash_delimiter": (
        f"{STORY}\n\n-- \nJane Doe\nSupport Worker, Example Trust\n01234 567890\n",
        "-- \nJane Doe\nSupport Worker, Example Trust\n01234 567890",
    ),
    "kind_regards": (
        f"{STORY}\n\nKind regards,\nJane Doe\nStaff Nurse\n",
        "Kind regards,\nJane Doe\nStaff Nurse",
    ),
    "regards_on_one_line": (f"{STORY}\n\nRegards, Jane", "Regards, Jane"),
    "name_and_title": (
        f"{STORY}\n\nJane Doe, Staff Nurse\n01234 567890",
        "Jane Doe, Staff Nurse\n01234 567890",
    ),
    "sender_name_block": (
        f"{STORY}\n\nJane Doe\nCommunity Midwife\njane.doe@example.org\n",
        "Jane Doe\nCommunity Midwife\njane.doe@example.org",
    ),
}


@pytest.mark.parametrize(
    ("body", "signature"), SIGNATURE_CASES.values(), ids=SIGNATURE_CASES.keys()
)
def test_clean_splits_signature(body: str, signature: str) -> None:
    result = clean(body, sender_name="Jane Doe")
    assert result.text == STORY
    assert result.signature == signature


NHS_FOOTER = (
    "This email may contain NHS confidential information and is intended solely for the\n"
    "addressee. If you are not the intended recipient please inform the sender and delete it."
)
LIST_FOOTER = (
    "_______________________________________________\nstories mailing list\n"
    "stories@lists.example.org\nhttps://lists.example.org/mailman/listinfo/stories"
)
FOOTER_CASES = {
    "nhs_confidential": (f"{STORY}\n\nKind regards,\nJane\n\n{NHS_FOOTER}\n", NHS_FOOTER),
    "sent_from_iphone": (f"{STORY}\n\nSent from my iPhone\n", "Sent from my iPhone"),
    "iphone_same_paragraph": (f"{STORY}\nSent from my iPhone", "Sent from my iPhone"),
    "environment": (
        f"{STORY}\n\nPlease consider the environment before printing this e-mail.\n",
        "Please consider the environment before printing this e-mail.",
    ),
    "mailing_list": (f"{STORY}\n\n> earlier post\n\n{LIST_FOOTER}\n", LIST_FOOTER),
}


@pytest.mark.parametrize(("body", "footer"), FOOTER_CASES.values(), ids=FOOTER_CASES.keys())
def test_clean_splits_footer(body: str, footer: str) -> None:
    result = clean(body)
    assert result.text == STORY
    assert result.footer == footer


FORWARD_HEADER = (
    "---------- Forwarded message ---------\nFrom: Jane Doe <jane@example.org>\n"
    "Date: Mon, 3 Mar 2025 at 10:15\nSubject: My story\nTo: <john@example.org>\n\n"
)


@pytest.mark.parametrize(
    "note", ["", "FYI\n\n", "Please see below.\n\n", "fwd\n\n"], ids=["none", "fyi", "see", "fwd"]
)
def test_clean_forward_without_own_text_becomes_story(note: str) -> None:
    result = clean(f"{note}{FORWARD_HEADER}{STORY}\n")
    assert result.forwarded
    assert result.text == STORY
    assert "Forwarded message" in result.quoted


def test_clean_outlook_forward_without_own_text_becomes_story() -> None:
    body = (
        "\n\nFrom: Jane Doe <jane@example.org>\nSent: 03 March 2025 10:15\n"
        f"To: john@example.org\nSubject: My story\n\n{STORY}\n\nThanks,\nJane\n"
    )
    result = clean(body)
    assert (result.forwarded, result.text, result.signature) == (True, STORY, "Thanks,\nJane")


def test_clean_apple_quoted_forward_becomes_story() -> None:
    quoted = "\n".join(f"> {line}" if line else ">" for line in FORWARD_HEADER.splitlines())
    quoted = quoted.replace("---------- Forwarded message ---------", "Begin forwarded message:")
    story = "\n".join(f"> {line}" for line in STORY.split("\n"))
    body = f"Sent from my iPhone\n\n{quoted}\n{story}"
    result = clean(body)
    assert result.forwarded
    assert result.text == STORY


def test_clean_forward_with_covering_note_is_the_forwarded_story() -> None:
    # Found in samples/stories/14: a support worker's note above a victim's forwarded story.
    own = "My neighbour wrote this about her father; I am sending it with her permission."
    result = clean(f"{own}\n\n{FORWARD_HEADER}{STORY}\n")
    assert result.forwarded
    assert result.text.startswith(own)  # the note often says how the story may be used
    assert STORY.splitlines()[0] in result.text
    assert "Forwarded message" not in result.text


def test_clean_forward_below_the_forwarders_own_story_stays_quoted() -> None:
    own = " ".join(["My own experience with the council was different again."] * 10)
    result = clean(f"{own}\n\n{FORWARD_HEADER}{STORY}\n")
    assert not result.forwarded
    assert result.text == own
    assert STORY.splitlines()[0] in result.quoted


def test_clean_reply_that_only_says_thanks_is_not_a_forward() -> None:
    body = (
        "Thanks!\n\nFrom: Story Team <stories@example.org>\nSent: 03 March 2025\n"
        "To: jane@example.org\nSubject: We received your story\n\nThank you for writing.\n"
    )
    result = clean(body)
    assert (result.text, result.forwarded) == ("Thanks!", False)


UNCHANGED_CASES = {
    "plain_story": STORY,
    "wrote_mid_paragraph": (
        "I wrote to the council three times. The housing officer wrote back once.\n"
        "On 3 May 2024 the consultant wrote: she needs a care package.\nNothing happened."
    ),
    "wrote_colon_line": f"{STORY}\nThe letter from the hospital said what my GP wrote:\n\n"
    "Patient to be followed up in two weeks.",
    "from_mid_paragraph": (
        "Nobody joined the dots between the agencies.\n"
        "From: the ward, to the GP, to the council - every handover lost something.\n"
        "To this day I repeat the story at every appointment."
    ),
    "thanks_sentence_ends_story": f"{STORY}\n\nThanks for reading this and for listening.",
    "confidential_in_own_words": (
        f"{STORY}\n\nThis email is confidential - please do not use my name in anything public."
    ),
    "list_at_end": f"{STORY}\n\nWho I had to tell:\n\n- Social services\n- Police",
    "only_thank_you": "Thank you.",
    "thank_you_then_sentence": f"{STORY}\n\nThank you.\nNobody else listened.",
    "sender_name_in_sentence": f"{STORY}\n\nIn the end Jane Doe rang them herself.",
    "first_name_in_short_lines": f"{STORY}\n\nJane drove me there.\nNobody helped.",
    "dashes_then_update": f"{STORY}\n--\nUpdate: they finally called me back.",
    "dated_letter_quoted_unmarked": (
        f"{STORY}\n\nOn 3 May 2024, at 10:30, the consultant wrote:\n\nWe cannot help further."
    ),
}


@pytest.mark.parametrize("body", UNCHANGED_CASES.values(), ids=UNCHANGED_CASES.keys())
def test_clean_leaves_story_without_quote_or_signature_unchanged(body: str) -> None:
    result = clean(body, sender_name="Jane Doe")
    assert result == Cleaned(text=body, quoted="", signature="", footer="", forwarded=False)


def test_clean_normalises_line_endings() -> None:
    result = clean(STORY.replace("\n", "\r\n") + "\r\n\r\n> quoted\r\n")
    assert (result.text, result.quoted) == (STORY, "> quoted")
    assert clean(STORY.replace("\n", "\r")).text == STORY


def test_clean_interleaved_reply_keeps_answers_only() -> None:
    body = (
        "> What happened?\nMy father fell at home.\n\n"
        "> Who did you tell?\nThe GP and the council.\n"
    )
    result = clean(body)
    assert result.text == "My father fell at home.\n\nThe GP and the council."
    assert result.quoted == "> What happened?\n> Who did you tell?"


# --- pathological input ------------------------------------------------------------------------

PATHOLOGICAL = {
    "long_line": "a" * 100_000,
    "long_line_digits": ("On 1 2 3, " * 10_000) + "wrote:",
    "many_quotes": ">\n" * 50_000,
    "nested_quotes": "".join(">" * (i % 200) + " On 1 Jan, x wrote:\n" for i in range(5_000)),
    "many_headers": "From: a\nTo: b\nSubject: c\n" * 5_000,
    "many_signoffs": "Thanks,\n" * 20_000,
    "many_dashes": "-- \n" * 20_000,
    "many_attributions": "On Mon, 1 Jan 2024 at 10:00, A <a@example.org>\n" * 10_000,
    "binaryish": "".join(chr(i % 0x3000) for i in range(60_000)),
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_clean_pathological_input_completes(body: str) -> None:
    result = clean(body)
    total = sum(len(part) for part in (result.text, result.quoted, result.signature, result.footer))
    assert total <= len(body) + 1000


# --- the public corpus -------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Trailing spaces per line and leading/trailing blank lines do not count."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _agrees(result: Cleaned, expected: str) -> bool:
    """The fixture's reply equals `text`, or `text` plus the start of our signature/footer.

    discourse and talon keep sign-offs ("Thanks,\\nJane") and device lines in the visible reply;
    `Cleaned` files those under `signature`/`footer`. The quote boundary must still agree exactly.
    """
    want, text = _normalise(expected), _normalise(result.text)
    if want == text:
        return True
    if text and not want.startswith(text + "\n"):
        return False
    rest = [line for line in _normalise(want[len(text) :]).split("\n") if line]
    around = _normalise(result.signature + "\n" + result.footer)
    ours = [line for line in around.split("\n") if line]
    return bool(rest) and rest == ours[: len(rest)]


def _first_text_part(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain" and isinstance(part, EmailMessage):
            content = part.get_content()
            assert isinstance(content, str)
            return content
    raise AssertionError(f"no text/plain part in {path}")


@dataclass(frozen=True)
class _Case:
    family: str
    name: str
    passed: bool


def _trimmer_cases(root: Path) -> list[_Case]:
    folder = root / "email-reply-trimmer"
    cases = []
    for path in sorted((folder / "emails").glob("*.txt")):
        expected = (folder / "trimmed" / path.name).read_text(encoding="utf-8")
        result = clean(path.read_text(encoding="utf-8"))
        cases.append(_Case("email-reply-trimmer", path.stem, _agrees(result, expected)))
    return cases


def _talon_cases(root: Path) -> list[_Case]:
    folder = root / "talon"
    expected = json.loads((folder / "EXPECTED.json").read_text(encoding="utf-8"))
    cases = []
    for name, reply in expected["standard_replies"]["expected_reply_text"].items():
        result = clean(_first_text_part(folder / name))
        cases.append(_Case("talon", name, _agrees(result, reply)))
    for case in expected["signature_stripped"]["cases"]:
        body = (folder / case["body"]).read_text(encoding="utf-8")
        sender = (folder / case["sender"]).read_text(encoding="utf-8").strip()
        signature = (folder / case["expected_signature"]).read_text(encoding="utf-8").strip()
        result = clean(body, sender_name=sender)
        remainder = body[: body.rfind(signature)] if signature else body
        passed = _normalise(result.signature) == _normalise(signature) and _normalise(
            result.text
        ) == _normalise(remainder)
        cases.append(_Case("talon", case["body"], passed))
    share = clean(_first_text_part(folder / "fixtures" / "reply-quotations-share-block.eml"))
    cases.append(_Case("talon", "share-block", bool(share.text) and "From" not in share.text))
    return cases


# Achieved on the corpus of 2026-11-24: talon 19/19, email-reply-trimmer 56/64, total 75/83
# (0.904; an earlier note said 58/64, but the code before issue 22 measured 56/64). The eight
# misses are discourse's choices that differ from this API by design: it keeps interleaved "> "
# quotes in the reply, keeps a body that is all quote, and keeps a forward's own note only.
PASS_RATE_FLOOR = 0.90


def test_clean_corpus_pass_rate(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = corpus
    cases = _talon_cases(root) + _trimmer_cases(root)
    rate = sum(case.passed for case in cases) / len(cases)
    with capsys.disabled():
        for family in ("talon", "email-reply-trimmer"):
            mine = [case for case in cases if case.family == family]
            print(f"\n{family}: {sum(c.passed for c in mine)}/{len(mine)}", end="")
        print(f"\ntotal: {sum(c.passed for c in cases)}/{len(cases)} = {rate:.3f}")
        print("failing:", ", ".join(case.name for case in cases if not case.passed))
    assert rate >= PASS_RATE_FLOOR


def test_clean_never_raises_on_corpus_bodies(corpus: Path) -> None:
    root = corpus
    rows = (line.split("\t") for line in (root / "MANIFEST.tsv").read_text().splitlines()[1:])
    paths = [root / row[0] for row in rows if len(row) > 1 and row[1] == "body-text"]
    assert paths
    for path in paths:
        result = clean(path.read_bytes().decode("utf-8", errors="replace"))
        assert isinstance(result, Cleaned)
