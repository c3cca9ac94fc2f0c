"""The ``offramp`` command. Errors become one clear line and an exit code here, only here."""

from __future__ import annotations

import sys

import typer

from offramp.cli import data, evaluate, keys, migrate, models, parity, run, scan, usage
from offramp.errors import ClientError, OfframpError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Serve the OpenAI API from models you run yourself.",
)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(data.app, name="data")
app.command("serve")(run.serve)
app.command("chat")(run.chat)
app.command("embed")(run.embed)
app.command("scan")(scan.scan)
app.command("migrate")(migrate.migrate)
app.command("parity")(parity.parity)
app.command("usage")(usage.usage)
app.command("eval")(evaluate.evaluate)


def main() -> None:
    try:
        app()
    except OfframpError as exc:
        print(f"offramp: error: {exc.message}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ClientError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)
