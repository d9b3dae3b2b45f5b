"""Vector stores: the protocol, the embedded SQLite store and named collections."""

from .base import Filters, Hit, Record, VectorStore
from .collections import CollectionNotFound, delete_collection, list_collections, open_collection
from .sqlite import SQLiteStore

__all__ = ["VectorStore", "Record", "Hit", "Filters", "SQLiteStore", "open_collection", "list_collections",
           "delete_collection", "CollectionNotFound"]
