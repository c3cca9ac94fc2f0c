"""Retrieval quality of long documents: pooled windows vs the first window alone.

    python -m bench.retrieval [--docs 30]

One ``offramp serve`` with the default config, official SDK. The labelled set
(``bench.retrieval_set``) has documents of 500-1,000 tokens whose answer-bearing passage
starts after token 256. "pooled" embeds each whole document (offramp splits it into the
model's 256-token windows and pools them); "first window" embeds only the text of each
document's first window, which is what a model that truncates its input reads. Queries are
embedded alike; documents are ranked by cosine similarity; recall@k is the share of
queries whose document ranks in the top k.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import openai

from bench.retrieval_set import RetrievalSet, build, recall_at
from bench.server import offramp_server
from offramp.models.registry import load_registry
from offramp.models.sources import resolve
from offramp.providers.embed_windows import Vectors, Windower, WindowOptions
from offramp.settings import load_settings

MODEL = "text-embedding-3-small"
KS = (1, 3, 5)


def windower() -> Windower:
    """The default embedding model's windows, as the server splits them."""
    from transformers import AutoTokenizer

    settings = load_settings()
    spec = load_registry(settings.config).resolve(MODEL, kind="embedding")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve(spec.source, settings.models_dir)))
    return Windower(tokenizer, spec.context_length, WindowOptions.from_options(spec.options))


def first_windows(split: Windower, documents: tuple[str, ...]) -> list[str]:
    """The text of each document's first window."""
    plan = split.plan(documents)
    starts = np.cumsum((0, *plan.counts[:-1]))
    return [plan.pieces[int(i)] for i in starts]


def _vectors(client: openai.OpenAI, texts: list[str]) -> tuple[Vectors, int]:
    raw = client.embeddings.with_raw_response.create(
        model=MODEL, input=texts, encoding_format="float"
    )
    reply = raw.parse()
    windows = int(raw.headers.get("x-offramp-embedding-windows", "0"))
    return np.asarray([d.embedding for d in reply.data], dtype=np.float32), windows


def compare(client: openai.OpenAI, split: Windower, data: RetrievalSet) -> dict[str, object]:
    """recall@k of pooled and first-window embeddings over ``data``."""
    queries, _ = _vectors(client, list(data.queries))
    pooled, windows = _vectors(client, list(data.documents))
    first, _ = _vectors(client, first_windows(split, data.documents))
    out: dict[str, object] = {"documents": len(data.documents), "windows": windows}
    for name, docs in (("pooled", pooled), ("first", first)):
        scores = (queries @ docs.T).tolist()
        out[name] = {k: recall_at(k, scores, data.relevant) for k in KS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = build(args.docs)
    split = windower()
    with offramp_server() as served:
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="bench", max_retries=0)
        result = compare(client, split, data)
    print(f"{result['documents']} documents, {result['windows']} windows in all")
    print("| embedding | " + " | ".join(f"recall@{k}" for k in KS) + " |")
    print("|---|" + "---|" * len(KS))
    for name in ("pooled", "first"):
        recalls = result[name]
        assert isinstance(recalls, dict)
        print(f"| {name} | " + " | ".join(f"{recalls[k]:.2f}" for k in KS) + " |")


if __name__ == "__main__":
    main()
