"""The migration kit: finding OpenAI usage in a codebase, comparing models on real prompts."""
