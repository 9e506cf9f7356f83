"""``python -m wattwise.app``: the root CLI."""

from wattwise.app.cli import main

main()
