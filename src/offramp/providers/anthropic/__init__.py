"""Anthropic's Messages API as an offramp provider.

``request`` (ChatRequest -> Messages API body), ``response`` (message -> CompletionResult),
``stream`` (SSE events -> stream items) and ``failures`` (errors -> offramp's tree) are
pure and tested without a network; ``provider`` is the thin httpx shell around them;
``config`` is what a model entry's ``options`` may say.
"""
