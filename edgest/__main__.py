"""``python -m edgest`` is the CLI."""

from edgest.cli import main

main()
