"""The DynamoDB backend: the item engine (:class:`DynamoEngine`) and table administration."""

from agent_memory.storage.dynamodb.admin import TableStatus, create_tables, delete_tables, table_status
from agent_memory.storage.dynamodb.engine import DynamoEngine

__all__ = ["DynamoEngine", "TableStatus", "create_tables", "delete_tables", "table_status"]
