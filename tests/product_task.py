"""A synthetic task no base model can know: made-up product codes -> name and price, as
JSON. A teacher (``teacher_answer`` behind a scripted upstream) answers it perfectly; the learning
loop's tests and bench distil it into the bundled model."""

from __future__ import annotations

import json
import re
from typing import Any

SYSTEM = "Answer with the Qorvane catalogue entry as JSON."
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
    """The one right answer for ``code``: its name and price as JSON, in that order."""
    name, price = PRODUCTS[code]
    return json.dumps({"name": name, "price": price})


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


def teacher_answer(body: dict[str, Any]) -> str:
    """The teacher's answer to a chat request body: the catalogue entry of the code in
    its last message (``{}`` for an unknown code)."""
    text = str(body["messages"][-1].get("content") or "")
    found = _CODE.search(text)
    return answer(found.group(0)) if found and found.group(0) in PRODUCTS else "{}"


def truth(messages: list[dict[str, str]]) -> dict[str, Any]:
    """The right answer to a question, as an object."""
    found = _CODE.search(messages[-1]["content"])
    assert found is not None
    value: dict[str, Any] = json.loads(answer(found.group(0)))
    return value


def correct(text: str, messages: list[dict[str, str]]) -> bool:
    """Whether ``text`` holds exactly the right object (every field)."""
    start, end = text.find("{"), text.rfind("}")
    try:
        got = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        return False
    return isinstance(got, dict) and all(got.get(k) == v for k, v in truth(messages).items())
