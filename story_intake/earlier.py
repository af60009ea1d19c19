"""The texts of the earlier messages a reply names, for the clean stage (`intake.clean.earlier`
sets them aside when they are pasted without quote marks): the application's side, since
`intake` renders no templates and its parse stage has no store.

Two kinds of earlier message are known:
- one of our replies (`<ack-<digest>@our domain>`, see `triage.reply.render.message_id_for`):
  each reply template rendered with the parts that differ per story (name, reference, team
  address) left empty, so its fixed lines are what a pasted copy is matched against;
- the sender's own earlier story, by its Message-ID (the story_id): looked up in the process
  that fetches, before a batch goes to the parse workers (`story_intake.earlier_store`), and
  handed over with it (`Batch.earlier`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from triage.reply.settings import AcknowledgementSettings

# Our replies' Message-IDs: "ack-" and 24 hex digits of the story's digest (`our_message_id`).
OUR_REPLY = re.compile(r"ack-[0-9a-f]{24}@")


@dataclass(frozen=True, slots=True)
class Earlier:
    """The parse stage's `earlier`: given a sender and the Message-IDs their mail names, the
    texts of those earlier messages known here. Picklable: it goes to the parse workers."""

    stored: tuple[tuple[str, str, str], ...] = ()  # (story_id, sender address, text)

    def __call__(self, sender: str, message_ids: Sequence[str]) -> tuple[str, ...]:
        named = set(message_ids)
        # Only the sender's own stories: a Message-ID alone must not pull in someone else's.
        texts = [text for sid, who, text in self.stored if sid in named and who == sender]
        if any(OUR_REPLY.match(message_id) for message_id in named):
            texts += reply_texts()
        return tuple(texts)


@cache
def reply_texts() -> tuple[str, ...]:
    """Every reply template's plain text with the per-story parts empty (rendered once per
    process: the templates ship with the program and do not change while it runs)."""
    # Here, not at the top: a parse worker loads jinja2 only when a reply to ours comes.
    from triage.reply.render import SUBJECTS, TEMPLATES, make_environment, render_template

    env = make_environment(TEMPLATES)
    context = {"first_name": "", "reference": "", "team_name": "", "team_address": "",
               "help_text": AcknowledgementSettings().help_text, "urgent": True}  # fmt: skip
    return tuple(render_template(env, f"{name}.txt", context) for name in SUBJECTS)
