"""The command line: arguments (``cli_parser``), logging, and the table of commands, each
handled by one function in a ``cli_*`` module.

``story-intake`` and ``run_pipeline.py`` both call ``main`` here. The pass is in ``pipeline``,
the worker's jobs in ``jobs``; the scheduler wiring in ``worker``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from intake.errors import ConfigError, PipelineError, UsageError
from story_intake import cli_pass, cli_privacy, cli_store, cli_tagger, users
from story_intake.addresses import address_warnings
from story_intake.app_settings import Settings
from story_intake.authorize import authorize_command
from story_intake.check import check_command
from story_intake.cli_parser import build_parser, config_location
from story_intake.secrets import ALL, with_secrets
from story_intake.settings import load_settings
from triage.reply.render import TEMPLATES, check_templates, make_environment

SENDING_COMMANDS = ("once", "demo", "run", "digest")  # these render mail: check templates first
log = logging.getLogger("story_intake")

Handler = Callable[[argparse.Namespace, Settings, datetime], int]
# One line per command: its name and the function that runs it (args, settings, now).
HANDLERS: dict[str, Handler] = {
    "once": cli_pass.once_command,
    "run": cli_pass.run_command,
    "demo": cli_pass.demo_command,
    "housekeeping": cli_pass.housekeeping_command,
    "digest": cli_store.digest_command,
    "status": cli_store.status_command,
    "export": cli_store.export_command,
    "requeue": cli_store.requeue_command,
    "resume": cli_store.resume_command,
    "backup": cli_store.backup_command,
    "migrate": cli_store.migrate_command,
    "release": cli_privacy.release_command,
    "resubscribe": cli_privacy.resubscribe_command,
    "erase": cli_privacy.erase_command,
    "subject-access": cli_privacy.subject_access_command,
    "train": cli_tagger.train_command,
    "evaluate": cli_tagger.evaluate_command,
    "authorize": lambda args, settings, now: authorize_command(settings, sys.stdout),
    "check": lambda args, settings, now: check_command(settings, args.json, sys.stdout),
    "user": lambda args, settings, now: users.user_command(args, settings),
    "serve": lambda args, settings, now: _serve(settings, args.host, args.port),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, load the config and run one command; returns the exit code."""
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # everything this process writes (store, mail, digests) is owner-only
    _configure_logging(args.log_level, args.log_format)
    try:
        path, base = config_location(args.config, Path.cwd())
        settings = load_settings(path, os.environ, secrets=(), base=base)
        settings = with_secrets(settings, os.environ, _secrets_needed(args, settings))
        if args.command in SENDING_COMMANDS:  # a broken template stops these at start
            check_templates(make_environment(TEMPLATES))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    for warning in address_warnings(settings):
        log.warning("%s", warning)
    return _command(args, settings)


def _serve(settings: Settings, host: str, port: int) -> int:
    from story_intake.web.serve import serve  # the web framework loads for this command only

    return serve(settings, host, port)


def _secrets_needed(args: argparse.Namespace, settings: Settings) -> tuple[str, ...]:
    """The parts whose passwords this command needs: only the commands that log in to the
    mailbox or the SMTP relay; those that read the store need none."""
    if args.command in ("once", "run", "demo"):
        return ALL
    if args.command == "digest" and args.send:
        return ("smtp",)
    if args.command in ("erase", "housekeeping", "serve") and settings.retention.purge_mailbox:
        return ("mailbox",)  # they delete messages from the mailbox too
    return ()


def _command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return HANDLERS[args.command](args, settings, datetime.now(UTC))
    except UsageError as err:  # asked for the impossible: say why, exit 2 like bad arguments
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PipelineError as err:
        # Said once: as a log record for collectors (--log-format json), else as one line.
        if args.log_format == "json":
            log.error("%s failed: %s", args.command, err)
        else:
            print(f"error: {err}", file=sys.stderr)
        return 1


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where logging is set up
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO
    # At DEBUG imapclient logs the protocol, message bodies included: never let it.
    logging.getLogger("imapclient").setLevel(max(logging.INFO, logging.getLevelName(level)))
