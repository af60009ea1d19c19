"""Parse stage: bytes in, Story out; malformed mail becomes defects, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import nested_message, story_message

from intake.errors import ParseError
from intake.parse import html_to_text, parse, safe_name, story_id
from intake.records import RawMessage, Story

DATA = Path(__file__).resolve().parent / "data"
AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def raw(data: bytes, uid: int = 1, too_large: bool = False) -> RawMessage:
    return RawMessage("INBOX", 7, uid, AT, len(data), data, too_large)


def parse_file(name: str) -> Story:
    return parse(raw((DATA / name).read_bytes()))


def test_parse_plain_story_fields() -> None:
    story = parse(raw(story_message(1, message_id="<Abc.1@Example.ORG>")))
    assert story.story_id == "Abc.1@example.org"
    assert story.sender.name == "Person 1"
    assert story.sender.address == "person1@example.org"
    assert [r.address for r in story.recipients] == ["stories@example.org"]
    assert story.subject == "My story number 1"
    assert story.sent_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert story.received_at == AT
    assert "same thing three times" in story.text
    assert story.source == ("INBOX", 7, 1)


def test_parse_html_only_becomes_readable_text() -> None:
    story = parse_file("html_only.eml")
    assert story.html_only
    assert "care home" in story.text
    assert "medication list & we had to explain" in story.text
    assert "<" not in story.text and "alert(1)" not in story.text and "color:red" not in story.text


def test_parse_missing_message_id_uses_hash_of_raw_bytes() -> None:
    data = (DATA / "missing_message_id.eml").read_bytes()
    story = parse(raw(data))
    assert story.story_id.startswith("sha256:") and len(story.story_id) == 71
    assert story.story_id == parse(raw(data, uid=99)).story_id
    assert story.story_id != parse(raw(data + b"\n")).story_id
    assert "no_message_id" in story.defects


def test_parse_broken_boundary_keeps_the_words_and_records_a_defect() -> None:
    story = parse_file("broken_boundary.eml")
    assert "waited six hours in A&E" in story.text
    assert any("Boundary" in d for d in story.defects)


def test_parse_eight_bit_headers_do_not_crash() -> None:
    story = parse_file("eight_bit_headers.eml")
    assert story.sender.address == "joerg@example.org"
    assert "wrong GP twice" in story.text
    assert "\n" not in story.subject


def test_parse_unknown_charset_still_gives_text() -> None:
    story = parse_file("unknown_charset.eml")
    assert "probation officer" in story.text


def test_parse_attachment_names_cannot_traverse_paths() -> None:
    story = parse_file("traversal_attachment_name.eml")
    names = {a.name for a in story.attachments}
    assert names == {"x", "evil.bat"}
    sizes = {a.name: a.size for a in story.attachments}
    assert sizes["x"] == len(b"hello world")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/x", "x"), ("C:\\temp\\a.doc", "a.doc"), ("\x00\x07", "attachment"),
     ("..", "attachment"), ("a" * 500, "a" * 200), ("re:port?.pdf", "re_port_.pdf")],
)  # fmt: skip
def test_parse_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_parse_multiple_from_is_a_defect_and_the_first_wins() -> None:
    story = parse_file("multiple_from.eml")
    assert story.sender.address == "first@example.org"
    assert "multiple_from" in story.defects


def test_parse_subject_is_unfolded_and_never_keeps_cr_or_lf() -> None:
    story = parse_file("folded_subject.eml")
    assert story.subject.startswith("A very long subject that is folded over three lines")
    assert "\r" not in story.subject and "\n" not in story.subject
    assert story.story_id == "Folded.Subject@example.org"
    assert story.sent_at is None and "bad_date" in story.defects


def test_parse_keeps_only_the_deciding_headers() -> None:
    data = story_message(2, Auto_Submitted="auto-replied", List_Id="<x.example.org>",
                         X_Secret="nope")  # fmt: skip
    headers = dict(parse(raw(data)).headers)
    assert headers["auto-submitted"] == "auto-replied"
    assert headers["list-id"] == "<x.example.org>"
    assert "x-secret" not in headers


def test_parse_too_large_headers_only_is_flagged() -> None:
    head = story_message(3).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    story = parse(raw(head, too_large=True))
    assert "too_large" in story.defects
    assert story.text == ""
    assert story.subject == "My story number 3"


def test_parse_500_deep_nesting_keeps_the_deepest_words() -> None:
    story = parse(raw(nested_message(500)))
    assert story.story_id == "deep@example.org"
    assert "my GP never got the letter" in story.text


def test_parse_nesting_beyond_the_recursion_limit_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="MIME structure"):
        parse(raw(nested_message(5000)))


@pytest.mark.parametrize(
    ("ids", "expected"),
    [(["<a@B.Example>"], "a@b.example"), (["  <x.y@z.org> (comment)"], "x.y@z.org"),
     (["no-brackets@Host.ORG"], "no-brackets@host.org"), (["", "<second@x.org>"], "second@x.org")],
)  # fmt: skip
def test_parse_story_id_normalises_message_id(ids: list[str], expected: str) -> None:
    assert story_id(ids, b"raw") == expected


def test_parse_story_id_falls_back_for_garbage_message_id() -> None:
    assert story_id(["<>", "not an id"], b"raw").startswith("sha256:")


def test_parse_html_to_text_survives_broken_markup() -> None:
    assert "words" in html_to_text("<p>words<<<</td></table>")
    assert html_to_text("") == ""


def test_parse_deeply_nested_html_keeps_the_text_inside_and_after_the_nesting() -> None:
    # 300 nested <div>s (a long Outlook reply chain): libxml2 stops building the tree at 256,
    # and the story used to be stored empty, without a word said about it.
    story = parse_file("deep_nested_html.eml")
    assert "nobody shared her records" in story.text
    assert story.text.endswith("Sent after the long reply chain: please use my story.")
    assert "html_flattened" in story.defects
    assert "html_flattened" not in parse_file("html_only.eml").defects  # layout kept there


def test_parse_html_nested_past_every_parser_limit_loses_no_word() -> None:
    depth = 5000  # past libxml2's huge-tree limit (2048) and Python's recursion limit
    html = ("<p>Before.</p>" + "<blockquote>quoted " * depth + "the deepest words"
            + "</blockquote>" * depth + "<p>My own words after the chain.</p>")  # fmt: skip
    data = ("From: a@example.org\nMessage-ID: <deep@example.org>\n"
            "Content-Type: text/html; charset=utf-8\n\n" + html + "\n").encode()  # fmt: skip
    story = parse(raw(data))
    words = story.text.split()
    assert words.count("quoted") == depth and "deepest" in words
    assert story.text.startswith("Before.") and story.text.endswith("after the chain.")
    assert "html_flattened" in story.defects


def test_parse_body_cleaned_to_nothing_says_why() -> None:
    body = "On Mon, 23 Nov 2026, Someone <a@example.net> wrote:\n> My story, quoted.\n> More.\n"
    story = parse(raw(story_message(1, body=body)))
    assert story.text == "" and "empty_after_cleaning" in story.defects
    assert "empty_after_cleaning" not in parse(raw(story_message(2))).defects


def test_parse_html_without_words_says_why_its_text_is_empty() -> None:
    data = (b"From: a@example.org\nMessage-ID: <img@example.org>\n"
            b"Content-Type: text/html\n\n<p><img src=\"cid:scan\" alt=\"\"></p>\n")  # fmt: skip
    story = parse(raw(data))
    assert story.text == "" and "html_without_text" in story.defects
