"""The clean stage alone: milliseconds per message of ``intake.clean.body.clean`` on bench/'s mix.

Builds the seeded synthetic mailbox of ``mailgen.py`` (the one ``intake_bench.py`` fetches),
takes each message's plain-text body as the parser would hand it over, and times ``clean`` over
all of them in CPU time of this process, best of ``--repeat`` passes (the machine is shared:
CPU time and the best pass are the least disturbed by other work). No servers, no store:
``python bench/clean_bench.py --n 2000``.
"""

from __future__ import annotations

import argparse
import email
import sys
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # for mailgen

import mailgen  # noqa: E402  (tests/ on sys.path: conftest's story_message)

from intake.clean.body import clean  # noqa: E402


def bodies(n: int, seed: int) -> list[tuple[str, str]]:
    """(plain body, sender name) of the first ``n`` messages of the mailbox for ``seed``."""
    found = []
    for i in range(n):
        msg = email.message_from_bytes(mailgen.message(seed, i), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        part = msg.get_body(("plain", "html"))
        text = part.get_content() if part is not None else ""
        name = msg["from"].addresses[0].display_name if msg["from"] else ""
        found.append((str(text), name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic mailbox")
    parser.add_argument("--repeat", type=int, default=5, help="passes (best reported)")
    args = parser.parse_args()
    items = bodies(args.n, args.seed)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.process_time()
        for body, name in items:
            clean(body, name)
        best = min(best, time.process_time() - start)
    print(f"clean: {best / len(items) * 1000:.3f} ms per message ({len(items)} messages, "
          f"best of {args.repeat})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
