"""The model card of a tuned version: what it was tuned from and on, how, and how it did.

``card.json`` is for programs (the registry reads its ``serving`` section; ``offramp
eval`` and rollouts can read the rest); ``card.md`` says the same for people.
"""

from __future__ import annotations

from typing import Any


def markdown(card: dict[str, Any]) -> str:
    """The card as a short Markdown page."""
    data, base, hyper, metrics = (
        card["dataset"],
        card["base"],
        card["hyperparameters"],
        card["metrics"],
    )
    lines = [
        f"# {card['model']}",
        "",
        f"Tuned from `{base['name']}` ({base['path']}) with LoRA on {card['created']}.",
        "",
        "## Data",
        "",
        f"- dataset: `{data['source']}` (sha256 `{data['sha256']}`)",
        f"- examples: {data['examples']} ({data['duplicates']} duplicates dropped); "
        f"train {data['train']}, eval {data['eval']} ({data['eval_source']})",
        "",
        "## Hyper-parameters",
        "",
        *[f"- {key}: {value}" for key, value in hyper.items()],
        "",
        "## Training",
        "",
        "| epoch | steps | train loss | eval loss |",
        "| ---: | ---: | ---: | ---: |",
        *[
            f"| {e['epoch']} | {e['steps']} | {e['train_loss']:.4f} | "
            f"{'-' if e['eval_loss'] is None else format(e['eval_loss'], '.4f')} |"
            for e in metrics["epochs"]
        ],
        "",
        f"- steps: {metrics['steps']}"
        + (" (stopped early)" if metrics["stopped_early"] else "")
        + (f"; best eval after epoch {metrics['best_epoch']}" if metrics["best_epoch"] else ""),
        f"- device: {metrics['device']}; {metrics['train_tokens']} training tokens at "
        f"{metrics['tokens_per_s']:.0f} tokens/s",
        f"- duration: {metrics['duration_s']:.1f} s (base loaded in {metrics['load_s']:.1f} s, "
        f"training {metrics['train_s']:.1f} s, writing {metrics['write_s']:.1f} s)",
        "",
        "## Weights",
        "",
        f"- `model.gguf`: {card['weights']['bytes']} bytes; changed tensors as "
        f"{card['weights']['encoded']}, {card['weights']['copied']} tensors copied from the base",
        f"- served as `{card['model']}` (and `{card['name']}` while it is the newest version), "
        f"context {card['serving']['context_length']} tokens",
        "",
    ]
    return "\n".join(lines)
