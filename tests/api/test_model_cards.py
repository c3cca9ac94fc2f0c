"""``GET /v1/models/{id}`` says how long a request may be and what counts its tokens."""

from __future__ import annotations

import httpx

from tests.servers import ServerThread


def test_cards_report_context_length_and_tokenizer(server: ServerThread) -> None:
    chat = httpx.get(server.base_url + "/v1/models/gpt-4o-mini").json()
    assert chat["root"] == "smollm2-135m-instruct"
    assert chat["context_length"] == 8192
    assert chat["tokenizer"]["name"].startswith("gpt2 BPE")
    assert "49152 tokens" in chat["tokenizer"]["name"]
    assert "OpenAI" in chat["tokenizer"]["openai_estimate"]
    embed = httpx.get(server.base_url + "/v1/models/text-embedding-3-small").json()
    assert embed["context_length"] == 8191 and embed["window"] == 256
    assert embed["tokenizer"]["name"].startswith("BertTokenizer")
