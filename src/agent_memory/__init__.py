"""agent-memory: an MCP server that gives LLM-driven agents a memory they manage themselves."""

__version__ = "0.1.0"
