"""The ``user`` command: accounts of the review page (add, passwd, remove, list).

A password is read from standard input (one line; never an argument, which other users of
the machine could see in the process list), twice when typed at a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from datetime import UTC, datetime

from intake.errors import UsageError
from intake.store.accounts import ROLES
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.passwords import hash_password

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def read_password() -> str:
    """One password from stdin: prompted twice without echo at a terminal, else one line."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def user_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``user add|passwd|remove|list``; prints JSON without any password or hash."""
    now = datetime.now(UTC)
    with Store(settings.store) as store:
        accounts, log = store.accounts, store.review
        if args.action == "list":
            print(json.dumps([{"name": u.name, "role": u.role,
                               "created_at": u.created_at.isoformat()}
                              for u in accounts.users()]))  # fmt: skip
            return 0
        name = args.name
        if args.action == "add":
            if not NAME.fullmatch(name):
                raise UsageError("a user name is 1-64 letters, digits, '.', '_' or '-'")
            if args.role not in ROLES:
                raise UsageError("--role must be reviewer or admin")
            if not accounts.add_user(name, args.role, hash_password(read_password()), now):
                raise UsageError(f"user {name} exists already")
        elif args.action == "passwd":
            if not accounts.set_password(name, hash_password(read_password())):
                raise UsageError(f"no user {name}")
        elif not accounts.remove_user(name):
            raise UsageError(f"no user {name}")
        log.audit("cli", f"user_{args.action}", "", now)
        print(json.dumps({"user": name, "done": args.action}))
    return 0
