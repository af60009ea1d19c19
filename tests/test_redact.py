"""Digest redaction: identifiers become placeholders, ordinary text survives, any input completes.

All data is synthetic: example.org addresses, Ofcom drama numbers (01632 960xxx, 07700 900xxx,
020 7946 0xxx), NHS test numbers (999 xxx xxxx) and the QQ National Insurance prefix.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.digest import redact as redact_module
from triage.digest.redact import RedactionError, redact

DATA = Path(__file__).parent / "data"

IDENTIFIERS = [
    # UK phone numbers, national.
    ("01632 960 123", "[phone]"),
    ("020 7946 0958", "[phone]"),
    ("0207 946 0958", "[phone]"),
    ("07700 900 123", "[phone]"),
    ("07700 900123", "[phone]"),
    ("07700900123", "[phone]"),
    ("(01632) 960123", "[phone]"),
    ("(020) 7946 0958", "[phone]"),
    ("07700-900-123", "[phone]"),
    ("020.7946.0958", "[phone]"),
    # UK phone numbers, international.
    ("+44 7700 900123", "[phone]"),
    ("+44 (0)20 7946 0958", "[phone]"),
    ("+44(0)1632 960123", "[phone]"),
    ("+447700900123", "[phone]"),
    ("0044 20 7946 0958", "[phone]"),
    ("+44-7700-900-123", "[phone]"),
    # NHS numbers, checksum valid or not.
    ("999 123 4567", "[NHS number]"),
    ("999-123-4567", "[NHS number]"),
    ("9991234567", "[NHS number]"),
    ("999 456 7890", "[NHS number]"),
    # National Insurance numbers.
    ("QQ123456C", "[NI number]"),
    ("QQ 12 34 56 C", "[NI number]"),
    ("qq123456c", "[NI number]"),
    ("QQ 123456 A", "[NI number]"),
    # Postcodes.
    ("SW1A 1AA", "[postcode]"),
    ("sw1a1aa", "[postcode]"),
    ("M1 1AE", "[postcode]"),
    ("B33 8TH", "[postcode]"),
    ("CR2 6XH", "[postcode]"),
    ("DN55 1PT", "[postcode]"),
    ("EC1A 1BB", "[postcode]"),
    ("W1A 0AX", "[postcode]"),
    ("ec1a1bb", "[postcode]"),
    # Email addresses.
    ("jane.doe@example.org", "[email]"),
    ("Jane.Doe+nhs@mail.example.org", "[email]"),
    ("JANE_DOE@EXAMPLE.ORG", "[email]"),
    # Dates of birth: the cue stays, the date goes.
    ("DOB 03/04/1951", "DOB [date of birth]"),
    ("DOB: 03/04/1951", "DOB: [date of birth]"),
    ("D.O.B. 03/04/1951", "D.O.B. [date of birth]"),
    ("dob 3.4.51", "dob [date of birth]"),
    ("date of birth: 3 April 1951", "date of birth: [date of birth]"),
    ("Date of birth is 3rd Apr 1951", "Date of birth is [date of birth]"),
    ("born on 3rd April 1951", "born on [date of birth]"),
    ("born on the 3rd of April 1951", "born on the [date of birth]"),
    ("born 1951-04-03", "born [date of birth]"),
    ("born April 3, 1951", "born [date of birth]"),
    ("born in April 1951", "born in [date of birth]"),
    ("born in 1951", "born in [date of birth]"),
    ("b. 3 April 1951", "b. [date of birth]"),
]

SURVIVORS = [
    "3 hours",
    "14 times",
    "2023",
    "£250",
    "ward 12",
    "999",
    "111",
    "116 123",
    "call 999 or 111, or the Samaritans on 116 123",
    "24/7",
    "45%",
    "10:30",
    "on 3 April 2023 I went to A&E",
    "12/03/2024",
    "03.04.2024 10.30",
    "2023-04-03",
    "she was born 14 weeks early",
    "Doberman",
    "A&E at 10:30 on 3 April 2023, waited 3 hours, ward 12, bed 14",
    "a@b",
    "Plan B",
    "M1 motorway",
]


@pytest.mark.parametrize(("identifier", "placeholder"), IDENTIFIERS)
def test_redact_identifier_becomes_placeholder(identifier: str, placeholder: str) -> None:
    text = f"Please note {identifier}, thanks."
    assert redact(text) == f"Please note {placeholder}, thanks."


@pytest.mark.parametrize(("identifier", "placeholder"), IDENTIFIERS)
def test_redact_identifier_alone_or_at_edges(identifier: str, placeholder: str) -> None:
    assert redact(identifier) == placeholder
    assert redact(f"({identifier})") == f"({placeholder})"


@pytest.mark.parametrize("text", SURVIVORS)
def test_redact_ordinary_text_survives(text: str) -> None:
    assert redact(text) == text
    assert redact(text, ("Jane", "Doe")) == text


def test_redact_event_dates_survive_beside_a_date_of_birth() -> None:
    text = "DOB 03/04/1951. On 12/03/2024 and on 3 April 2023 I went to A&E."
    assert redact(text) == "DOB [date of birth]. On 12/03/2024 and on 3 April 2023 I went to A&E."


def test_redact_several_identifiers_in_one_story() -> None:
    text = (
        "I'm Jane Doe (jane.doe@example.org, 07700 900123), NHS number 999 123 4567, "
        "NI QQ123456C, living at 1 High Street, Birmingham B33 8TH. Born on 3 April 1951."
    )
    assert redact(text, ("Jane Doe",)) == (
        "I'm [name] [name] ([email], [phone]), NHS number [NHS number], "
        "NI [NI number], living at 1 High Street, Birmingham [postcode]. Born on [date of birth]."
    )


@pytest.mark.parametrize(
    ("names", "text", "expected"),
    [
        (("Jane", "Doe"), "Jane Doe wrote", "[name] [name] wrote"),
        (("Jane Doe",), "JANE and doe", "[name] and [name]"),
        ("Jane Doe", "jane doe", "[name] [name]"),
        (("Jane",), "Jane's GP told Jane-Marie", "[name]'s GP told [name]-Marie"),
        (("Ann",), "Ann, Anne, planning, ANN.", "[name], Anne, planning, [name]."),
        (("Zoë",), "Zoë, ZOË and Zoëy", "[name], [name] and Zoëy"),
        (("Zoe\u0308",), "Zoë wrote", "[name] wrote"),
        (("J Doe",), "J Doe", "J [name]"),
        (("", "Doe", ""), "Doe", "[name]"),
        ((), "Jane Doe", "Jane Doe"),
        (("O'Brien",), "Mrs O'Brien", "Mrs O'[name]"),
    ],
)
def test_redact_names_are_whole_words_ignoring_case(
    names: tuple[str, ...] | str, text: str, expected: str
) -> None:
    assert redact(text, names) == expected


def test_redact_email_keeps_surrounding_punctuation() -> None:
    text = 'From: "Jane Doe" <jane.doe@example.org>, cc: mailto:j.doe@example.org.'
    assert redact(text, ("Jane Doe",)) == 'From: "[name] [name]" <[email]>, cc: mailto:[email].'


def test_redact_names_never_touch_placeholders() -> None:
    # A name that is also a placeholder's word must not rewrite the placeholder.
    text = "Phone 07700 900123, email jane@example.org"
    assert redact(text, ("Phone", "Email", "Number")) == "[name] [phone], [name] [email]"


def test_redact_raises_on_text_it_cannot_encode() -> None:
    # A lone surrogate (from bytes decoded with surrogateescape) cannot go to RE2 as UTF-8.
    with pytest.raises(RedactionError):
        redact("call 07700 900123 \udcff")
    with pytest.raises(RedactionError):
        redact("Jane", ("Jane\udcff",))


ADVERSARIAL_UNCHANGED = {
    "letters": "a" * 100_000,
    "digits": "9" * 100_000,
    "ats": "@".join(["a"] * 30_000),
    "dots": "a." * 50_000,
    "local part only": "a" * 100_000 + "@",
    "country codes": "+44" * 33_000,
    "country codes spaced": "+44 " * 25_000,
    "international prefixes": "0044" * 25_000,
    "brackets": "(0" * 50_000,
    "dob cues": "DOB " * 25_000,
    "born cues": "born on the " * 8_000,
    "outward codes": "SW1A " * 20_000,
    "digit groups": "01 " * 33_000,
    "long digit groups": "07700 9001234 " * 7_000,
}


@pytest.mark.parametrize("text", ADVERSARIAL_UNCHANGED.values(), ids=ADVERSARIAL_UNCHANGED.keys())
def test_redact_adversarial_input_completes_unchanged(text: str) -> None:
    # Completing is the assertion (no timing checks); RE2 keeps each case linear.
    assert redact(text, ("Jane", "Doe")) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07700 900123 " * 7_000, "[phone] " * 7_000),
        ("999 123 4567\n" * 7_500, "[NHS number]\n" * 7_500),
        ("Jane " * 20_000, "[name] " * 20_000),
        ("x@" + "a." * 50_000, "[email]."),
        ("DOB 03/04/1951 " * 6_000, "DOB [date of birth] " * 6_000),
        # Ten digits in any grouping are an NHS number, even one digit to a group.
        ("1 " * 50_000, "[NHS number] " * 5_000),
        ("0 " * 50_000, "[NHS number] " * 5_000),
        ("QQ 12 34 56 " * 8_000, "[NI number] " * 8_000),
    ],
    ids=[
        "phones",
        "nhs numbers",
        "names",
        "long domain",
        "dates of birth",
        "digits and spaces",
        "zeros and spaces",
        "ni without suffix",
    ],
)
def test_redact_adversarial_input_completes_redacted(text: str, expected: str) -> None:
    assert redact(text, ("Jane",)) == expected


def test_redact_adversarial_mix_keeps_only_placeholders() -> None:
    noise = " | ".join(text[:5_000] for text in ADVERSARIAL_UNCHANGED.values())
    text = f"{noise} 07700 900123 {noise} jane@example.org {noise} SW1A 1AA"
    assert redact(text) == f"{noise} [phone] {noise} [email] {noise} [postcode]"


VARIANTS = [
    json.loads(line) for line in (DATA / "redaction_variants.jsonl").read_text().splitlines()
]


@pytest.mark.parametrize(
    "variant", VARIANTS, ids=[f"{v['kind']}-{i}" for i, v in enumerate(VARIANTS)]
)
def test_redact_variants_as_people_and_mail_clients_type_them(variant: dict[str, Any]) -> None:
    # Separators of every kind, full-width and zero-width characters, spelled-out "(at)",
    # identifiers without their suffix; and ordinary text (years, amounts, times, event dates,
    # references) that must survive. See tests/data/redaction_variants.jsonl.
    assert redact(variant["text"], tuple(variant.get("names", ()))) == variant["expected"]


HELD_OUT = [
    json.loads(line) for line in (DATA / "redaction_heldout.jsonl").read_text().splitlines()
]


@pytest.mark.parametrize(
    "variant", HELD_OUT, ids=[f"{v['kind']}-{i}" for i, v in enumerate(HELD_OUT)]
)
def test_redact_held_out_variants(variant: dict[str, Any]) -> None:
    # Written by someone who had read none of the code or the fixture above, scored once after
    # the redaction was built (150 of 150; 103 before it), never tuned on: see README.
    assert redact(variant["text"], tuple(variant.get("names", ()))) == variant["expected"]


def test_redact_fixture_covers_every_kind_a_hundred_times_over() -> None:
    kinds = Counter(v["kind"] for v in VARIANTS)
    assert set(kinds) == {"phone", "nhs", "ni", "postcode", "email", "dob", "name", "ordinary"}
    assert sum(kinds.values()) - kinds["ordinary"] >= 100


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("call ０７７００\u200b ９００１２３ now", 5, 18),  # full-width digits, a zero-width space
        ("call 07700\u2013900\u2013123.", 5, 18),  # en-dashes
        ("NHS 999\u202f123\u202f4567", 4, 16),  # narrow no-break spaces
        ("at SW1A\r\n1AA.", 3, 12),  # a line break inside a postcode
        ("ﬁle: jane\u200d.doe＠example.org", 5, 26),  # a ligature before; zero-width joiner
    ],
)
def test_redact_spans_are_offsets_in_the_text_as_typed(text: str, start: int, end: int) -> None:
    spans = redact_module.redactions(text)
    assert [(s.start, s.end) for s in spans] == [(start, end)]
    # Everything outside the span is shown exactly as typed, not as its normalised form.
    assert redact(text) == text[:start] + spans[0].placeholder + text[end:]


def test_redact_names_full_width_or_broken_by_invisible_characters() -> None:
    text = "Ｊａｎｅ, J\u200bane, Ja\u00adne and D\u2060OE wrote; Janet did not."
    assert redact(text, ("Jane Doe",)) == "[name], [name], [name] and [name] wrote; Janet did not."


HOSTILE_MEGABYTE = {
    "zero-width spaces": ("\u200b" * 1_000_000, "\u200b" * 1_000_000),
    "digits and en-dashes": ("1\u2013" * 500_000, "[NHS number]\u2013" * 50_000),
    "spelled at": ("a(at)" * 200_000, "a(at)" * 200_000),
    "full-width digits and joiners": ("９\u2060" * 500_000, "９\u2060" * 500_000),
    "one full-width word": ("ａ" * 1_000_000, "ａ" * 1_000_000),
    "letters and marks": ("e\u0301" * 500_000, "e\u0301" * 500_000),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "expected"), HOSTILE_MEGABYTE.values(), ids=HOSTILE_MEGABYTE.keys()
)
def test_redact_hostile_megabyte_completes(text: str, expected: str) -> None:
    # Completing is the assertion (no timing checks): normalising is one pass per character
    # and RE2 is linear, so a megabyte of separators or spellings cannot stall the digest.
    assert redact(text, ("Jane",)) == expected


SEPARATORS = [" ", "  ", "-", "\u2013", "\u2014", "\u2011", "\u2212", "/", ".", "\u00b7", "_",
              "\u00a0", "\u202f", "\u2009", "\u3000", "\t", "\r\n", " - ", " / "]  # fmt: skip
INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u200e", "\u2066",
              "\u034f", "\ufe0f", "\u180e"]  # fmt: skip
DIGIT_FORMS = [
    lambda d: d,
    lambda d: chr(0xFF10 + int(d)),  # full-width
    lambda d: chr(0x0660 + int(d)),  # Arabic-Indic
]


@st.composite
def typed(draw: st.DrawFn, digits: str, first_sizes: tuple[int, ...]) -> str:
    """``digits`` as someone might type them: grouped, any separators, invisible characters."""
    sizes = [draw(st.sampled_from(first_sizes))]
    while sum(sizes) < len(digits):
        sizes.append(min(draw(st.integers(2, 5)), len(digits) - sum(sizes)))
    form = draw(st.sampled_from(DIGIT_FORMS))
    groups, done = [], 0
    for size in sizes:
        groups.append("".join(form(d) for d in digits[done : done + size]))
        done += size
    text = groups[0]
    for group in groups[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + group
    for _ in range(draw(st.integers(0, 2))):  # strictly inside, never at an edge
        at = draw(st.integers(1, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(INVISIBLES)) + text[at:]
    return text


# The first group is the prefix or area code as people write it ("0", "077", "0207", "01632");
# after it, groups of two to five digits.
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["07700900123", "01632960123", "02079460123", "01134960123"]).flatmap(
        lambda number: typed(number, (1, 3, 4, 5))
    )
)
def test_redact_phone_numbers_in_any_grouping_and_any_separators(phone: str) -> None:
    assert redact(f"Call {phone} today.") == "Call [phone] today."


@settings(max_examples=300, deadline=None)
@given(typed("9991234567", (1, 2, 3, 4, 5)))
def test_redact_nhs_numbers_in_any_grouping_and_any_separators(number: str) -> None:
    assert redact(f"NHS {number} today.") == "NHS [NHS number] today."


POSTCODE_GAPS = ["", " ", "  ", "-", "\u2013", "/", ".", "\u00a0", "\u202f", "\t", "\n", "\r\n",
                 " - "]  # fmt: skip
POSTCODES = [("SW1A", "1AA"), ("EC1A", "1BB"), ("M1", "1AE"), ("B33", "8TH"), ("CR2", "6XH"),
             ("DN55", "1PT"), ("W1A", "0AX")]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(POSTCODES),
    st.sampled_from(POSTCODE_GAPS),
    st.sampled_from([str.upper, str.lower, str.title]),
    st.booleans(),
)
def test_redact_postcodes_in_any_case_and_separator(
    parts: tuple[str, str], gap: str, case: Any, wide: bool
) -> None:
    postcode = case(parts[0] + gap + parts[1])
    if wide:
        postcode = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in postcode)
    assert redact(f"Lives at {postcode} now.") == "Lives at [postcode] now."


NI_GAPS = ["", " ", "  ", "-", "\u2013", "/", "\u00a0", "\u202f", "\t"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(NI_GAPS), min_size=4, max_size=4),
    st.sampled_from(["C", "c", "A", "D", ""]),
    st.booleans(),
    st.booleans(),
)
def test_redact_ni_numbers_with_any_separator_and_with_or_without_suffix(
    gaps: list[str], suffix: str, lower: bool, wide: bool
) -> None:
    if suffix:  # "QQ 12 34 56 C"; without the suffix, as NI numbers are grouped: "QQ 12 34 56"
        number = "QQ" + gaps[0] + "12" + gaps[1] + "34" + gaps[2] + "56" + gaps[3] + suffix
        number = number.lower() if lower else number
    else:
        number = "QQ" + gaps[0] + "12" + gaps[1] + "34" + gaps[1] + "56"
    if wide:
        number = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in number)
    assert redact(f"Please note {number} today.") == "Please note [NI number] today."
