"""LLM agents: model providers, the agentic loop, tools and skills."""
