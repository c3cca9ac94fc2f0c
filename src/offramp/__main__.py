"""``python -m offramp`` runs the CLI."""

from offramp.cli.main import main

main()
