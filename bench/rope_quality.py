"""What RoPE scaling costs in quality: perplexity of the chat model on ordinary text with
its trained positions vs stretched ones (YaRN and linear, factor 2).

    python -m bench.rope_quality [--docs 4]

In-process llama-cpp-python (the same GGUF as the default config), 1 thread; each text
(the bulletins of ``bench.retrieval_set``, 500-750 tokens) is scored token by token from
its logits. Lower is better; the same text scored at the trained positions is the baseline.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

from bench.retrieval_set import build
from offramp.models.registry import load_registry
from offramp.models.sources import resolve
from offramp.settings import load_settings

SETTINGS = {
    "trained (8192)": {"n_ctx": 8192},
    "yarn x2 (16384)": {"n_ctx": 16384, "rope_scaling_type": 2, "rope_freq_scale": 0.5},
    "linear x2 (16384)": {"n_ctx": 16384, "rope_scaling_type": 1, "rope_freq_scale": 0.5},
}


def perplexity(llm: object, text: str) -> float:
    """exp of the mean negative log-likelihood of ``text``'s tokens after the first."""
    tokens = llm.tokenize(text.encode())  # type: ignore[attr-defined]
    llm.reset()  # type: ignore[attr-defined]
    llm.eval(tokens)  # type: ignore[attr-defined]
    logits = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)  # type: ignore[attr-defined]
    peak = logits.max(axis=1, keepdims=True)
    logprobs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    nll = -np.mean([logprobs[i, tokens[i + 1]] for i in range(len(tokens) - 1)])
    return math.exp(float(nll))


def main() -> None:
    from llama_cpp import Llama

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    spec = load_registry(settings.config).resolve("smollm2-135m-instruct", kind="chat")
    path = str(resolve(spec.source, settings.models_dir))
    texts = build(args.docs).documents
    print("| positions | mean perplexity | vs trained |")
    print("|---|---|---|")
    baseline = 0.0
    for name, params in SETTINGS.items():
        llm = Llama(path, n_threads=1, logits_all=True, verbose=False, **params)  # type: ignore[arg-type]
        mean = float(np.mean([perplexity(llm, t) for t in texts]))
        llm.close()
        baseline = baseline or mean
        print(f"| {name} | {mean:.2f} | {mean / baseline:.2f}x |")


if __name__ == "__main__":
    main()
