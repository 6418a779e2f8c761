"""Model backends: one async `complete(messages) -> Completion` for hosted, local and served models."""

from haggler.llm.base import Backend, Completion, Message, Usage
from haggler.llm.providers import open_backend
from haggler.llm.retry import RetryPolicy

__all__ = ["Backend", "Completion", "Message", "RetryPolicy", "Usage", "open_backend"]
