"""The LoRA training loop: PEFT adapters on a transformers causal LM, trained on encoded
chat examples, merged into the weights they adapt.

One optimizer step per batch (AdamW, gradient norm clipped at 1, learning rate decaying
linearly to a tenth over the run); the loss is the mean cross-entropy over the answer
tokens only. After every epoch (and after the last step, if ``max_steps`` ends an epoch
early) the eval loss is measured; with ``early_stopping_patience`` the run stops once
that many evaluations in a row have not beaten the best, and the adapters of the best
evaluation are the ones merged. The base model is left as it was (the adapters are
unloaded, not merged in place), so one loaded base serves many runs.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from offramp.errors import InvalidRequest
from offramp.finetune.chat_tokens import IGNORE, Encoded

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

Device = Literal["cpu", "cuda", "auto"]
DEFAULT_TARGETS = ("q_proj", "v_proj")


@dataclass(frozen=True)
class TrainOptions:
    """The hyper-parameters of one run (every one is recorded in the model card)."""

    epochs: int = 3
    max_steps: int | None = None  # a bound on optimizer steps over all epochs
    lr: float = 2e-4
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    batch_size: int = 8
    seed: int = 0
    early_stopping_patience: int | None = 2  # evaluations without a new best; None: never
    device: Device = "auto"

    def check(self) -> None:
        """InvalidRequest naming the first option out of range."""
        rules = (
            ("epochs", self.epochs >= 1, "at least 1"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "at least 1"),
            ("lr", 0 < self.lr < 1, "between 0 and 1"),
            ("rank", self.rank >= 1, "at least 1"),
            ("alpha", self.alpha >= 1, "at least 1"),
            ("target_modules", bool(self.target_modules), "at least one module name"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            (
                "early_stopping_patience",
                self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                "at least 1",
            ),
        )
        for name, ok, expected in rules:
            if not ok:
                raise InvalidRequest(
                    f"{name} must be {expected}, got {getattr(self, name)!r}", param=name
                )


@dataclass(frozen=True)
class EpochMetrics:
    """One evaluation: after epoch ``epoch`` (1-based) and ``steps`` optimizer steps."""

    epoch: int
    steps: int
    train_loss: float  # mean over the epoch's batches
    eval_loss: float | None  # token-weighted over the eval set; None without one


@dataclass
class TrainOutcome:
    """What a run produced: the merged tensors it changed (transformers names) and how
    it went."""

    changed: dict[str, torch.Tensor]
    epochs: list[EpochMetrics]
    steps: int
    stopped_early: bool
    best_epoch: int | None
    train_tokens: int  # tokens forwarded in training steps (padding excluded)
    train_seconds: float
    device: str
    trainable_parameters: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds else 0.0


class Progress(Protocol):
    """Told about a run as it goes (the CLI draws a progress bar; tests pass nothing)."""

    def start(self, total_steps: int) -> None: ...

    def step(self, step: int, loss: float) -> None: ...

    def evaluated(self, metrics: EpochMetrics) -> None: ...


class _Silent:
    def start(self, total_steps: int) -> None:
        pass

    def step(self, step: int, loss: float) -> None:
        pass

    def evaluated(self, metrics: EpochMetrics) -> None:
        pass


def pick_device(device: Device) -> str:
    """``cuda`` or ``cpu``; InvalidRequest when CUDA is asked for and torch sees none."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidRequest(
            "--device cuda: torch sees no CUDA device on this machine (use cpu or auto)",
            param="device",
        )
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def train_lora(
    model: PreTrainedModel,
    train: Sequence[Encoded],
    evaluation: Sequence[Encoded],
    options: TrainOptions,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train LoRA adapters on ``train``, evaluate on ``evaluation`` each epoch, and return
    the merged weights of every adapted module. ``model`` comes back unchanged."""
    import torch
    from peft import LoraConfig, get_peft_model

    options.check()
    if not train:
        raise InvalidRequest("there are no training examples", param="dataset")
    progress = progress or _Silent()
    device = pick_device(options.device)
    torch.manual_seed(options.seed)
    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        target_modules=list(options.target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:  # e.g. a target module the model does not have
        raise InvalidRequest(f"--target-modules: {exc}", param="target_modules") from exc
    peft_model.to(device)
    try:
        return _run(peft_model, train, evaluation, options, progress, device)
    finally:
        peft_model.unload()  # the adapters out, the base weights untouched
        cast(Any, model).to("cpu")


def _run(
    peft_model: torch.nn.Module,
    train: Sequence[Encoded],
    evaluation: Sequence[Encoded],
    options: TrainOptions,
    progress: Progress,
    device: str,
) -> TrainOutcome:
    import torch

    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.lr, weight_decay=0.0)
    per_epoch = math.ceil(len(train) / options.batch_size)
    total = min(options.epochs * per_epoch, options.max_steps or math.inf)
    total = int(total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 - 0.9 * min(step / max(total, 1), 1.0)
    )
    rng = random.Random(options.seed)
    order = list(range(len(train)))
    epochs: list[EpochMetrics] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    steps, tokens, seconds, stale, stopped = 0, 0, 0.0, 0, False
    progress.start(total)
    for epoch in range(1, options.epochs + 1):
        rng.shuffle(order)
        peft_model.train()
        losses = []
        for start in range(0, len(order), options.batch_size):
            if steps >= total:
                break
            batch = [train[i] for i in order[start : start + options.batch_size]]
            began = time.perf_counter()
            loss, forwarded = _train_step(peft_model, batch, device)
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - began
            tokens += forwarded
            steps += 1
            losses.append(loss)
            progress.step(steps, loss)
        if not losses:
            break
        eval_loss = _eval_loss(peft_model, evaluation, options.batch_size, device)
        metrics = EpochMetrics(epoch, steps, sum(losses) / len(losses), eval_loss)
        epochs.append(metrics)
        progress.evaluated(metrics)
        if eval_loss is not None and (best is None or eval_loss < best[0]):
            best, stale = (eval_loss, epoch, _adapter_state(peft_model)), 0
        elif eval_loss is not None:
            stale += 1
            if options.early_stopping_patience and stale >= options.early_stopping_patience:
                stopped = True
                break
        if steps >= total:
            break
    if best is not None:
        _load_adapter_state(peft_model, best[2])
    return TrainOutcome(
        changed=_merged_weights(peft_model),
        epochs=epochs,
        steps=steps,
        stopped_early=stopped,
        best_epoch=best[1] if best else None,
        train_tokens=tokens,
        train_seconds=seconds,
        device=device,
        trainable_parameters=sum(p.numel() for p in trainable),
    )


def _batch(examples: Sequence[Encoded], device: str) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and labels (padding is masked and ignored)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.zeros((len(examples), width), dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example.labels)
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def _train_step(model: torch.nn.Module, batch: Sequence[Encoded], device: str) -> tuple[float, int]:
    """One forward and backward pass; (loss, tokens forwarded)."""
    inputs = _batch(batch, device)
    loss = model(**inputs).loss
    loss.backward()
    return float(loss.detach()), int(inputs["attention_mask"].sum())


def _eval_loss(
    model: torch.nn.Module, examples: Sequence[Encoded], batch_size: int, device: str
) -> float | None:
    """Cross-entropy per answer token over ``examples`` (None when there are none)."""
    import torch

    if not examples:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            inputs = _batch(examples[start : start + batch_size], device)
            n = int((inputs["labels"][:, 1:] != IGNORE).sum())
            total += float(model(**inputs).loss) * n
            count += n
    model.train()
    return total / count if count else None


def _adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def _load_adapter_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(state, strict=False)


def _merged_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """base weight + LoRA delta of every adapted module, by its transformers name."""
    import torch
    from peft.tuners.lora import LoraLayer

    merged: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, layer in model.named_modules():
            if not isinstance(layer, LoraLayer):
                continue
            module = cast(Any, layer)  # peft's layers are typed loosely
            base = module.get_base_layer()
            weight = base.weight.detach().float()
            for adapter in module.active_adapters:
                weight = weight + module.get_delta_weight(adapter).float()
            merged[name.removeprefix("base_model.model.") + ".weight"] = copy.deepcopy(weight.cpu())
    return merged
