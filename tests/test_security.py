"""Security: the origin policy, the authenticate hook, message limits, hostile payloads and ASGI middleware.

The in-process client offers the ``websocket.http.response`` extension, so a refused
handshake shows its real HTTP status; `handshake` plays a server with or without
it, and keeps every event the application sent.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route as StarletteRoute

from examples.auth_middleware import BearerAuthMiddleware
from wsendpoints import API, WebSocket, WebSocketDisconnect, WebSocketEndpoint
from wsendpoints.exceptions import AuthenticationFailed, ConfigurationError, HandshakeRejected
from wsendpoints.testing import ClientWebSocket, connect, lifespan
from wsendpoints.types import Message

FOREIGN = "https://evil.example"


class Echo(WebSocketEndpoint):
    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(message)


class Recorder(Echo):
    """An echo endpoint writing which hooks ran into the class's ``calls``."""

    calls: list[str]

    async def on_connect(self, ws: WebSocket) -> None:
        self.calls.append("on_connect")
        await ws.accept()

    async def on_disconnect(self, ws: WebSocket, close_code: int) -> None:
        self.calls.append(f"on_disconnect {close_code}")


def recorder(**attributes: Any) -> type[Recorder]:
    return type("Recorder", (Recorder,), {"calls": [], **attributes})


async def echo_view(ws: WebSocket) -> None:
    async with ws:
        async for message in ws:
            await ws.send(message)


def served(endpoint: Any, api: API | None = None, path: str = "/", **options: Any) -> API:
    api = API() if api is None else api
    api.add_websocket(path, endpoint, **options)
    return api


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsendpoints" and r.levelno == level]


async def opens(app: Any, path: str = "/", headers: dict[str, str] | None = None) -> bool:
    """Whether the handshake succeeds (and the echo works); False if it was refused with 403."""
    try:
        async with connect(app, path, headers=headers) as ws:
            await ws.send_text("ping")
            assert await ws.receive_text() == "ping"
    except HandshakeRejected as rejected:
        status = rejected.status_code
    else:
        return True
    assert status == 403
    return False


async def close_code_from_app(ws: ClientWebSocket) -> int:
    """Read until the application closes the connection; the code it chose."""

    async def read_all() -> None:
        while True:
            await ws.receive_event()

    with pytest.raises(WebSocketDisconnect) as closed:
        await read_all()
    return closed.value.code


async def handshake(
    app: Any,
    path: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    *,
    http_response: bool = True,
) -> list[Message]:
    """Play a server for one handshake; what the app sent. A client that got in leaves at once.

    Without ``http_response`` the scope lacks the ``websocket.http.response``
    extension, as with servers that cannot send an HTTP response from the app.
    """
    scope: Message = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in headers],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if http_response else {},
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


# -- origins --------------------------------------------------------------------------------------


async def test_a_handshake_without_origin_passes() -> None:
    # Non-browser clients send no Origin; they could send any they liked anyway.
    assert await opens(served(Echo))


@pytest.mark.parametrize("origin", ["http://testserver", "https://testserver", "HTTP://TestServer"])
async def test_a_page_from_the_same_host_passes_whatever_its_scheme(origin: str) -> None:
    # The scheme is ignored on purpose: behind a TLS proxy the page is https, the request plain ws.
    assert await opens(served(Echo), headers={"origin": origin})


@pytest.mark.parametrize(
    "origin",
    [
        FOREIGN,
        "http://testserver.evil.example",
        "http://evil-testserver",
        "http://testserver:8080",
        "http://testserver@evil.example",
        "null",
        "",
        "not a url",
    ],
)
async def test_a_foreign_origin_is_refused_with_403_and_logged(
    origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = recorder()
    api = served(endpoint)
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/", headers={"origin": origin}):
            pass
    assert rejected.value.status_code == 403
    assert endpoint.calls == [], "nothing of the endpoint ran"
    assert api.connection_count == 0
    [info] = [r for r in records(caplog, logging.INFO) if "refused" in r.getMessage()]
    assert info.getMessage().endswith(f"origin not allowed: {origin!r}")
    assert records(caplog, logging.WARNING) == records(caplog, logging.ERROR) == []


async def test_a_foreign_origin_is_closed_before_accept_without_the_http_response_extension() -> None:
    sent = await handshake(served(Echo), headers=[("origin", FOREIGN)], http_response=False)
    # A close before accept: servers answer the handshake with 403.
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


async def test_a_foreign_origin_gets_an_http_403_through_the_extension() -> None:
    sent = await handshake(served(Echo), headers=[("origin", FOREIGN)])
    assert [m["type"] for m in sent] == ["websocket.http.response.start", "websocket.http.response.body"]
    assert sent[0]["status"] == 403


@pytest.mark.parametrize("listed", ["https://app.example", "https://App.Example/", "HTTPS://APP.EXAMPLE"])
async def test_allowed_origins_let_the_listed_ones_in_besides_the_own_host(listed: str) -> None:
    api = served(Echo, API(allowed_origins=[listed, "http://localhost:3000"]))
    assert await opens(api, headers={"origin": "https://app.example"})
    assert await opens(api, headers={"origin": "https://APP.example"})
    assert await opens(api, headers={"origin": "http://localhost:3000"})
    assert await opens(api, headers={"origin": "http://testserver"})
    assert await opens(api)
    # Listed origins are exact: scheme and port count.
    assert not await opens(api, headers={"origin": "http://app.example"})
    assert not await opens(api, headers={"origin": "https://app.example:8443"})
    assert not await opens(api, headers={"origin": "https://sub.app.example"})
    assert not await opens(api, headers={"origin": FOREIGN})


async def test_default_ports_name_the_same_origin_whether_written_or_not() -> None:
    # Browsers leave the scheme's default port out of Origin; a configured entry or a
    # Host header may carry it.
    api = served(Echo, API(allowed_origins=["https://app.example:443", "http://dev.example:80"]))
    assert await opens(api, headers={"origin": "https://app.example"})
    assert await opens(api, headers={"origin": "http://dev.example"})
    assert not await opens(api, headers={"origin": "http://app.example"})
    assert await opens(api, headers={"origin": "https://site.example", "host": "site.example:443"})
    assert await opens(api, headers={"origin": "http://site.example", "host": "site.example:80"})
    assert not await opens(api, headers={"origin": "http://site.example", "host": "site.example:443"})


@pytest.mark.parametrize(
    "entry",
    [
        "app.example.com",
        "https://app.example.com/chat",
        "https://",
        "https://app.example.com:99999",
        "https://user@app.example.com",
    ],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused_when_configured(entry: str) -> None:
    # It would never match: every page it was meant for would get 403, with no hint why.
    with pytest.raises(ConfigurationError, match="is not an origin"):
        API(allowed_origins=[entry])
    with pytest.raises(ConfigurationError, match="is not an origin"):
        API().add_websocket("/", Echo, allowed_origins=[entry])


async def test_api_allowed_origins_given_as_one_string_means_that_origin() -> None:
    # A route's allowed_origins may be a single string; the API's should mean the same,
    # not the set of its characters.
    api = served(Echo, API(allowed_origins="https://app.example"))
    assert await opens(api, headers={"origin": "https://app.example"})


@pytest.mark.parametrize("allowed", [["*"], ["https://app.example", "*"]])
async def test_a_star_lets_every_origin_in(allowed: list[str]) -> None:
    api = served(Echo, API(allowed_origins=allowed))
    for origin in [FOREIGN, "null", "http://testserver", "https://app.example"]:
        assert await opens(api, headers={"origin": origin})


async def test_the_null_origin_is_refused_by_default() -> None:
    # Sandboxed iframes and file:// pages send "null": no host to trust.
    assert not await opens(served(Echo), headers={"origin": "null"})


async def test_listing_null_lets_pages_with_an_opaque_origin_in_and_no_other() -> None:
    api = served(Echo, API(allowed_origins=["null"]))
    assert await opens(api, headers={"origin": "null"})
    assert not await opens(api, headers={"origin": FOREIGN})


async def test_an_endpoint_class_attribute_overrides_the_api_setting() -> None:
    class Open(Echo):
        allowed_origins = ("*",)

    class Partner(Echo):
        allowed_origins = ("https://partner.example",)

    api = API(allowed_origins=["https://app.example"])
    api.add_websocket("/open", Open)
    api.add_websocket("/partner", Partner)
    api.add_websocket("/default", Echo)
    assert await opens(api, "/open", {"origin": FOREIGN})
    assert await opens(api, "/partner", {"origin": "https://partner.example"})
    assert await opens(api, "/partner", {"origin": "http://testserver"})
    # The endpoint's list replaces the API's, it does not add to it.
    assert not await opens(api, "/partner", {"origin": "https://app.example"})
    assert await opens(api, "/default", {"origin": "https://app.example"})
    assert not await opens(api, "/default", {"origin": "https://partner.example"})


@pytest.mark.parametrize("handler", [Echo, echo_view], ids=["endpoint", "view"])
async def test_a_route_option_overrides_the_api_setting(handler: Any) -> None:
    api = API(allowed_origins=["*"])
    api.add_websocket("/partner", handler, allowed_origins=["https://partner.example"])
    api.add_websocket("/one", handler, allowed_origins="https://partner.example")
    api.add_websocket("/own", handler, allowed_origins=[])
    api.add_websocket("/any", handler)
    for path in ["/partner", "/one"]:
        assert await opens(api, path, {"origin": "https://partner.example"})
        assert not await opens(api, path, {"origin": FOREIGN})
    # An empty list narrows the API's "*" down to the server's own host.
    assert await opens(api, "/own", {"origin": "http://testserver"})
    assert not await opens(api, "/own", {"origin": FOREIGN})
    assert await opens(api, "/any", {"origin": FOREIGN})


async def test_a_route_option_overrides_the_endpoint_class_attribute() -> None:
    class Open(Echo):
        allowed_origins = ("*",)

    api = served(Open, allowed_origins=["https://partner.example"])
    assert await opens(api, headers={"origin": "https://partner.example"})
    assert not await opens(api, headers={"origin": FOREIGN})


async def test_the_origin_is_checked_before_capacity_and_authentication() -> None:
    checked: list[str] = []

    class Guarded(Echo):
        async def authenticate(self, ws: WebSocket) -> Any:
            checked.append("authenticate")
            return "user"

    api = served(Guarded, API(max_connections=1))
    async with connect(api):
        with pytest.raises(HandshakeRejected) as full:
            async with connect(api):
                pass
        with pytest.raises(HandshakeRejected) as foreign:
            async with connect(api, headers={"origin": FOREIGN}):
                pass
    assert full.value.status_code == 503
    assert foreign.value.status_code == 403, "a foreign page learns nothing about the server's load"
    assert checked == ["authenticate"], "only the accepted connection was authenticated"


# -- authentication -----------------------------------------------------------------------------------


class TokenEndpoint(Recorder):
    async def authenticate(self, ws: WebSocket) -> Any:
        token = ws.headers.get("authorization")
        if token != "Token sesame":
            raise AuthenticationFailed(401, "bad token", {"www-authenticate": "Token"})
        return {"name": "alice"}

    async def on_connect(self, ws: WebSocket) -> None:
        await super().on_connect(ws)
        await ws.send(f"on_connect: {ws.user['name']}")

    async def on_receive(self, ws: WebSocket, message: Any) -> None:
        await ws.send(f"on_receive: {ws.user['name']}")


async def test_what_authenticate_returns_is_ws_user_in_every_hook() -> None:
    endpoint: type[TokenEndpoint] = type("Tokens", (TokenEndpoint,), {"calls": []})
    async with connect(served(endpoint), headers={"authorization": "Token sesame"}) as ws:
        assert await ws.receive_text() == "on_connect: alice"
        await ws.send_text("hi")
        assert await ws.receive_text() == "on_receive: alice"
    assert endpoint.calls == ["on_connect", "on_disconnect 1000"]


async def test_without_an_authenticate_override_the_user_is_none() -> None:
    class Who(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.send(repr(ws.user))

    async with connect(served(Who)) as ws:
        assert await ws.receive_text() == "None"


@pytest.mark.parametrize("authorization", [None, "Token wrong", "sesame"])
async def test_authentication_failed_refuses_with_its_status_and_body(
    authorization: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint: type[TokenEndpoint] = type("Tokens", (TokenEndpoint,), {"calls": []})
    api = served(endpoint)
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, headers=headers):
            pass
    assert rejected.value.status_code == 401
    assert rejected.value.body == b"bad token"
    assert rejected.value.headers["www-authenticate"] == "Token"
    assert rejected.value.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert endpoint.calls == [], "neither on_connect nor on_disconnect ran"
    assert api.connection_count == 0
    [info] = [r for r in records(caplog, logging.INFO) if "refused" in r.getMessage()]
    assert "authentication failed (401)" in info.getMessage()
    assert records(caplog, logging.ERROR) == []


async def test_a_refusal_is_logged_even_if_the_app_is_cancelled_once_it_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The in-process client cancels the app as soon as it has the response; the refusal
    # went out, so it is logged, whenever the cancellation lands.
    api = served(type("Tokens", (TokenEndpoint,), {"calls": []}))
    scope = connect(api).scope
    inbox: list[Message] = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        return inbox.pop(0)

    with anyio.fail_after(5), anyio.CancelScope() as app:

        async def send(message: Message) -> None:
            if message["type"] == "websocket.http.response.body":
                app.cancel()

        await api(scope, receive, send)
    [info] = [r for r in records(caplog, logging.INFO) if "refused" in r.getMessage()]
    assert "authentication failed (401)" in info.getMessage()


async def test_authentication_failed_sends_its_headers() -> None:
    sent = await handshake(served(type("Tokens", (TokenEndpoint,), {"calls": []})))
    assert [m["type"] for m in sent] == ["websocket.http.response.start", "websocket.http.response.body"]
    start, body = sent
    assert start["status"] == 401
    assert (b"www-authenticate", b"Token") in start["headers"]
    assert (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
    assert body["body"] == b"bad token"


@pytest.mark.parametrize("name", ["Content-Type", "content-type"])
async def test_authentication_failed_with_its_own_content_type_sends_only_that_one(name: str) -> None:
    # Sent beside the default one, uvicorn (websockets) dropped the connection without any
    # response, and wsproto and hypercorn sent both headers.
    async def refuse(ws: WebSocket) -> Any:
        raise AuthenticationFailed(401, b'{"error": "no token"}', {name: "application/json"})

    sent = await handshake(served(echo_view, authenticate=refuse))
    start, body = sent
    assert (start["status"], body["body"]) == (401, b'{"error": "no token"}')
    assert [value for key, value in start["headers"] if key == b"content-type"] == [b"application/json"]


async def test_authentication_failed_can_send_a_header_more_than_once() -> None:
    challenges = [("WWW-Authenticate", 'Bearer realm="chat"'), ("WWW-Authenticate", "Basic")]

    async def refuse(ws: WebSocket) -> Any:
        raise AuthenticationFailed(401, headers=challenges)

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(echo_view, authenticate=refuse)):
            pass
    assert rejected.value.headers.getlist("www-authenticate") == ['Bearer realm="chat"', "Basic"]


def test_authentication_failed_headers_read_like_the_handshake_headers() -> None:
    failure = AuthenticationFailed(401, headers={"WWW-Authenticate": "Token"})
    assert failure.headers["www-authenticate"] == "Token"
    assert "WWW-AUTHENTICATE" in failure.headers


def test_authentication_failed_given_a_message_for_its_status_says_how_to_write_it() -> None:
    # Else it failed only when the refusal went out, comparing the str with 200: a bare 500.
    expected = (
        r"write AuthenticationFailed\(401, 'invalid token'\), not AuthenticationFailed\('invalid token'\)"
    )
    with pytest.raises(TypeError, match=expected):
        AuthenticationFailed("invalid token")  # type: ignore[arg-type]
    assert AuthenticationFailed(HTTPStatus.FORBIDDEN).status_code == 403


async def test_authentication_failed_closes_before_accept_without_the_http_response_extension() -> None:
    endpoint: type[TokenEndpoint] = type("Tokens", (TokenEndpoint,), {"calls": []})
    sent = await handshake(served(endpoint), http_response=False)
    # The server turns a close before accept into HTTP 403.
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008
    assert endpoint.calls == []


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        (AuthenticationFailed(401, headers={"X-Reason": "line\nbreak"}), "b'x-reason'"),
        (AuthenticationFailed(4001), "HTTP status 4001"),
    ],
)
async def test_a_refusal_http_cannot_carry_is_the_same_error_without_the_http_response_extension(
    failure: AuthenticationFailed, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The server could not have sent it anyway; the app's mistake still shows, as on servers
    # that can, instead of passing for a refusal until the app meets one.
    async def refuse(ws: WebSocket) -> None:
        raise failure

    sent = await handshake(served(echo_view, authenticate=refuse), http_response=False)
    assert [(m["type"], m.get("code")) for m in sent] == [("websocket.close", 1011)]
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert named in str(error.exc_info[1])
    assert not [r for r in records(caplog, logging.INFO) if "refused" in r.getMessage()]


@pytest.mark.parametrize(
    ("failure", "status", "body"),
    [
        (AuthenticationFailed(), 401, b"401 Unauthorized"),
        (AuthenticationFailed(403), 403, b"403 Forbidden"),
        (AuthenticationFailed(429, b"slow down", {"retry-after": "5"}), 429, b"slow down"),
    ],
)
async def test_authentication_failed_defaults(
    failure: AuthenticationFailed, status: int, body: bytes
) -> None:
    class Refuser(Echo):
        async def authenticate(self, ws: WebSocket) -> Any:
            raise failure

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(Refuser)):
            pass
    assert (rejected.value.status_code, rejected.value.body) == (status, body)


async def test_authentication_failed_with_a_status_code_outside_the_http_table(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 499, 419, 440... are used in the wild; the refusal should keep the status, not become a 500.
    class Refuser(Echo):
        async def authenticate(self, ws: WebSocket) -> Any:
            raise AuthenticationFailed(499)

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(Refuser)):
            pass
    assert rejected.value.status_code == 499
    assert records(caplog, logging.ERROR) == []


@pytest.mark.parametrize("status", [4001, 1008, 101, 99, 600])
async def test_authentication_failed_with_a_status_servers_cannot_send_is_a_500_naming_it(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    # A close code passed for a status (4001), or a 1xx: uvicorn and hypercorn answered 500
    # without a word about why (101 even opened the connection on uvicorn), while this
    # client reported the status as sent.
    class Refuser(Echo):
        async def authenticate(self, ws: WebSocket) -> Any:
            raise AuthenticationFailed(status)

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(Refuser)):
            pass
    assert rejected.value.status_code == 500
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert f"HTTP status {status} cannot be sent" in str(error.exc_info[1])


async def test_an_unexpected_error_in_authenticate_is_a_500_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recorder):
        calls: list[str] = []  # noqa: RUF012

        async def authenticate(self, ws: WebSocket) -> Any:
            raise LookupError("the session store is down")

    api = served(Broken)
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api):
            pass
    assert rejected.value.status_code == 500
    assert Broken.calls == []
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], LookupError)
    # The app is still serving.
    assert await opens(served(Echo, api, "/echo"), "/echo")


async def test_the_authenticate_route_option_of_a_view() -> None:
    async def check(ws: WebSocket) -> str:
        if ws.query_params.get("token") != "sesame":
            raise AuthenticationFailed(401, "who are you?")
        return "alice"

    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send(f"hello {ws.user}")

    api = served(view, authenticate=check)
    async with connect(api, "/?token=sesame") as ws:
        assert await ws.receive_text() == "hello alice"
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/?token=wrong"):
            pass
    assert (rejected.value.status_code, rejected.value.body) == (401, b"who are you?")


async def test_a_view_whose_authenticate_raises_unexpectedly_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def check(ws: WebSocket) -> str:
        raise RuntimeError("bug")

    async def view(ws: WebSocket) -> None:
        ran.append("view")

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(view, authenticate=check)):
            pass
    assert rejected.value.status_code == 500
    assert ran == []
    assert len(records(caplog, logging.ERROR)) == 1


class RefusingOnConnect(Recorder):
    """Authenticates in on_connect, where the handshake is not yet accepted."""

    calls: list[str] = []  # noqa: RUF012

    async def on_connect(self, ws: WebSocket) -> None:
        self.calls.append("on_connect")
        if ws.query_params.get("token") != "sesame":
            raise AuthenticationFailed(401, "who are you?", {"WWW-Authenticate": "Token"})
        await ws.accept()


async def refuses_before_accept(api: API, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(api, "/?token=wrong"):
            pass
    assert (rejected.value.status_code, rejected.value.body) == (401, b"who are you?")
    assert rejected.value.headers["www-authenticate"] == "Token"
    [info] = [r for r in records(caplog, logging.INFO) if "refused" in r.getMessage()]
    assert "authentication failed (401)" in info.getMessage()
    assert records(caplog, logging.ERROR) == []
    async with connect(api, "/?token=sesame") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"


async def test_authentication_failed_in_on_connect_refuses_as_from_authenticate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    RefusingOnConnect.calls = []
    await refuses_before_accept(served(RefusingOnConnect), caplog)
    # on_connect ran, so on_disconnect runs, once, with the refusal's close code.
    assert RefusingOnConnect.calls == ["on_connect", "on_disconnect 1008", "on_connect", "on_disconnect 1000"]


async def test_authentication_failed_in_a_view_before_accept_refuses_as_from_authenticate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def view(ws: WebSocket) -> None:
        if ws.query_params.get("token") != "sesame":
            raise AuthenticationFailed(401, "who are you?", [("WWW-Authenticate", "Token")])
        await echo_view(ws)

    await refuses_before_accept(served(view), caplog)


async def test_authentication_failed_from_tasks_before_accept_refuses_as_from_authenticate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Checked concurrently, in a task group of the view's own: the group raises the refusal
    # wrapped in an ExceptionGroup, as every anyio task group does.
    async def check_token(ws: WebSocket) -> None:
        await anyio.lowlevel.checkpoint()
        if ws.query_params.get("token") != "sesame":
            raise AuthenticationFailed(401, "who are you?", {"WWW-Authenticate": "Token"})

    async def view(ws: WebSocket) -> None:
        async with anyio.create_task_group() as checks:
            checks.start_soon(check_token, ws)
            checks.start_soon(anyio.sleep, 0.01)  # another check, cancelled by the refusal
        await echo_view(ws)

    await refuses_before_accept(served(view), caplog)


async def test_authentication_failed_before_accept_that_http_cannot_carry_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def view(ws: WebSocket) -> None:
        raise AuthenticationFailed(401, headers={"X-Reason": "line\nbreak"})

    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(served(view)):
            pass
    assert rejected.value.status_code == 500
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert "'x-reason'" in str(error.exc_info[1])


async def test_authentication_failed_after_accept_is_an_error_closing_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # There is no HTTP response left to refuse with: raising it here is a bug in the app.
    async def view(ws: WebSocket) -> None:
        async with ws:
            raise AuthenticationFailed(401)

    async with connect(served(view)) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 1011
    [error] = records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], AuthenticationFailed)


def test_a_sync_authenticate_option_is_refused_at_registration() -> None:
    def check(ws: WebSocket) -> str:
        return "alice"

    api = API()
    with pytest.raises(ConfigurationError, match="async def"):
        api.add_websocket("/", echo_view, authenticate=check)  # type: ignore[arg-type]
    assert api.routes == []


def test_a_sync_authenticate_method_is_refused_when_the_class_is_defined() -> None:
    # Like a sync view: a forgotten `async` must not wait for the first connection to show up.
    with pytest.raises(ConfigurationError, match="async def"):

        class Sync(Echo):
            def authenticate(self, ws: WebSocket) -> Any:
                return "alice"


def test_the_authenticate_route_option_is_refused_for_an_endpoint() -> None:
    async def check(ws: WebSocket) -> str:
        return "alice"

    api = API()
    with pytest.raises(ConfigurationError, match="authenticate"):
        api.add_websocket("/", Echo, authenticate=check)
    assert api.routes == []


# -- message size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "at_limit", "over"),
    [
        # Text is measured in characters ("é" is 2 bytes in UTF-8), binary in bytes.
        ("text", "é" * 10, "é" * 11),
        ("bytes", b"\xff" * 10, b"\xff" * 11),
        ("json", '"' + "é" * 8 + '"', '"' + "é" * 9 + '"'),
        ("msgpack", b"\xc4\x08" + b"\xff" * 8, b"\xc4\x09" + b"\xff" * 9),
        ("auto", "é" * 10, b"\xff" * 11),
    ],
)
async def test_a_message_over_max_message_size_closes_with_1009(
    value_type: str, at_limit: str | bytes, over: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = recorder(value_type=value_type, max_message_size=10)
    async with connect(served(endpoint)) as ws:
        await send_frame(ws, at_limit)
        assert (await ws.receive_event())["type"] == "websocket.send"
        await send_frame(ws, over)
        assert await close_code_from_app(ws) == 1009
    assert endpoint.calls == ["on_connect", "on_disconnect 1009"]
    # The reason names the option, as the server's own limit (--max-message-size) is another.
    unit = "characters" if isinstance(over, str) else "bytes"
    assert ws.close_reason == f"message of 11 {unit}, over max_message_size (10)"
    [warning] = records(caplog, logging.WARNING)
    assert "1009" in warning.getMessage()
    assert ws.close_reason in warning.getMessage()
    assert records(caplog, logging.ERROR) == []


async def send_frame(ws: ClientWebSocket, payload: str | bytes) -> None:
    if isinstance(payload, str):
        await ws.send_text(payload)
    else:
        await ws.send_bytes(payload)


async def test_the_default_limit_is_one_mebibyte() -> None:
    async with connect(served(Echo)) as ws:
        await ws.send_text("x" * 2**20)
        assert len(await ws.receive_text()) == 2**20
        await ws.send_text("x" * (2**20 + 1))
        assert await close_code_from_app(ws) == 1009


@pytest.mark.parametrize(
    "register",
    [
        pytest.param(lambda api: api.add_websocket("/", recorder(max_message_size=None)), id="class"),
        pytest.param(lambda api: api.add_websocket("/", Echo, max_message_size=None), id="endpoint route"),
        pytest.param(lambda api: api.add_websocket("/", echo_view, max_message_size=None), id="view route"),
    ],
)
async def test_max_message_size_none_disables_the_limit(register: Any) -> None:
    api = API()
    register(api)
    async with connect(api) as ws:
        await ws.send_text("x" * (2**20 + 1))
        assert len(await ws.receive_text()) == 2**20 + 1


@pytest.mark.parametrize("handler", [Echo, echo_view], ids=["endpoint", "view"])
async def test_max_message_size_as_a_route_option(handler: Any) -> None:
    async with connect(served(handler, max_message_size=4)) as ws:
        await ws.send_text("four")
        assert await ws.receive_text() == "four"
        await ws.send_text("fives")
        assert await close_code_from_app(ws) == 1009


@pytest.mark.parametrize(
    "receive", ["receive_text", "receive_json", "receive_bytes", "receive_msgpack", "receive_event"]
)
async def test_the_other_receive_methods_apply_the_limit(receive: str) -> None:
    async def view(ws: WebSocket) -> None:
        async with ws:
            await ws.send(repr(await getattr(ws, receive)()))

    binary = receive in ("receive_bytes", "receive_msgpack", "receive_event")
    async with connect(served(view, max_message_size=4)) as ws:
        await send_frame(ws, b"\xc4\x02ab" if binary else '"ab"')
        assert (await ws.receive_event())["type"] == "websocket.send"
    async with connect(served(view, max_message_size=4)) as ws:
        await send_frame(ws, b"\xc4\x03abc" if binary else '"abc"')
        assert await close_code_from_app(ws) == 1009


# -- message rate -----------------------------------------------------------------------------------

# Bursts are checked at a low rate, so that even a slow machine sends one well within a token's refill.
BURST_RATE = 10
RATE = 20


def rate_limited_api(where: str, rate: float) -> API:
    class Limited(Echo):
        max_message_rate = rate

    if where == "class":
        return served(Limited)
    return served(Echo if where == "endpoint route" else echo_view, max_message_rate=rate)


each_rate_limited = pytest.mark.parametrize("where", ["class", "endpoint route", "view route"])


@each_rate_limited
async def test_a_burst_of_rate_messages_passes_and_the_next_closes_with_1008(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(rate_limited_api(where, BURST_RATE)) as ws:
        for n in range(BURST_RATE + 1):
            await ws.send_text(str(n))
        for n in range(BURST_RATE):
            assert await ws.receive_text() == str(n)
        assert await close_code_from_app(ws) == 1008
    [warning] = records(caplog, logging.WARNING)
    assert "too many messages" in warning.getMessage()


@each_rate_limited
async def test_a_client_within_the_rate_stays_connected(where: str) -> None:
    async with connect(rate_limited_api(where, RATE)) as ws:
        # A full burst empties the bucket; then a pace of half the rate refills it faster than it drains.
        for n in range(RATE):
            await ws.send_text(str(n))
            assert await ws.receive_text() == str(n)
        for n in range(5):
            await anyio.sleep(2 / RATE)
            await ws.send_text(f"paced {n}")
            assert await ws.receive_text() == f"paced {n}"
        assert ws.close_code is None, "the app never closed"


async def test_the_rate_limit_is_per_connection() -> None:
    api = served(Echo, max_message_rate=BURST_RATE)
    async with connect(api) as first, connect(api) as second:
        for ws in (first, second):
            for n in range(BURST_RATE):
                await ws.send_text(str(n))
            for n in range(BURST_RATE):
                assert await ws.receive_text() == str(n)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_message_size": 0},
        {"max_message_size": -1},
        {"max_message_size": 1.5},
        {"max_message_rate": 0},
        {"max_message_rate": -1},
        {"max_message_rate": math.inf},
        {"max_message_rate": math.nan},
    ],
    ids=str,
)
def test_bad_limits_are_refused_at_registration(limits: dict[str, Any]) -> None:
    api = API()
    with pytest.raises(ConfigurationError, match=next(iter(limits))):
        api.add_websocket("/view", echo_view, **limits)
    with pytest.raises(ConfigurationError, match=next(iter(limits))):
        api.add_websocket("/endpoint", Echo, **limits)
    with pytest.raises(ConfigurationError, match=next(iter(limits))):
        type("Limited", (Echo,), limits)
    assert api.routes == []


# -- hostile payloads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "payload"),
    [
        pytest.param("json", "[" * 2000 + "]" * 2000, id="json nested 2000 deep"),
        pytest.param("json", '{"a":' * 2000 + "1" + "}" * 2000, id="json objects nested 2000 deep"),
        pytest.param("msgpack", b"\x91" * 2000 + b"\xc0", id="msgpack nested 2000 deep"),
        pytest.param("msgpack", b"\xdd\xff\xff\xff\xff", id="msgpack array of 2**32-1 in 5 bytes"),
        pytest.param("msgpack", b"\xdf\xff\xff\xff\xff", id="msgpack map of 2**32-1 in 5 bytes"),
        pytest.param("msgpack", b"\xc6\xff\xff\xff\xff", id="msgpack bin of 4 GiB in 5 bytes"),
        pytest.param("msgpack", b"\xdb\xff\xff\xff\xff", id="msgpack str of 4 GiB in 5 bytes"),
    ],
)
async def test_a_payload_that_would_expand_is_refused_with_1007(
    value_type: str, payload: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = recorder(value_type=value_type)
    api = served(endpoint)
    async with connect(api) as ws:
        await send_frame(ws, payload)
        assert await close_code_from_app(ws) == 1007
    assert endpoint.calls == ["on_connect", "on_disconnect 1007"]
    assert len(records(caplog, logging.WARNING)) == 1
    assert records(caplog, logging.ERROR) == []
    # The app keeps serving.
    async with connect(api) as ws:
        await send_frame(ws, "[1]" if value_type == "json" else b"\x91\x01")
        assert (await ws.receive_event())["type"] == "websocket.send"


@pytest.mark.parametrize(
    ("value_type", "payload"),
    [("json", "[" * 500 + "]" * 500), ("msgpack", b"\x91" * 500 + b"\xc0")],
    ids=["json", "msgpack"],
)
async def test_reasonable_nesting_still_decodes(value_type: str, payload: str | bytes) -> None:
    async def depth(ws: WebSocket) -> None:
        async with ws:
            value, levels = await ws.receive(), 0
            while isinstance(value, list) and value:
                value, levels = value[0], levels + 1
            await ws.send_text(str(levels + (value == [])))

    async with connect(served(depth, value_type=value_type)) as ws:
        await send_frame(ws, payload)
        assert await ws.receive_text() == "500"


# -- middleware -----------------------------------------------------------------------------------


def tagging(app: Any, *, name: str, trail: list[str]) -> Any:
    """A middleware noting its name in ``trail`` and in the scope's ``"trail"``."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        trail.append(f"{name} {scope['type']}")
        await app({**scope, "trail": [*scope.get("trail", []), name]}, receive, send)

    return middleware


class Trail(WebSocketEndpoint):
    async def on_connect(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(" > ".join(ws.scope["trail"]))


async def test_middleware_wraps_the_app_first_outermost() -> None:
    trail: list[str] = []

    async def http_app(scope: Any, receive: Any, send: Any) -> None:
        body = " > ".join(scope["trail"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    api = API(
        middleware=[
            functools.partial(tagging, name="outer", trail=trail),
            functools.partial(tagging, name="inner", trail=trail),
        ]
    )
    api.add_websocket("/ws", Trail)
    api.mount("/http", http_app)
    started: list[str] = []
    api.on("startup")(lambda: started.append("startup"))

    async with lifespan(api):
        assert started == ["startup"]
        async with connect(api, "/ws") as ws:
            assert await ws.receive_text() == "outer > inner"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://test"
        ) as client:
            assert (await client.get("/http")).text == "outer > inner"
    assert trail == [
        "outer lifespan",
        "inner lifespan",
        "outer websocket",
        "inner websocket",
        "outer http",
        "inner http",
    ]


async def test_middleware_sees_even_refused_handshakes() -> None:
    trail: list[str] = []
    api = served(Echo, API(middleware=[functools.partial(tagging, name="only", trail=trail)]))
    with pytest.raises(HandshakeRejected):
        async with connect(api, "/nowhere"):
            pass
    with pytest.raises(HandshakeRejected):
        async with connect(api, "/", headers={"origin": FOREIGN}):
            pass
    assert trail == ["only websocket", "only websocket"]


async def test_an_api_mounted_in_another_runs_both_middleware_stacks() -> None:
    trail: list[str] = []
    inner = API(middleware=[functools.partial(tagging, name="inner", trail=trail)])
    inner.add_websocket("/ws", Trail)
    outer = API(middleware=[functools.partial(tagging, name="outer", trail=trail)])
    outer.mount("/sub", inner, websocket=True)
    async with connect(outer, "/sub/ws") as ws:
        assert await ws.receive_text() == "outer > inner"
    assert trail == ["outer websocket", "inner websocket"]


async def test_a_connection_calling_its_app_again_goes_through_the_middleware() -> None:
    """The mark that lets the middleware's core route does not leak into the connection's own calls."""
    trail: list[str] = []
    api = API(middleware=[functools.partial(tagging, name="only", trail=trail)])

    class Relay(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            async with connect(api, "/trail") as inner:
                await ws.send(await inner.receive_text())

    api.add_websocket("/relay", Relay)
    api.add_websocket("/trail", Trail)
    async with connect(api, "/relay") as ws:
        assert await ws.receive_text() == "only"
    assert trail == ["only websocket", "only websocket"]


# The authentication middleware of examples/auth_middleware.py, in front of an app of the test's own.

TOKENS = {"sesame": "alice"}


def authenticated_api() -> API:
    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"user {request.user} at {request.url.path}")

    class Me(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.send(f"user {ws.scope['user']}")

    api = API(middleware=[functools.partial(BearerAuthMiddleware, tokens=TOKENS)])
    api.add_websocket("/ws", Me)
    api.mount("/starlette", Starlette(routes=[StarletteRoute("/me", me)]))
    return api


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic sesame", "sesame"])
async def test_an_auth_middleware_refuses_http_without_a_valid_token(authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    transport = httpx.ASGITransport(app=authenticated_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/starlette/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="wsendpoints"'


async def test_an_auth_middleware_lets_http_with_a_valid_token_through() -> None:
    transport = httpx.ASGITransport(app=authenticated_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/starlette/me", headers={"authorization": "Bearer sesame"})
    assert response.status_code == 200
    assert response.text == "user alice at /starlette/me"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"])
async def test_an_auth_middleware_refuses_a_websocket_handshake_with_401(authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    with pytest.raises(HandshakeRejected) as rejected:
        async with connect(authenticated_api(), "/ws", headers=headers):
            pass
    assert rejected.value.status_code == 401
    sent = await handshake(authenticated_api(), "/ws", headers.items())
    assert sent[0]["type"] == "websocket.http.response.start"
    assert (b"www-authenticate", b'Bearer realm="wsendpoints"') in sent[0]["headers"]


async def test_an_auth_middleware_closes_before_accept_without_the_http_response_extension() -> None:
    sent = await handshake(authenticated_api(), "/ws", http_response=False)
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_an_auth_middleware_lets_a_websocket_with_a_valid_token_through() -> None:
    async with connect(authenticated_api(), "/ws", headers={"authorization": "Bearer sesame"}) as ws:
        assert await ws.receive_text() == "user alice"
