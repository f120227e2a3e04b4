"""Read-only views of the handshake request: Headers, QueryParams, Address, and cookies."""

from __future__ import annotations

from typing import Any

import pytest

from wsendpoints.datastructures import Address, Headers, QueryParams, parse_cookies

RAW_HEADERS = [
    (b"Host", b"example.com"),
    (b"X-Tag", b"first"),
    (b"x-tag", b"second"),
    (b"X-TAG", b"third"),
    (b"Accept-Language", b"caf\xe9"),
]


@pytest.fixture
def headers() -> Headers:
    return Headers.from_raw(RAW_HEADERS)


# -- Headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["host", "Host", "HOST", "hOsT"])
def test_header_lookup_ignores_case(headers: Headers, key: str) -> None:
    assert headers[key] == "example.com"
    assert headers.get(key) == "example.com"
    assert key in headers


@pytest.mark.parametrize("key", ["x-tag", "X-Tag", "X-TAG"])
def test_repeated_header_keeps_every_value_in_order(headers: Headers, key: str) -> None:
    assert headers.getlist(key) == ["first", "second", "third"]


def test_repeated_header_lookup_gives_the_last_value(headers: Headers) -> None:
    assert headers["x-tag"] == "third"


def test_headers_count_and_iterate_distinct_lower_case_names(headers: Headers) -> None:
    assert list(headers) == ["host", "x-tag", "accept-language"]
    assert len(headers) == 3


def test_multi_items_keeps_every_pair_in_order(headers: Headers) -> None:
    assert headers.multi_items() == [
        ("host", "example.com"),
        ("x-tag", "first"),
        ("x-tag", "second"),
        ("x-tag", "third"),
        ("accept-language", "café"),
    ]


def test_header_bytes_are_read_as_latin_1(headers: Headers) -> None:
    assert headers["accept-language"] == "café"


def test_missing_header(headers: Headers) -> None:
    assert "x-missing" not in headers
    assert headers.get("x-missing") is None
    assert headers.get("x-missing", "default") == "default"
    assert headers.getlist("x-missing") == []
    with pytest.raises(KeyError):
        headers["x-missing"]


@pytest.mark.parametrize("raw", [None, []])
def test_headers_from_no_raw_headers_are_empty(raw: Any) -> None:
    headers = Headers.from_raw(raw)
    assert len(headers) == 0
    assert dict(headers) == {}


def test_headers_are_read_only(headers: Headers) -> None:
    with pytest.raises(TypeError):
        headers["host"] = "elsewhere"  # type: ignore[index]
    with pytest.raises(AttributeError):
        headers.update({"host": "elsewhere"})  # type: ignore[attr-defined]


def test_headers_built_from_str_pairs_ignore_case_too() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("X-Tag", "a"), ("x-tag", "b")])
    assert headers["content-type"] == "text/plain"
    assert "CONTENT-TYPE" in headers
    assert headers.getlist("x-tag") == ["a", "b"]


def test_headers_compare_equal_to_a_dict_of_last_values(headers: Headers) -> None:
    assert headers == {"host": "example.com", "x-tag": "third", "accept-language": "café"}


# -- QueryParams ------------------------------------------------------------------------------


def test_query_params_getlist_keeps_repeated_values_in_order() -> None:
    params = QueryParams.from_query_string(b"tag=a&x=1&tag=b&tag=c")
    assert params.getlist("tag") == ["a", "b", "c"]
    assert params["tag"] == "c"
    assert params["x"] == "1"
    assert params.multi_items() == [("tag", "a"), ("x", "1"), ("tag", "b"), ("tag", "c")]


@pytest.mark.parametrize(
    ("query", "key"), [(b"flag", "flag"), (b"empty=", "empty"), (b"a=1&flag&b=2", "flag")]
)
def test_query_params_keep_blank_values(query: bytes, key: str) -> None:
    params = QueryParams.from_query_string(query)
    assert key in params
    assert params[key] == ""


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"name=caf%C3%A9", "café"),
        (b"name=a+b", "a b"),
        (b"name=a%20b", "a b"),
        (b"name=a%26b", "a&b"),
        (b"name=a%3Db", "a=b"),
    ],
)
def test_query_params_are_percent_decoded(query: bytes, expected: str) -> None:
    assert QueryParams.from_query_string(query)["name"] == expected


def test_query_param_keys_are_case_sensitive() -> None:
    params = QueryParams.from_query_string(b"Key=upper&key=lower")
    assert params["Key"] == "upper"
    assert params["key"] == "lower"
    assert "KEY" not in params


def test_empty_query_string_has_no_params() -> None:
    params = QueryParams.from_query_string(b"")
    assert len(params) == 0
    assert params.getlist("anything") == []
    assert params.get("anything") is None


def test_query_params_are_read_only() -> None:
    params = QueryParams.from_query_string(b"a=1")
    with pytest.raises(TypeError):
        params["a"] = "2"  # type: ignore[index]


# -- Address ----------------------------------------------------------------------------------


def test_address_has_host_and_port() -> None:
    address = Address("127.0.0.1", 54321)
    assert (address.host, address.port) == ("127.0.0.1", 54321)


def test_address_unpacks_and_compares_like_the_scope_tuple() -> None:
    host, port = Address("::1", 8000)
    assert (host, port) == ("::1", 8000)
    assert Address("::1", 8000) == ("::1", 8000)
    values: list[Any] = ["10.0.0.1", 1]
    assert Address(*values) == Address(host="10.0.0.1", port=1)


def test_address_is_immutable() -> None:
    address = Address("127.0.0.1", 1)
    with pytest.raises(AttributeError):
        address.port = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        ([], {}),
        (["session=abc123"], {"session": "abc123"}),
        (["a=1; b=2;c=3"], {"a": "1", "b": "2", "c": "3"}),
        # Quotes around a value are the cookie's syntax, not its value; inner ones stay.
        (['token="x y"; odd="a"b"'], {"token": "x y", "odd": 'a"b'}),
        # A value may hold "=" (base64 padding) and be empty.
        (["sig=AAA==; empty="], {"sig": "AAA==", "empty": ""}),
        # What is not a pair is skipped, and the rest still read.
        (["junk; =nameless; ok=1; ;"], {"ok": "1"}),
        # Several Cookie headers (HTTP/2 splits them); a repeated name keeps its first value.
        (["a=1; path=/rooms", "a=2; b=3"], {"a": "1", "path": "/rooms", "b": "3"}),
        # Not percent-decoded: cookies carry what the server set, as it set it.
        (["name=caf%C3%A9"], {"name": "caf%C3%A9"}),
        # Browsers send characters as UTF-8, which servers hand over as latin-1 text.
        (["name=café".encode().decode("latin-1")], {"name": "café"}),
        # Bytes that are not UTF-8 stay as they came, and so does text beyond latin-1.
        (["a=caf\xe9", "b=☕"], {"a": "caf\xe9", "b": "☕"}),
        # Each cookie on its own: one that is not UTF-8 leaves the others of its header alone.
        (["a=" + "café".encode().decode("latin-1") + "; b=caf\xe9"], {"a": "café", "b": "caf\xe9"}),
    ],
)
def test_parse_cookies(headers: list[str], cookies: dict[str, str]) -> None:
    assert parse_cookies(headers) == cookies
