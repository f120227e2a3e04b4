"""The wsendpoints demo: four WebSocket endpoints and a page to try them from a browser.

Run ``python examples/demo.py`` and open http://127.0.0.1:8000/.

- ``/echo``     text echo, a class-based endpoint: "hi" -> "You said: hi"
- ``/json``     JSON ping-pong: {"type": "ping"} -> {"type": "pong"}
- ``/msgpack``  MessagePack echo, in binary frames
- ``/private``  refuses the handshake (HTTP 403) unless the URL has ``?token=letmein``
- ``/``         an HTML page (a raw ASGI app, mounted) that talks to ``/echo``

A binary frame sent to ``/echo`` closes the connection with 1003, bad JSON sent
to ``/json`` with 1007: the codecs decide, the endpoints never see such messages.
"""

from __future__ import annotations

from typing import Any

from wsendpoints import API, WebSocket, WebSocketEndpoint
from wsendpoints.types import Receive, Scope, Send

api = API()


@api.websocket_route("/echo")
class Echo(WebSocketEndpoint):
    """Text in, text out (the default ``value_type``)."""

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(f"You said: {message}")


@api.websocket_route("/json", value_type="json")
async def json_ping_pong(ws: WebSocket) -> None:
    async with ws:
        async for message in ws:
            kind = message.get("type") if isinstance(message, dict) else None
            await ws.send({"type": "pong" if kind == "ping" else "ping"})


class MsgPackEcho(WebSocketEndpoint):
    value_type = "msgpack"

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message)


api.add_websocket("/msgpack", MsgPackEcho)


@api.websocket_route("/private")
class Private(WebSocketEndpoint):
    """Only for clients that know the token."""

    async def on_connect(self, ws: WebSocket) -> None:
        if ws.query_params.get("token") != "letmein":
            # Closing before accept() refuses the handshake: the client gets HTTP 403.
            await ws.close(1008)
            return
        await ws.accept()
        await ws.send("Welcome!")

    async def on_receive(self, ws: WebSocket, message: str) -> None:
        await ws.send(f"Secret: {message}")


PAGE = b"""<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>wsendpoints demo</title>
<h1>wsendpoints demo</h1>
<form id="form"><input id="text" autocomplete="off" autofocus> <button>Send to /echo</button></form>
<p id="status">connecting...</p>
<ul id="replies"></ul>
<script>
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/echo`);
const status = document.getElementById("status");
ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (event) => { status.textContent = `closed (code ${event.code})`; };
ws.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("replies").append(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
</html>
"""


async def homepage(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app: the page at ``/``, 404 for any other HTTP path."""
    found = scope["path"] == "/"
    body = PAGE if found else b"Not Found"
    content_type = b"text/html; charset=utf-8" if found else b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


api.mount("/", homepage)


if __name__ == "__main__":
    api.run()
