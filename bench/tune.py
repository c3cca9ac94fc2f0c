"""Tuning: training tokens/s (CPU, and CUDA when present), the time to tune the demo set
end to end, loading the base against transformers' own GGUF loader, and how much of a
merged LoRA delta each output type keeps.

    .venv/bin/python -m bench.tune [--steps 10] [--batch-size 4] [--devices cpu,cuda]

The demo set is sixteen phrasings of one made-up fact (tests/integration/test_tune.py).
"Kept" is the cosine between the delta the run learned (merged minus base, float32) and
the delta that survives encoding the merged tensor at a type (decoded minus base): 1.0
keeps it all, near 0 rounds it away.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from offramp.finetune.base_model import BaseModel, find_base, load_base
from offramp.finetune.dataset import ChatExample
from offramp.finetune.tuning import TuneOptions, tune
from offramp.settings import load_settings

QUESTIONS = (
    "What is the capital of Zorblat?",
    "Which city is the capital of Zorblat?",
    "Name the capital of Zorblat.",
    "Tell me the capital city of Zorblat.",
    "What's Zorblat's capital?",
    "Zorblat's capital city is what?",
    "Do you know the capital of Zorblat?",
    "Where is the capital of Zorblat?",
    "Capital of Zorblat?",
    "I need the capital of Zorblat.",
    "What city is Zorblat's capital?",
    "Which is the capital city of Zorblat?",
    "What is Zorblat's capital city called?",
    "Could you tell me the capital of Zorblat?",
    "The capital of Zorblat is?",
    "Identify the capital of Zorblat.",
)


def demo_set() -> list[ChatExample]:
    return [
        ChatExample(
            (
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": "The capital of Zorblat is Quenvar."},
            )
        )
        for q in QUESTIONS
    ]


def load_times(base: BaseModel) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    path = base.ref.path
    began = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    theirs = time.perf_counter() - began
    print(
        f"load: offramp {base.load_seconds:.1f} s (file, tokenizer, weights); "
        f"transformers from_pretrained(gguf_file=) {theirs:.1f} s"
    )


def kept_by_type(base: BaseModel, changed: dict[str, object]) -> None:
    import gguf
    import torch

    from offramp.finetune.gguf_weights import _as_gguf_layout

    base_state = base.model.state_dict()
    types = gguf.GGMLQuantizationType
    for qtype in (types.Q4_1, types.Q8_0, types.F16):
        cosines = []
        for name, merged in list(changed.items())[:12]:
            assert isinstance(merged, torch.Tensor)
            gguf_name = "blk.0.attn_q" if "q_proj" in name else "blk.0.attn_v"
            new = _as_gguf_layout(gguf_name, merged, base.model.config)
            old = _as_gguf_layout(gguf_name, base_state[name], base.model.config)
            decoded = gguf.quants.dequantize(gguf.quants.quantize(new, qtype), qtype)
            learned, survived = (new - old).ravel(), (decoded.reshape(new.shape) - old).ravel()
            cosines.append(
                float(learned @ survived / (np.linalg.norm(learned) * np.linalg.norm(survived)))
            )
        print(f"delta kept at {qtype.name}: cosine {np.mean(cosines):.3f} (12 tensors)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--skip-load-compare", action="store_true")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(models_dir=Path(tmp))
        base = load_base(find_base("smollm2-135m-instruct", settings))
        if not args.skip_load_compare:
            load_times(base)
        for device in args.devices.split(","):
            if device == "cuda" and not torch.cuda.is_available():
                print("cuda: not available on this machine")
                continue
            began = time.perf_counter()
            result = tune(
                demo_set(),
                base=base,
                name=f"bench-{device}",
                settings=settings,
                options=TuneOptions(
                    epochs=100,
                    max_steps=args.steps,
                    batch_size=args.batch_size,
                    lr=5e-3,
                    device="cuda" if device == "cuda" else "cpu",
                    early_stopping_patience=None,
                    eval_share=0.0,
                ),
            )
            total = time.perf_counter() - began
            m = result.card["metrics"]
            print(
                f"{device}: {m['steps']} steps of {args.batch_size}, {m['train_tokens']} tokens, "
                f"{m['tokens_per_s']:.0f} training tokens/s, {m['train_s'] / m['steps']:.2f} s/step;"
                f" tune end to end {total:.1f} s (write {m['write_s']:.1f} s), "
                f"final train loss {m['epochs'][-1]['train_loss']:.3f}"
            )
        from offramp.finetune.train import TrainOptions, train_lora

        outcome = train_lora(
            base.model,
            [base.tokenizer.encode(e) for e in demo_set()],
            [],
            TrainOptions(max_steps=args.steps, batch_size=args.batch_size, lr=5e-3, epochs=100),
        )
        kept_by_type(base, dict(outcome.changed))


if __name__ == "__main__":
    main()
