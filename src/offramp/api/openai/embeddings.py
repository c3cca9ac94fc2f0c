"""``POST /v1/embeddings``: float lists or base64 (the official SDK's default).

When the model says how many windows it pooled (inputs longer than its sequence limit,
see ``providers.embed_windows``), their total travels as ``x-offramp-embedding-windows``
and as ``usage.windows``.
"""

from __future__ import annotations

import base64
import time

import numpy as np
from fastapi import APIRouter, Depends, Request

from offramp.api.caller import caller_of
from offramp.api.deps import gateway_of
from offramp.api.openai import translate
from offramp.api.openai.protocol import EmbeddingRequestWire
from offramp.api.responses import JSONResponse
from offramp.api.routing_headers import routing_headers
from offramp.api.streaming import until_disconnect
from offramp.gateway.accounting import Caller
from offramp.types import Usage

router = APIRouter()

WINDOWS_HEADER = "x-offramp-embedding-windows"


@router.post("/v1/embeddings")
async def create_embeddings(
    body: EmbeddingRequestWire, request: Request, caller: Caller = Depends(caller_of)
) -> JSONResponse:
    started = time.perf_counter()
    gateway = gateway_of(request)
    routed = await until_disconnect(request, gateway.embed(caller, translate.embed_request(body)))
    result = routed.value
    vectors = result.vectors
    if body.encoding_format == "base64":
        little = vectors.astype("<f4", copy=False)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.tobytes()).decode("ascii"),
            }
            for i, row in enumerate(little)
        ]
    else:
        data = [
            {"object": "embedding", "index": i, "embedding": row}
            for i, row in enumerate(np.asarray(vectors, dtype=np.float32))
        ]
    usage: dict[str, int] = {
        "prompt_tokens": result.prompt_tokens,
        "total_tokens": result.prompt_tokens,
    }
    headers = routing_headers([routed.outcome], started, [Usage(result.prompt_tokens)])
    if result.windows:
        usage["windows"] = sum(result.windows)
        headers[WINDOWS_HEADER] = str(usage["windows"])
    # orjson serialises numpy rows natively, much faster than Python float lists.
    return JSONResponse(
        {"object": "list", "data": data, "model": body.model, "usage": usage}, headers=headers
    )
