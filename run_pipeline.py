"""Thin entry: ``python run_pipeline.py ARGS`` is ``story-intake ARGS`` (``story_intake.cli``)."""

import sys

from story_intake.cli import main

if __name__ == "__main__":
    sys.exit(main())
