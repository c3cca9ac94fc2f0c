"""``offramp keys create / list / revoke``: API keys in the ledger database."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from offramp.errors import InvalidRequest, quoted
from offramp.keys.store import KeyStore
from offramp.ledger.store import open_engine
from offramp.settings import load_settings

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _store(config: Path | None) -> KeyStore:
    return KeyStore(open_engine(load_settings(config)))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    budget: Annotated[float | None, typer.Option(help="Spend budget in USD.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Allowed model (repeat); default all.")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print its secret (shown only now; only its hash is stored)."""
    key, secret = _store(config).create(
        name, rpm=rpm, tpm=tpm, budget_usd=budget, models=tuple(model) if model else None
    )
    if as_json:
        print(json.dumps({**dataclasses.asdict(key), "secret": secret}))
        return
    print(f"{key.id}  {secret}")
    print("Keep the secret now: offramp stores only its hash.")


@app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="Show revoked keys too.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show keys with their limits (never their secrets)."""
    keys = _store(config).list(include_revoked=include_revoked)
    if as_json:
        print(json.dumps([dataclasses.asdict(k) for k in keys]))
        return
    table = Table("id", "name", "prefix", "rpm", "tpm", "budget $", "models", "created", "revoked")
    for k in keys:
        table.add_row(
            k.id,
            k.name,
            k.prefix + "...",
            _opt(k.rpm),
            _opt(k.tpm),
            _opt(k.budget_usd),
            ", ".join(k.models) if k.models is not None else "all",
            _when(k.created_at),
            _when(k.revoked_at) if k.revoked_at else "",
        )
    Console().print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key; servers refuse it within seconds."""
    if not _store(config).revoke(key_id):
        raise InvalidRequest(f"no live API key {quoted(key_id)}", param="key_id")
    print(f"revoked {key_id}")


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))
