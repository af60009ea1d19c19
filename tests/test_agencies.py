"""Agencies: recognised in hand-written stories (themes.toml [agencies]), stored with the triage,
exported, and paired in the digest when they appear together in duplication stories."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import maildir_config, seed_maildir, story_message

from intake.store.engine import Store
from story_intake.cli import main
from story_intake.jobs import digest_context
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.digest.deliver import send_digest
from triage.reply.policy import reference
from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger, tag

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
GP_HOSPITAL = ("The hospital discharged my husband but never sent the letter to our GP, so I "
               "had to explain his whole history again at the surgery, and then again to the "
               "consultant at the follow-up. Nobody shared anything.")  # fmt: skip
GP_HOSPITAL_POLICE = ("After my son's overdose the police, the A&E staff and later his GP "
                      "practice each asked me the same questions from scratch. None of them had "
                      "read what the others wrote.")  # fmt: skip
SCHOOL_CHILDREN = (
    "The school and children's services held separate meetings about my "
    "daughter and I repeated the same story to both, twice in one week."
)


@pytest.mark.parametrize(
    ("text", "agencies"),
    [
        (GP_HOSPITAL, {"hospital", "gp_practice"}),
        (GP_HOSPITAL_POLICE, {"police", "hospital", "gp_practice"}),
        (SCHOOL_CHILDREN, {"school", "childrens_services"}),
        (
            "Mum's care home rang NHS 111 twice; the ambulance took six hours and the pharmacy "
            "had the wrong prescription.",
            {"care_home", "nhs_111", "ambulance", "pharmacy"},
        ),
        (
            "My work coach at the jobcentre said the DWP had no record of my PIP assessment, and "
            "the council's housing officer needed it too.",
            {"dwp_jobcentre", "council", "housing"},
        ),
        (
            "The crisis team and the probation officer never spoke, and adult social care only "
            "heard at the court hearing.",
            {"mental_health_team", "courts_probation", "adult_social_care"},
        ),
        ("I wrote about the weather and my garden, nothing else.", set()),
    ],
)
def test_agencies_recognised_with_evidence_spans(
    text: str, agencies: set[str], tagger: Tagger
) -> None:
    triage = tag(story_from_text("a", text), tagger)
    assert {e.label for e in triage.agencies} == agencies
    assert all(text[e.start : e.end] == e.text for e in triage.agencies)


def test_agencies_stored_exported_and_paired_in_the_digest(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path, extra=f'[digest]\noutput_dir = "{tmp_path}/digests"\n')
    settings = load_settings(config, {})
    bodies = (GP_HOSPITAL, GP_HOSPITAL_POLICE, SCHOOL_CHILDREN)
    ids = [f"<ag-{n}@example.net>" for n in range(len(bodies))]
    seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                 *(story_message(n, body=b, message_id=i)
                   for n, (b, i) in enumerate(zip(bodies, ids, strict=True))))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    assert main(["--config", str(config), "export"]) == 0
    rows = {r["story_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    first = rows[ids[0].strip("<>")]
    assert set(first["agencies"]) == {"gp_practice", "hospital"}
    assert first["agency_evidence"]["hospital"][0]["text"].lower() == "hospital"
    assert all("duplication" in rows[i.strip("<>")]["themes"] for i in ids)
    with Store(settings.store) as store:
        outcome = send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
    assert outcome.path is not None
    page = outcome.path.read_text()
    refs = [reference(i.strip("<>")) for i in ids]
    assert 'id="agency-pairs"' in page
    row = page.split("Gp practice + hospital", 1)[1].split("</tr>", 1)[0]
    assert "<strong>2</strong>" in row and refs[0] in row and refs[1] in row
    assert "Childrens services + school" in page and f'href="#{refs[2]}"' in page
    assert f'id="{refs[0]}"' in page  # the link lands on the story's card


def test_agencies_pairs_leave_out_stories_that_are_not_duplication(tagger: Tagger) -> None:
    from intake.records import DigestEntry
    from triage.digest.agencies import agency_pairs

    story = story_from_text("x", "The GP and the hospital were both lovely and quick.")
    triage = replace(tag(story, tagger), themes=("health",))
    assert {e.label for e in triage.agencies} == {"gp_practice", "hospital"}
    dup = replace(triage, themes=("duplication",))
    pairs = agency_pairs([DigestEntry(story, triage, None, False),
                          DigestEntry(story, dup, None, False, on_hold=True),
                          DigestEntry(story, dup, None, False)])  # fmt: skip
    assert [(p.first, p.second, p.count) for p in pairs] == [("gp_practice", "hospital", 1)]
