"""Memory benchmark: peak RSS of the whole process tree while the pipeline takes in big mail.

Two cases from issue 17, each message under ``max_message_bytes`` (25 MB) and carrying one
attachment of random bytes: 15 messages of 15 MB and 100 of 20 MB. Each is run against a private
Dovecot (as ``bench/intake_bench.py`` does, whose helpers it uses), in a fresh subprocess, with
the shipped settings (``[intake] workers = 1``), twice:

- ``batch_bytes``: the shipped ``[mailbox] batch_bytes``;
- ``count only``: ``batch_bytes`` so large that only ``batch_size`` (100) closes a batch and
  nothing bounds the bytes in flight: how batches were cut before ``batch_bytes``.

Peak RSS is the summed RSS of the run's process and its children (the parse/tag worker and
multiprocessing's resource tracker), sampled every 50 ms; Dovecot is not counted. Results are
printed and written to ``bench/MEMORY.md``.

    .venv/bin/python bench/memory_bench.py [--cases 15x15 100x20] [--skip-count-only 100x20]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import intake_bench as ib  # bench/, the script's own folder (it puts the project on sys.path)

MB = 1_000_000
RESULTS = ib.BENCH / "MEMORY.md"
UNBOUNDED = 10**15  # batch_bytes for the count-only runs
STORY = (
    "My mother has dementia. Her GP, the memory clinic and the council each asked me the "
    "same questions, and nobody had the letter the hospital sent. I attach the letters."
)


def big_message(i: int, size: int, seed: int) -> bytes:
    """A story with one attachment of random bytes, ``size`` bytes in all (LF line ends)."""
    rng = random.Random(seed * 1_000_003 + i)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Person {i} <person{i}@example.org>"
    msg["To"] = "stories@example.org"
    msg["Subject"] = f"My story with letters {i}"
    msg["Date"] = "Tue, 24 Nov 2026 08:00:00 +0000"
    msg["Message-ID"] = f"<big-{seed}-{i}@example.org>"
    msg.set_content(STORY)
    # base64 takes 4 characters for 3 bytes, plus a line end every 76: 1.351 in all.
    payload = rng.randbytes(int((size - 2000) / 1.351))
    msg.add_attachment(payload, maintype="application", subtype="pdf", filename=f"letters{i}.pdf")
    return msg.as_bytes().replace(b"\r\n", b"\n")


def write_case(base: Path, count: int, size: int, seed: int) -> Path:
    """The case's messages as a Maildir template (``load_user`` links them into a user)."""
    folder = base / "memory-templates" / f"{count}x{size // MB}"
    folder.mkdir(parents=True)
    stamp = ib.NOW.timestamp() - 3600
    for i in range(count):
        data = big_message(i, size, seed)
        path = folder / ib._maildir_name(i, data)
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
        if os.geteuid() == 0:  # Dovecot's mail processes run as the dovecot user
            shutil.chown(path, "dovecot", "dovecot")
    return folder


def measure(
    server: ib.DovecotServer, template: Path, name: str, batch_bytes: int
) -> dict[str, float]:
    """One pipeline run on a fresh copy of the case; peak tree RSS, seconds, counts."""
    user = f"mem-{name}"
    ib.load_user(server, template, user)
    stores = server.base / "stores"
    spec = {"port": server.port, "user": user, "db": str(stores / f"{user}.db"),
            "outbox": str(stores / f"{user}-outbox"), "workers": 1,
            "batch_bytes": batch_bytes}  # fmt: skip
    result = ib.run_child("pipeline", spec)
    c = result.counts
    print(f"  {name}: peak {result.peak_mib:.0f} MiB (at start {result.start_mib:.0f}), "
          f"{result.seconds:.1f} s, stored "
          f"{c['stored']} of {result.fetched}, quarantined {c['quarantined']}",
          flush=True)  # fmt: skip
    return {"peak": result.peak_mib, "seconds": result.seconds, "stored": c["stored"],
            "fetched": result.fetched, "quarantined": c["quarantined"]}  # fmt: skip


def run(cases: Sequence[str], skip: Sequence[str], seed: int) -> list[str]:
    """Measure every case; the table rows."""
    from intake.sources.imap import ImapSettings

    shipped = ImapSettings(host="x", username="x", password_env="X").batch_bytes
    rows = []
    with ib.dovecot() as server:
        for case in cases:
            count, size = (int(x) for x in case.split("x"))
            template = write_case(server.base, count, size * MB, seed)
            print(f"{case}: {count} messages of {size} MB written", flush=True)
            new = measure(server, template, f"{case}-bytes", shipped)
            old = None if case in skip else measure(server, template, f"{case}-count", UNBOUNDED)
            old_text = f"{old['peak']:.0f} MiB ({old['seconds']:.0f} s)" if old else "not run"
            rows.append(f"| {count} × {size} MB | {new['peak']:.0f} MiB ({new['seconds']:.0f} s, "
                        f"{new['stored']:.0f} stored) | {old_text} |")  # fmt: skip
            shutil.rmtree(template)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases, print the table and write bench/MEMORY.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["15x15", "100x20"], metavar="NxMB")
    parser.add_argument("--skip-count-only", nargs="*", default=[], metavar="NxMB",
                        help="cases whose count-only run is left out (it needs GBs)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = run(args.cases, args.skip_count_only, args.seed)
    head = ["| case | peak RSS, batch_bytes shipped | peak RSS, count only (before) |",
            "|---|---|---|"]  # fmt: skip
    table = "\n".join(head + rows)
    print("\n" + table)
    command = "python bench/memory_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    RESULTS.write_text(
        f"# Memory benchmark\n\n`{command.strip()}` on {platform.platform()}, "
        f"{os.cpu_count()} CPUs. Peak RSS of the run's whole process tree (main, parse/tag "
        f"worker, resource tracker; not Dovecot), [intake] workers = 1.\n\n{table}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
