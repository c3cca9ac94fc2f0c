"""``offramp models list`` and ``offramp models pull``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from offramp.errors import ModelSourceError
from offramp.models import sources
from offramp.models.tuned import load_with_tuned
from offramp.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="List configured models; pull models from a hub.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]


@app.command("list")
def list_models(config: ConfigOpt = None) -> None:
    """Show every configured model, its aliases, and whether its weights are on disk."""
    settings = load_settings(config)
    registry = load_with_tuned(settings.config, settings.models_dir)
    table = Table("model", "kind", "backend", "context", "aliases", "source", "on disk")
    for spec in registry.specs:
        try:
            sources.resolve(spec.source, settings.models_dir)
            present = "yes"
        except ModelSourceError:
            present = "no"
        table.add_row(
            spec.name,
            spec.kind,
            spec.backend,
            str(spec.context_length),
            ", ".join(spec.aliases),
            spec.source.describe(),
            present,
        )
    # a pipe gets the whole table, not one cut to 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("pull")
def pull(
    ref: Annotated[str, typer.Argument(help="ORG/REPO/FILE.gguf on the model hub.")],
    config: ConfigOpt = None,
) -> None:
    """Download a model file into the models dir (OFFRAMP_MODELS_DIR), with progress."""
    settings = load_settings(config)
    path = sources.pull(ref, settings.models_dir)
    typer.echo(f"pulled {ref} -> {path}")
    repo, file = sources.split_hub_ref(ref)
    typer.echo(
        "use it by adding to your config's `models:` list:\n"
        f"  - name: {Path(file).stem.lower()}\n    backend: llamacpp\n"
        f"    source: {{hub: {repo}, file: {file}}}\n    context_length: 4096"
    )
