"""``python -m examples.chat``: serve the chat on http://127.0.0.1:8000/ (one process, memory backend)."""

from .app import api

api.run()
