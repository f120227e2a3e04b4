"""Real servers (uvicorn on asyncio, hypercorn on trio) over loopback, with the ``websockets`` client."""
