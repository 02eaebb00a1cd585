"""The memory's API as data: every tool's request and result model, the tool table, errors as
data, and how results are kept compact. Imports only :mod:`agent_memory.models` and
:mod:`agent_memory.errors`, so the Python client can use it without the server."""

from agent_memory.api import requests, results
from agent_memory.api.errors import error_class, error_result, to_exception
from agent_memory.api.tools import TOOLS, ToolSpec

__all__ = ["TOOLS", "ToolSpec", "error_class", "error_result", "requests", "results", "to_exception"]
