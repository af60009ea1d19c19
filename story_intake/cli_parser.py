"""The command line's words: every command and option with the help a person reads, and the
program's version. ``cli`` parses with ``build_parser`` and runs the command."""

from __future__ import annotations

import argparse
import importlib.metadata
import tomllib
from pathlib import Path

from story_intake.shipped import CHECKOUT, CONFIG

DEFAULT_CONFIG = CONFIG / "pipeline.toml"
LOCAL_CONFIG = "pipeline.toml"  # used without --config when the current folder has one

DESCRIPTION = """\
Collect people's stories about public services from the team's mailbox: store each one once,
tag it by theme, acknowledge the sender and send the team a triaged digest."""
EPILOG = """\
Settings are read from --config, else ./pipeline.toml, else the shipped defaults (data under
./var); paths in a config file are relative to its folder. Every key, its default and what it
does are in the shipped pipeline.toml; passwords come from the environment variables it names.
Exit codes: 0 done, 1 the run failed (nothing is lost: the next run resumes),
2 bad configuration or arguments. "COMMAND --help" describes each command."""

# name: (one line for the list of commands, what the command's own --help says)
COMMANDS = {
    "check": ("check every connection step; run this first",
              "Check each step to the mailbox and the relay (DNS, TCP, TLS, login, the folder "
              "and its flags, the capabilities, SMTP), one line each with the fix when it "
              "fails. Reads and sends nothing. Exit 0 only when every check passes."),
    "authorize": ("sign the mailbox in for delegated OAuth2 (device code)",
                  "For [mailbox] oauth2_flow = \"device_code\": print a web address and a "
                  "code; the mailbox's owner signs in there, and the refresh token is kept in "
                  "oauth2_token_cache (0600) for the worker. Run again when it expires."),
    "once": ("one pass: fetch, store, tag and acknowledge what is new",
             "Read what is new in the mailbox, store each story once, tag it and send each "
             "sender one acknowledgement, then stop. Safe to run again at any time."),
    "run": ("the scheduled worker, until Ctrl-C (SIGINT) or SIGTERM",
            "Poll the mailbox every [schedule] poll_seconds (and at once when IMAP IDLE "
            "says mail arrived), send the digest on [digest] schedule and purge what "
            "retention says has expired, until stopped."),
    "digest": ("the digest of stories since the last one (--send: send it)",
               "Build the team's digest of the stories since the last digest and write it to "
               "[digest] output_dir. Without --send it is a preview: nothing is sent and the "
               "next digest still includes these stories."),
    "export": ("every story with its themes, as JSON lines or CSV",
               "Print every stored story (and every quarantined message) with its themes, "
               "evidence and acknowledgement, one per line (jsonl) or as a spreadsheet (csv; "
               "cells a spreadsheet would run as formulas start with ')."),
    "requeue": ("retry the messages that could not be read",
                "Try again every quarantined message (one that could not be parsed or tagged), "
                "for instance after an upgrade."),
    "release": ("send (or mark as sent) acknowledgements held for a person to check",
                "Release acknowledgements that were held for a person to check. Naming a "
                "held request (--story) confirms it: a withdrawal then applies."),
    "resume": ("send acknowledgements again after the hourly limit stopped them",
               "The acknowledgement breaker stops all replies when [acknowledgement] "
               "max_per_hour is reached; once someone has looked, resume sending."),
    "resubscribe": ("acknowledge an inbox that unsubscribed again",
                    "Take an inbox off the unsubscribed list, when the person asks to hear "
                    "from us again: their next story gets an acknowledgement."),
    "erase": ("delete everything held about a person or one story",
              "Delete every stored trace of a person (--sender) or one story (--story): the "
              "stored rows, digest pages, reply files, subject-access files and, with "
              "[retention] purge_mailbox, the messages in the mailbox."),
    "subject-access": ("write everything held about a person into a new folder",
                       "Answer a subject access request: write every story from this address "
                       "(as received, as text, and with its tags and acknowledgement) into a "
                       "new or empty folder readable only by you."),
    "status": ("what the pipeline has done and whether it is healthy",
               "Show counts, the last run and its error, polling and sending health, held "
               "replies and requests waiting for a person."),
    "train": ("train the theme tagger from the labelled examples",
              "Train the theme tagger from the examples in [tagger] data_dir. The same "
              "examples always give the same model."),
    "evaluate": ("how well the tagger finds each theme on the held-out examples",
                 "Tag each held-out example set (eval*.jsonl) and print precision, recall "
                 "and F1 for each theme."),
    "backup": ("copy the store to a new file, safely while the worker runs",
               "Copy the SQLite store to PATH (a new file, readable by you alone) with SQLite's "
               "online backup API: consistent even while the worker writes. Restore by "
               "copying it back while nothing runs."),
    "migrate": ("upgrade the store's tables to this version (after a backup)",
                "Bring the store to the newest schema revision and print from which revision "
                "to which (or \"up to date\"). A SQLite file is first copied beside itself "
                "(<database>.from-<revision>.bak). Every command does this when it opens the "
                "store; this does it on its own, and needs no mailbox password."),
    "housekeeping": ("purge what retention says has expired, now",
                     "What the worker does once a day: delete stored bodies, raw messages, "
                     "outbox addresses and digests older than [retention] allows (and, with "
                     "purge_mailbox, their copies in the mailbox). For timers and cron jobs "
                     "that run `once` instead of the worker."),
    "serve": ("the review page, on http://127.0.0.1:8025 by default",
              "Serve the team's review page (queue, stories, corrections, withdrawals, held "
              "replies, health). Bound to loopback: put a TLS reverse proxy in front of it."),
    "user": ("accounts of the review page: add, passwd, remove, list",
             "Manage who may sign in to the review page. A password is read from standard "
             "input, never from the command line."),
    "demo": ("try the whole pipeline on the sample stories, no servers needed",
             "Copy the sample stories into the local Maildir, run one pass and the digest, "
             "and print where to find the results."),
}  # fmt: skip


def version() -> str:
    """The installed package's version; from pyproject.toml when run from a plain checkout."""
    try:
        return importlib.metadata.version("story-intake")
    except importlib.metadata.PackageNotFoundError:
        try:
            project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))
            return str(project["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def config_location(config: str | None, cwd: Path) -> tuple[Path, Path]:
    """The settings file to read and the folder its relative paths start from: ``--config``
    and its folder; else ``./pipeline.toml`` and this folder; else the shipped defaults, with
    their relative paths (``var/...``) in the current folder."""
    if config:
        path = cwd / config
        return path, path.parent
    local = cwd / LOCAL_CONFIG
    return (local, cwd) if local.is_file() else (DEFAULT_CONFIG, cwd)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options and one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="story-intake", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument(
        "--config",
        help="settings file (default: ./pipeline.toml when there "
        "is one, else the shipped defaults with data under ./var)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help="how much to log (never bodies, subjects or addresses)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object per line, for log collectors",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = {name: commands.add_parser(name, help=short, description=long)
           for name, (short, long) in COMMANDS.items()}  # fmt: skip
    _add_options(sub)
    return parser


def _add_options(sub: dict[str, argparse.ArgumentParser]) -> None:
    sub["once"].add_argument(
        "--json", action="store_true", help="print the counts as one JSON object"
    )
    sub["check"].add_argument(
        "--json", action="store_true", help="print the outcomes as one JSON object"
    )
    sub["once"].add_argument(
        "--dry-run",
        action="store_true",
        help="store and tag; send no acknowledgement (recorded as disabled)",
    )
    sub["export"].add_argument(
        "--format",
        choices=["jsonl", "csv"],
        default="jsonl",
        help="jsonl (default): one JSON object per line; csv",
    )
    which = sub["release"].add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--story",
        metavar="REF",
        help="the held acknowledgement of this story "
        "(ST-...); for a request that needs confirmation, confirms it",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every held acknowledgement except requests that need confirmation",
    )
    sub["release"].add_argument(
        "--as-sent",
        action="store_true",
        help="it did go out: record it as sent (default: send it next run)",
    )
    sub["resubscribe"].add_argument(
        "--sender", metavar="ADDRESS", required=True, help="an address of that inbox"
    )
    who = sub["erase"].add_mutually_exclusive_group(required=True)
    who.add_argument("--sender", metavar="ADDRESS", help="every story from this address")
    who.add_argument("--story", metavar="REF", help="one story, by reference (ST-...) or story_id")
    sub["erase"].add_argument("--dry-run", action="store_true", help="show, delete nothing")
    sub["subject-access"].add_argument(
        "--sender", metavar="ADDRESS", required=True, help="the person's email address"
    )
    sub["subject-access"].add_argument(
        "--out",
        metavar="DIR",
        help="a new or empty folder to write to (default var/subject-access/<time>)",
    )
    sub["backup"].add_argument("path", metavar="PATH", help="the new file to write")
    sub["train"].add_argument(
        "--ship",
        action="store_true",
        help="train afresh and pack the model into the package (run from a checkout: make model)",
    )
    sub["serve"].add_argument("--host", default="127.0.0.1", help="address to listen on")
    sub["serve"].add_argument("--port", type=int, default=8025, help="port (default 8025)")
    user = sub["user"].add_subparsers(dest="action", required=True, metavar="ACTION")
    add = user.add_parser("add", help="a new account (password on stdin)")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--role",
        choices=["reviewer", "admin"],
        required=True,
        help="reviewer: read, correct, mark reviewed, release; admin: also erase, "
        "requeue, audit log",
    )
    user.add_parser("passwd", help="a new password (on stdin)").add_argument("name")
    user.add_parser("remove", help="remove an account").add_argument("name")
    user.add_parser("list", help="every account and its role")
    sub["digest"].add_argument(
        "--send",
        action="store_true",
        help="send it and close the window (without: a preview file only)",
    )
