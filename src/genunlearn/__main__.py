"""``python -m genunlearn`` (and ``accelerate launch -m genunlearn ...``) runs the CLI."""

from genunlearn.cli import main

main()
