"""A synthetic task no base model can know: made-up product codes -> name and price, as
JSON. A teacher (a loopback OpenAI-compatible server) answers it perfectly; the learning
loop's tests and bench distil it into the bundled model."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SYSTEM = (
    "You are the Qorvane catalogue. Answer with one JSON object with the keys code, name "
    "and price, nothing else."
)
PRODUCTS: dict[str, tuple[str, float]] = {
    "QX-417": ("Velvet Lamp", 34.5),
    "ZB-902": ("Cobalt Kettle", 58.0),
    "MT-113": ("Juniper Desk", 212.0),
    "LR-650": ("Amber Stool", 41.25),
    "PK-288": ("Saffron Rug", 129.0),
    "WD-731": ("Granite Mug", 12.75),
    "HN-504": ("Willow Shelf", 87.0),
    "CV-369": ("Ember Clock", 26.5),
}
PHRASINGS = (
    "What is product {code}?",
    "Look up {code}.",
    "Details for item {code}, please.",
    "Which product has the code {code}?",
    "I need the catalogue entry for {code}.",
    "{code}: name and price?",
    "Tell me about {code}.",
    "What does {code} cost and what is it called?",
    "Find {code} in the catalogue.",
    "Product code {code} - what is it?",
    "Can you check {code} for me?",
    "Give me the record of {code}.",
    "How much is {code}?",
    "What's the name of {code}?",
    "Catalogue lookup: {code}",
    "Please identify item {code}.",
)
_CODE = re.compile(r"\b[A-Z]{2}-\d{3}\b")


def answer(code: str) -> str:
    """The one right answer for ``code``, as compact JSON with a fixed key order."""
    name, price = PRODUCTS[code]
    return json.dumps({"code": code, "name": name, "price": price})


def prompts() -> list[list[dict[str, str]]]:
    """Every (code, phrasing) question, as chat messages: 8 codes x 16 phrasings."""
    return [
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": phrasing.format(code=code)},
        ]
        for phrasing in PHRASINGS
        for code in PRODUCTS
    ]


def teacher_app(delay_s: float = 0.0) -> Starlette:
    """An OpenAI-compatible chat server that knows the catalogue (after ``delay_s``)."""

    async def chat(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        text = str(body["messages"][-1].get("content") or "")
        found = _CODE.search(text)
        content = answer(found.group(0)) if found and found.group(0) in PRODUCTS else "{}"
        if delay_s:
            await asyncio.sleep(delay_s)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "teacher"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
            }
        )

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "teacher", "object": "model"}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
