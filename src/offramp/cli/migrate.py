"""``offramp migrate PATH [--apply]``: rewrite an app so configuration points it at offramp."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from offramp.errors import InvalidRequest
from offramp.migrate.rewrite.codemod import left_for_people, plan_migration
from offramp.migrate.rewrite.plan import Note

_HEADINGS = {
    "changed": "What the rewrite changes for the deployment:",
    "configure": "Already configurable, no code change: set the environment variable",
    "by-hand": "Left for people (the codemod does not rewrite these):",
}


def migrate(
    path: Annotated[Path, typer.Argument(help="A folder or file to migrate.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the changes (default: diff).")
    ] = False,
) -> None:
    """Rewrite hard-coded API hosts, Azure/Bedrock/Vertex clients and pre-1.0 calls so the
    app reaches offramp through environment variables. Prints a unified diff; --apply
    writes it. With --apply, exit 1 while sites that need a code change remain."""
    if not path.exists():
        raise InvalidRequest(f"{path} does not exist", param="path")
    plan = plan_migration(path)
    remaining = left_for_people(path, plan)
    if apply:
        plan.apply()
    else:
        for change in plan.changes:
            sys.stdout.write(change.diff())
    _print_notes([n for n in plan.notes if n.kind != "by-hand"] + remaining)
    verb = "rewrote" if apply else "would rewrite"
    typer.echo(
        f"{verb} {len(plan.changes)} file(s); {len(remaining)} site(s) left for people",
        err=True,
    )
    raise typer.Exit(1 if remaining and apply else 0)


def _print_notes(notes: list[Note]) -> None:
    for kind, heading in _HEADINGS.items():
        chosen = sorted({(n.file, n.line, n.text) for n in notes if n.kind == kind})
        if not chosen:
            continue
        typer.echo(heading, err=True)
        for file, line, text in chosen:
            typer.echo(f"  {file}:{line}: {text}", err=True)
