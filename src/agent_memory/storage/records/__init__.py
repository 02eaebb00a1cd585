"""The record layer, one module per record family; combined in :mod:`agent_memory.storage.store`."""
