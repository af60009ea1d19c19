"""Earlier mail pasted without quote marks (issue 22): a reply that pastes our acknowledgement or
the sender's own earlier story below a device line, or with no marker at all, keeps only the
sender's new words; a reply that merely shares a sentence with the earlier message keeps it."""

from __future__ import annotations

import textwrap
import time

import pytest

from intake.clean.body import clean
from story_intake.earlier import reply_texts

# The acknowledgement as the person received it (their name, a reference, the team's address).
RECEIVED_ACK = """Dear Sam,

Thank you for sharing your story with us. It has reached us, and your reference
number is QX-4821.

What happens next
Someone in our team will read your story. We read every one, but we may not be
able to reply to each person. We may get in touch if we would like to ask you
more. You do not need to do anything else.

If you change your mind
You can withdraw your story at any time. Reply to this email with your
reference number (QX-4821) and the word "withdraw", and we will take
your story out of our work and delete it.

If you have a question, you can write to us at stories@example.org.

With thanks,
The Stories Team

This is an automatic reply."""
EARLIER_STORY = (
    "My mother was discharged from the hospital on a Friday and the district nurses were never "
    "told. Nobody came for four days. The GP surgery said they had no letter from the ward, "
    "and the pharmacy had a different list of her medicines from the one the ward gave us."
)
NEW_WORDS = "One more thing: the care home had the wrong medicines list as well."
DEVICE_LINES = (
    "Sent from my iPhone",
    "Envoyé de mon iPhone",
    "Von meinem iPhone gesendet",
    "Enviado desde mi iPhone",
    "Verzonden vanaf mijn iPhone",
    "Inviato da iPhone",
    "Skickat från min iPhone",
)


def _rewrapped(text: str, width: int) -> str:
    """The text as a phone pastes it: paragraphs re-wrapped to another width."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(textwrap.fill(" ".join(par.split()), width) for par in paragraphs)


@pytest.mark.parametrize("device", DEVICE_LINES)
def test_clean_earlier_ack_pasted_under_device_line_is_quoted(device: str) -> None:
    body = f"{NEW_WORDS}\n\n{device}\n\n{_rewrapped(RECEIVED_ACK, 52)}\n"
    cleaned = clean(body, "Sam Jones", reply_texts())
    assert cleaned.text == NEW_WORDS
    assert cleaned.footer == device
    assert "QX-4821" in cleaned.quoted and "automatic reply" in cleaned.quoted


@pytest.mark.parametrize("device", DEVICE_LINES[:3])
def test_clean_earlier_story_pasted_under_device_line_is_quoted(device: str) -> None:
    body = f"{NEW_WORDS}\n{device}\n{_rewrapped(EARLIER_STORY, 60)}\n"
    cleaned = clean(body, "", (EARLIER_STORY,))
    assert cleaned.text == NEW_WORDS
    assert "district nurses" in cleaned.quoted and "district" not in cleaned.text


def test_clean_earlier_story_pasted_without_any_marker_is_quoted() -> None:
    pasted = _rewrapped(EARLIER_STORY, 45).replace(" ", "  ", 3)  # re-spaced too
    body = f"{NEW_WORDS}\n\n{pasted}\n"
    cleaned = clean(body, "", (EARLIER_STORY,))
    assert cleaned.text == NEW_WORDS
    assert "pharmacy" in cleaned.quoted


def test_clean_earlier_new_words_below_the_paste_stay_own() -> None:
    later = "And since then the same thing happened to my father."
    body = f"{NEW_WORDS}\n\n{_rewrapped(EARLIER_STORY, 70)}\n\n{later}\n"
    cleaned = clean(body, "", (EARLIER_STORY,))
    assert cleaned.text == f"{NEW_WORDS}\n\n\n{later}"
    assert "district nurses" in cleaned.quoted


def test_clean_earlier_shared_sentence_stays_own() -> None:
    body = (
        "You wrote that I can withdraw my story at any time. Reply to this email with your "
        "reference number, you said, but I want it kept.\n"
        "The ward still has not sent the letter to the GP.\n"
    )
    assert clean(body, "", reply_texts()).text == body.strip()


def test_clean_earlier_story_retold_in_part_stays_own() -> None:
    body = (
        "As I said before, nobody came for four days. Since then the GP surgery said they had "
        "no letter from the ward again, for my father this time.\n"
    )
    assert clean(body, "", (EARLIER_STORY,)).text == body.strip()


def test_clean_earlier_nothing_lost() -> None:
    body = f"{NEW_WORDS}\n\nSent from my iPhone\n\n{_rewrapped(RECEIVED_ACK, 52)}\n"
    cleaned = clean(body, "", reply_texts())
    kept = "\n".join((cleaned.text, cleaned.quoted, cleaned.signature, cleaned.footer))
    assert sorted(kept.split()) == sorted(body.split())


@pytest.mark.parametrize(
    "body",
    [
        "Sent from my iPhone\n" * 20_000,  # a device line above every line
        (EARLIER_STORY + "\nSent from my iPhone\n") * 2_000,  # pasted, then a device line, again
        "the the the the the\n" * 40_000,  # one shingle over and over
    ],
    ids=["device_lines", "pasted_and_device", "repeated_words"],
)
def test_clean_earlier_hostile_shapes_stay_linear(body: str) -> None:
    started = time.process_time()
    result = clean(body, "", (EARLIER_STORY, "the the the the the " * 50))
    assert time.process_time() - started < 20  # linear: about a second when idle
    kept = "\n".join((result.text, result.quoted, result.signature, result.footer))
    assert len(kept) <= len(body) + 1000
