"""Runnable examples, each with its tests in ``tests/examples/`` (and ``tests/integration/``).

- ``echo.py``: the class-based echo of the getting-started page
- ``demo.py``: a text echo (class-based), JSON ping-pong, a msgpack echo, a refused handshake, a page
- ``guide/``: every example of the seed guide, as it is written there
- ``chat/``: a chat room with rooms, nicknames and join/leave notices, and its HTML page
- ``ticker.py``: server push, a background task per connection
- ``trio_app.py``: the same endpoints served on trio (hypercorn) or asyncio (uvicorn)
- ``starlette_mount.py``: a wsendpoints endpoint inside a Starlette app, and a Starlette app inside an API
- ``auth_middleware.py``: one ASGI middleware authenticating HTTP and WebSocket alike
"""
