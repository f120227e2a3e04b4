"""Path patterns, converters and mounts: matching, refusals, and values reaching the handlers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from wsendpoints import API, WebSocket, WebSocketEndpoint, register_converter
from wsendpoints.exceptions import ConfigurationError, HandshakeRejected
from wsendpoints.routing import Mount, Route
from wsendpoints.testing import connect

UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for the application a route or mount serves; matching never calls it."""


def unique_name(prefix: str) -> str:
    # Converter names are global to the process and async tests run once per backend.
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class Even:
    """Digits whose value is even; odd numbers fail in convert, not in the regex."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        number = int(value)
        if number % 2:
            raise ValueError(f"{number} is odd")
        return number


class HexColor:
    regex = "[0-9a-fA-F]{6}"

    def convert(self, value: str) -> tuple[int, int, int]:
        return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


# -- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "params"),
    [
        ("/", "/", {}),
        ("/echo", "/echo", {}),
        ("/rooms/{room}", "/rooms/lobby", {"room": "lobby"}),
        ("/rooms/{room:str}", "/rooms/a b", {"room": "a b"}),
        ("/users/{id:int}", "/users/42", {"id": 42}),
        ("/users/{id:int}", "/users/007", {"id": 7}),
        ("/scale/{x:float}", "/scale/1.5", {"x": 1.5}),
        ("/scale/{x:float}", "/scale/2", {"x": 2.0}),
        ("/things/{u:uuid}", f"/things/{UUID}", {"u": UUID}),
        ("/things/{u:uuid}", f"/things/{str(UUID).upper()}", {"u": UUID}),
        ("/files/{rest:path}", "/files/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("/files/{rest:path}/raw", "/files/a/b/raw", {"rest": "a/b"}),
        ("/rooms/{room}/users/{id:int}", "/rooms/x/users/3", {"room": "x", "id": 3}),
    ],
)
def test_pattern_matches_and_converts(pattern: str, path: str, params: dict[str, Any]) -> None:
    matched = Route(pattern, asgi_app).match(path)
    assert matched == params
    assert [type(v) for v in matched.values()] == [type(v) for v in params.values()]


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/echo", "/echo/"),
        ("/echo", "/echoes"),
        ("/echo", "/prefix/echo"),
        ("/rooms/{room}", "/rooms/"),
        ("/rooms/{room}", "/rooms/a/b"),
        ("/users/{id:int}", "/users/abc"),
        ("/users/{id:int}", "/users/-1"),
        ("/users/{id:int}", "/users/1.5"),
        ("/scale/{x:float}", "/scale/1."),
        ("/scale/{x:float}", "/scale/nan"),
        ("/things/{u:uuid}", "/things/12345678"),
        ("/files/{rest:path}", "/other/a/b"),
        # Literal parts are not regular expressions.
        ("/a.b/{x}", "/aXb/1"),
        ("/a+/{x}", "/aa/1"),
    ],
)
def test_pattern_does_not_match(pattern: str, path: str) -> None:
    assert Route(pattern, asgi_app).match(path) is None


def test_registered_converter_matches_and_converts() -> None:
    name = unique_name("hex")
    register_converter(name, HexColor())
    assert Route(f"/color/{{c:{name}}}", asgi_app).match("/color/ff8000") == {"c": (255, 128, 0)}
    assert Route(f"/color/{{c:{name}}}", asgi_app).match("/color/ff80") is None


def test_converter_raising_value_error_means_no_match() -> None:
    name = unique_name("even")
    register_converter(name, Even())
    route = Route(f"/n/{{x:{name}}}", asgi_app)
    assert route.match("/n/4") == {"x": 4}
    assert route.match("/n/3") is None


@pytest.mark.parametrize(
    ("name", "path", "params"),
    [("int", "/12", {"x": 12}), ("str", "/ab", {"x": "ab"}), ("path", "/a/b", {"x": "a/b"})],
)
def test_register_converter_refuses_a_name_already_taken(
    name: str, path: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="already registered"):
        register_converter(name, HexColor())
    assert Route(f"/{{x:{name}}}", asgi_app).match(path) == params


class NoRegex:
    def convert(self, value: str) -> str:
        return value


class NoConvert:
    regex = ".*"


class RegexNotStr(NoRegex):
    regex = 42


@pytest.mark.parametrize("converter", [NoRegex(), NoConvert(), RegexNotStr(), object()])
def test_register_converter_refuses_an_object_that_is_not_a_converter(converter: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a converter"):
        register_converter(unique_name("partial"), converter)


class BadRegex(NoRegex):
    def __init__(self, regex: str) -> None:
        self.regex = regex


# The last two compile on their own, but not inside the group a route puts them in: an inline
# global flag must start the whole pattern, and \1 there names that very group. They used to
# pass register_converter and fail the route with a bare re.error.
@pytest.mark.parametrize("regex", ["([0-9]", "(?i)[a-z]+", r"([a-z])\1"])
def test_converter_with_an_invalid_regex_is_refused_with_configuration_error(regex: str) -> None:
    name = unique_name("broken")

    def register_and_use() -> None:
        register_converter(name, BadRegex(regex))
        Route(f"/{{x:{name}}}", asgi_app)

    # Either step may refuse it, as long as the error says it is a configuration mistake.
    with pytest.raises(ConfigurationError):
        register_and_use()


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        ("rooms/{room}", "must start with '/'"),
        ("", "must start with '/'"),
        ("/a/{x}/b/{x}", "twice"),
        ("/a/{x:int}/{x:str}", "twice"),
        ("/a/{x:nope}", "unknown path converter"),
        ("/a/{x:int:int}", "unknown path converter"),
        ("/a/{}", "not a valid name"),
        ("/a/{:int}", "not a valid name"),
        ("/a/{1x}", "not a valid name"),
        ("/a/{x-y}", "not a valid name"),
        ("/a/{x y}", "not a valid name"),
        ("/a/{x", "unbalanced"),
        ("/a/x}", "unbalanced"),
        ("/a/{{x}}", "unbalanced"),
        ("/a/{x{y}}", "unbalanced"),
    ],
)
def test_bad_pattern_is_refused(pattern: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        Route(pattern, asgi_app)


def test_unknown_converter_error_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        Route("/a/{x:nope}", asgi_app)
    for name in ["float", "int", "path", "str", "uuid"]:
        assert name in str(info.value)


def test_api_refuses_a_bad_pattern_at_registration() -> None:
    api = API()
    with pytest.raises(ConfigurationError):

        @api.websocket_route("/a/{x:nope}")
        async def view(ws: WebSocket, x: str) -> None:
            pass


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        ("/api", "/api", True),
        ("/api", "/api/", True),
        ("/api", "/api/ws/chat", True),
        ("/api", "/apix", False),
        ("/api", "/", False),
        ("/api", "/other/api", False),
        ("/api/", "/api/ws", True),
        ("/api/", "/apix", False),
        ("", "/anything", True),
        ("/", "/anything", True),
    ],
)
def test_mount_matches_its_prefix_on_segment_boundaries(prefix: str, path: str, matches: bool) -> None:
    assert Mount(prefix, asgi_app).match(path) is matches


def test_mount_prefix_without_leading_slash_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must start with '/'"):
        Mount("api", asgi_app)


# -- end to end through API -------------------------------------------------------------------


def described(values: Any) -> dict[str, list[str]]:
    """Values as JSON can carry them: type name and text."""
    return {name: [type(value).__name__, str(value)] for name, value in dict(values).items()}


def reporting_api(pattern: str) -> API:
    api = API()

    @api.websocket_route(pattern)
    async def report(ws: WebSocket, **params: Any) -> None:
        async with ws:
            await ws.send_json({"kwargs": described(params), "path_params": described(ws.path_params)})

    return api


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/rooms/{room}", "/rooms/lobby", {"room": ["str", "lobby"]}),
        ("/users/{id:int}", "/users/42", {"id": ["int", "42"]}),
        ("/scale/{x:float}", "/scale/0.5", {"x": ["float", "0.5"]}),
        ("/things/{u:uuid}", f"/things/{UUID}", {"u": ["UUID", str(UUID)]}),
        ("/files/{rest:path}", "/files/a/b.txt", {"rest": ["str", "a/b.txt"]}),
        ("/r/{room}/u/{id:int}", "/r/x/u/7", {"room": ["str", "x"], "id": ["int", "7"]}),
    ],
)
async def test_converted_values_reach_path_params_and_view_arguments(
    pattern: str, path: str, expected: dict[str, list[str]]
) -> None:
    async with connect(reporting_api(pattern), path) as client:
        assert await client.receive_json() == {"kwargs": expected, "path_params": expected}


async def test_a_route_without_parameters_gives_empty_read_only_path_params() -> None:
    api = API()

    @api.websocket_route("/plain")
    async def plain(ws: WebSocket) -> None:
        async with ws:
            try:
                ws.scope["path_params"]["injected"] = 1
            except TypeError:
                await ws.send(f"read-only {dict(ws.path_params)}")

    for _ in range(2):  # shared by every connection, so the first must not have changed it
        async with connect(api, "/plain") as client:
            assert await client.receive_text() == "read-only {}"


async def test_query_string_does_not_take_part_in_matching() -> None:
    async with connect(reporting_api("/users/{id:int}"), "/users/5?id=6") as client:
        assert (await client.receive_json())["kwargs"] == {"id": ["int", "5"]}


async def test_converted_values_reach_an_endpoint_class() -> None:
    class Report(WebSocketEndpoint):
        async def on_connect(self, ws: WebSocket) -> None:
            await ws.accept()
            await ws.send_json(described(ws.path_params))

    api = API()
    api.add_websocket("/users/{id:int}", Report)
    async with connect(api, "/users/12") as client:
        assert await client.receive_json() == {"id": ["int", "12"]}


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/users/{id:int}", "/users/abc"),
        ("/scale/{x:float}", "/scale/x"),
        ("/things/{u:uuid}", "/things/not-a-uuid"),
        ("/rooms/{room}", "/rooms/a/b"),
    ],
)
async def test_value_failing_its_converter_refuses_the_handshake_with_404(pattern: str, path: str) -> None:
    with pytest.raises(HandshakeRejected) as info:
        async with connect(reporting_api(pattern), path):
            pass
    assert info.value.status_code == 404


async def test_converter_refusing_a_value_lets_the_next_route_match() -> None:
    even = unique_name("even")
    register_converter(even, Even())
    api = API()

    @api.websocket_route(f"/n/{{x:{even}}}")
    async def even_view(ws: WebSocket, x: int) -> None:
        async with ws:
            await ws.send_json(["even", x])

    @api.websocket_route("/n/{x:int}")
    async def any_view(ws: WebSocket, x: int) -> None:
        async with ws:
            await ws.send_json(["any", x])

    for path, expected in [("/n/4", ["even", 4]), ("/n/3", ["any", 3])]:
        async with connect(api, path) as client:
            assert await client.receive_json() == expected


async def test_custom_converter_value_reaches_the_view() -> None:
    color = unique_name("color")
    register_converter(color, HexColor())
    api = API()

    @api.websocket_route(f"/paint/{{c:{color}}}")
    async def paint(ws: WebSocket, c: tuple[int, int, int]) -> None:
        async with ws:
            await ws.send_json({"rgb": list(c), "same": ws.path_params["c"] == c})

    async with connect(api, "/paint/00ff7f") as client:
        assert await client.receive_json() == {"rgb": [0, 255, 127], "same": True}


async def test_websocket_under_a_mount_prefix_reaches_the_mounted_app() -> None:
    # The mounted app is itself an API; its routes see the path below the prefix.
    inner = reporting_api("/users/{id:int}")
    api = API()
    api.mount("/v1", inner, websocket=True)
    async with connect(api, "/v1/users/9") as client:
        assert (await client.receive_json())["kwargs"] == {"id": ["int", "9"]}
    with pytest.raises(HandshakeRejected) as info:
        async with connect(api, "/v1x/users/9"):
            pass
    assert info.value.status_code == 404
