"""``offramp tune DATASET --base MODEL --name NAME``: LoRA-tune a local model on a chat
dataset and register the result as a new version that ``offramp serve`` loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from offramp.errors import InvalidRequest
from offramp.finetune.gguf_weights import QUANTS, Quant
from offramp.finetune.train import DEFAULT_TARGETS, Device, EpochMetrics
from offramp.finetune.tuning import TuneOptions, tune
from offramp.models.tuned import CARD_MARKDOWN
from offramp.settings import load_settings

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]


class _Bar:
    """A rich progress bar over the optimizer steps, with the latest loss, and one line per
    evaluation. Drawn from the first step on: a mistake found before training is one
    line with no bar above it."""

    def __init__(self, console: Console):
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total_steps: int) -> None:
        self._progress = Progress(
            TextColumn("tuning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._progress.start()
        self._task = self._progress.add_task("tuning", total=total_steps, loss="-")

    def step(self, step: int, loss: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4f}")

    def evaluated(self, metrics: EpochMetrics) -> None:
        eval_loss = "-" if metrics.eval_loss is None else f"{metrics.eval_loss:.4f}"
        self._console.print(
            f"epoch {metrics.epoch}: step {metrics.steps}, train loss {metrics.train_loss:.4f}, "
            f"eval loss {eval_loss}"
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def tune_command(
    dataset: Annotated[Path, typer.Argument(help="Chat examples: OpenAI fine-tuning JSONL.")],
    base: Annotated[str, typer.Option(help="Model to start from: a configured name or a .gguf.")],
    name: Annotated[str, typer.Option(help="Name of the tuned model (versions NAME@vN).")],
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 3,
    max_steps: Annotated[
        int | None, typer.Option(help="At most this many optimizer steps in all.")
    ] = None,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW, decays linearly).")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha (scale alpha/r).")] = 16,
    target_modules: Annotated[
        str, typer.Option(help="Comma-separated modules to adapt.")
    ] = ",".join(DEFAULT_TARGETS),
    batch_size: Annotated[int, typer.Option(help="Examples per optimizer step.")] = 8,
    eval_share: Annotated[
        float, typer.Option(help="Share of prompts held out for eval (without --eval).")
    ] = 0.2,
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="A separate eval set (JSONL).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of initialisation and shuffling.")] = 0,
    quant: Annotated[
        str, typer.Option(help=f"Type of the changed tensors: {', '.join(QUANTS)}.")
    ] = "auto",
    early_stopping_patience: Annotated[
        int, typer.Option(help="Stop after this many evals without a new best (0: never).")
    ] = 2,
    config: ConfigOpt = None,
) -> None:
    """LoRA-tune BASE on DATASET and register it as the next version of NAME."""
    settings = load_settings(config)
    options = TuneOptions(
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        rank=rank,
        alpha=alpha,
        target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
        batch_size=batch_size,
        seed=seed,
        early_stopping_patience=early_stopping_patience or None,
        device=_device(device),
        eval_share=eval_share,
        quant=_quant(quant),
    )
    bar = _Bar(Console(stderr=True))
    try:
        result = tune(
            dataset,
            base=base,
            name=name,
            settings=settings,
            options=options,
            eval_dataset=eval_file,
            progress=bar,
        )
    finally:
        bar.close()
    metrics = result.card["metrics"]
    typer.echo(
        f"tuned {result.model}: {metrics['steps']} steps in {metrics['duration_s']:.0f} s "
        f"({metrics['tokens_per_s']:.0f} training tokens/s)\n"
        f"  weights: {result.gguf}\n  card: {result.folder / CARD_MARKDOWN}\n"
        f"serve it as `{result.name}` or `{result.model}`: restart `offramp serve`, or "
        "POST /admin/models/reload on a running one"
    )


def _device(value: str) -> Device:
    if value not in ("cpu", "cuda", "auto"):
        raise InvalidRequest(f"--device must be cpu, cuda or auto, not {value!r}", param="device")
    return cast(Device, value)


def _quant(value: str) -> Quant:
    if value not in QUANTS:
        raise InvalidRequest(f"--quant must be one of {', '.join(QUANTS)}", param="quant")
    return value
