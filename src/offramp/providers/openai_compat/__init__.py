"""Any upstream that speaks OpenAI's HTTP API: vLLM, Ollama, llama.cpp's server, LM Studio,
another offramp, and api.openai.com itself. ``translate`` holds the pure wire mapping,
``failures`` the error mapping, ``provider`` the thin HTTP shell."""
