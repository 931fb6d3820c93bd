"""The admin side's index: events, their attempts and dead letters, searchable in SQLite.

Kafka (or the embedded log) stays the record of truth; the index is a bounded local cache
under ``data_dir`` (``index.sqlite3``) fed by the event, raw, dead-letter and attempt
topics, and can be deleted at any time (it is rebuilt from what the bus still holds).
"""

from relay.index.feed import Indexer, index_topics
from relay.index.reader import RecordReader
from relay.index.store import EventRow, Filters, Index, Page

__all__ = ["EventRow", "Filters", "Index", "Indexer", "Page", "RecordReader", "index_topics"]
