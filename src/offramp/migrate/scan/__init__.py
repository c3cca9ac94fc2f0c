"""``offramp scan``: find every place a codebase depends on OpenAI, Azure OpenAI or Anthropic."""
