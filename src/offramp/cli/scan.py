"""``offramp scan PATH``: every place a codebase still depends on OpenAI or Anthropic."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from offramp.errors import InvalidRequest
from offramp.migrate.scan import reports
from offramp.migrate.scan.scanner import scan as run_scan


def scan(
    path: Annotated[Path, typer.Argument(help="A folder or file to scan.")],
    output_format: Annotated[
        Literal["table", "json", "sarif"], typer.Option("--format", help="Output format.")
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Find OpenAI, Azure OpenAI and Anthropic usage; exit 1 while a site needs a code change."""
    if not path.exists():
        raise InvalidRequest(f"{path} does not exist", param="path")
    result = run_scan(path)
    if output_format == "json":
        text = reports.as_json(result) + "\n"
    elif output_format == "sarif":
        text = reports.as_sarif(result) + "\n"
    else:
        width = 200 if output is not None or not sys.stdout.isatty() else None
        console = Console(width=width, record=True, file=io.StringIO())
        reports.print_table(result, console)
        text = console.export_text()
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    raise typer.Exit(1 if result.blocking else 0)
