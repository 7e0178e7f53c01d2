"""Content-Security-Policy directives: Helmet's validation rules, CSP3's grammar for unknown
names, nonce slots, and the extend helper."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.csp import NONCE, compile_policy, extend_directives


def serialised(directives: Any, **options: Any) -> bytes:
    parts = compile_policy(directives, argument="content_security_policy", **options)
    return b"<nonce>".join(parts)


@pytest.mark.parametrize(
    ("directives", "expected"),
    [
        pytest.param({"default-src": "'self'"}, b"default-src 'self'", id="one string source"),
        pytest.param(
            {"img-src": ["'self'", "data:"], "object-src": ("'none'",)},
            b"img-src 'self' data:;object-src 'none'",
            id="lists and tuples, in the order given",
        ),
        pytest.param(
            {"img-src": "'self'  data:"}, b"img-src 'self' data:", id="space-separated string"
        ),
        pytest.param(
            {"default-src": "'self'", "upgrade-insecure-requests": True},
            b"default-src 'self';upgrade-insecure-requests",
            id="True is a directive without a value",
        ),
        pytest.param(
            {"default-src": "'self'", "sandbox": []},
            b"default-src 'self';sandbox",
            id="an empty list too",
        ),
        pytest.param(
            {"default-src": "'self'", "upgrade-insecure-requests": None},
            b"default-src 'self'",
            id="None drops a directive",
        ),
        pytest.param(
            {"default-src": "'self'", "img-src": False},
            b"default-src 'self'",
            id="False drops a directive",
        ),
        pytest.param({"Default-SRC": "'self'"}, b"default-src 'self'", id="names are lower-cased"),
        pytest.param(
            {"fenced-frame-src": "'none'"},
            b"fenced-frame-src 'none'",
            id="unknown names pass through, as the CSP3 grammar allows",
        ),
        pytest.param(
            {"script-src": ["'self'", NONCE]},
            b"script-src 'self' 'nonce-<nonce>'",
            id="NONCE becomes a nonce source",
        ),
    ],
)
def test_policies_serialise_like_helmet(directives: Any, expected: bytes) -> None:
    assert serialised(directives) == expected


def test_nonce_goes_only_where_it_was_asked_for() -> None:
    parts = compile_policy(
        {"default-src": "'self'", "script-src": NONCE, "style-src": ["'self'", NONCE]},
        argument="content_security_policy",
    )
    assert len(parts) == 3
    assert (
        b"n1".join(parts) == b"default-src 'self';script-src 'nonce-n1';style-src 'self' 'nonce-n1'"
    )


def test_a_policy_without_nonce_is_one_prebuilt_value() -> None:
    assert compile_policy({"default-src": "'self'"}, argument="csp") == (b"default-src 'self'",)


@pytest.mark.parametrize(
    ("directives", "message"),
    [
        pytest.param({"default-src": "self"}, "unquoted keyword 'self'", id="unquoted self"),
        pytest.param({"default-src": "none"}, "unquoted keyword 'none'", id="unquoted none"),
        pytest.param(
            {"script-src": "unsafe-inline"}, "unquoted keyword", id="unquoted unsafe-inline"
        ),
        pytest.param(
            {"script-src": "nonce-abc"}, "unquoted keyword 'nonce-abc'", id="unquoted nonce"
        ),
        pytest.param({"script-src": "sha256-abc="}, "unquoted keyword", id="unquoted hash"),
        pytest.param(
            {"default-src": "'self';script-src *"}, "invalid source", id="semicolon in a value"
        ),
        pytest.param({"default-src": "'self',evil"}, "invalid source", id="comma in a value"),
        pytest.param({"default-src": ["a b"]}, "invalid source", id="space inside a list item"),
        pytest.param({"default-src": ["a\r\nX: y"]}, "invalid source", id="CR LF in a value"),
        pytest.param({"default-src": ["héllo.example"]}, "invalid source", id="non-ASCII value"),
        pytest.param({"default src": "'self'"}, "invalid directive name", id="space in name"),
        pytest.param({"": "'self'"}, "invalid directive name", id="empty name"),
        pytest.param(
            {"script-src": "'self'", "Script-Src": "'none'"}, "twice", id="duplicate name"
        ),
        pytest.param({"img-src": None}, "no directives", id="empty policy"),
    ],
)
def test_misconfiguration_names_the_directive_and_value(directives: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_policy(directives, argument="content_security_policy")


@pytest.mark.parametrize(
    "directives",
    [
        pytest.param("default-src 'self'", id="a string policy"),
        pytest.param({"default-src": b"'self'"}, id="bytes sources"),
        pytest.param({"default-src": [1]}, id="a number as source"),
        pytest.param({1: "'self'"}, id="a number as name"),
    ],
)
def test_wrong_types_raise_type_or_value_error(directives: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="content_security_policy"):
        compile_policy(directives, argument="content_security_policy")


def test_strict_directives_refuses_unknown_names() -> None:
    assert serialised({"worker-src": "'self'"}, strict=True) == b"worker-src 'self'"
    with pytest.raises(ValueError, match="unknown directive 'scritp-src'"):
        compile_policy({"scritp-src": "'self'"}, argument="csp", strict=True)


@pytest.mark.parametrize(
    "name", ["block-all-mixed-content", "plugin-types", "prefetch-src", "referrer"]
)
def test_deprecated_directives_warn_at_the_callers_line(name: str) -> None:
    with pytest.warns(UserWarning, match=name) as records:
        compile_policy({"default-src": "'self'", name: True}, argument="csp")
    assert records[0].filename == __file__


@given(st.dictionaries(st.text(max_size=12), st.lists(st.text(max_size=20), max_size=4)))
def test_arbitrary_directives_are_refused_cleanly_or_serialised(directives: Any) -> None:
    try:
        parts = compile_policy(directives, argument="csp")
    except ValueError:
        return
    value = b"".join(parts)
    assert b"\r" not in value
    assert b"\n" not in value
    assert b"," not in value
    assert value.isascii()


def test_extend_directives_appends_sources_once() -> None:
    base = {
        "default-src": "'self'",
        "img-src": ("'self'", "data:"),
        "upgrade-insecure-requests": True,
    }
    extended = extend_directives(
        base,
        {
            "IMG-SRC": ["https://cdn.example", "data:"],
            "script-src": "https://cdn.example",
            "upgrade-insecure-requests": None,
            "default-src": "https://cdn.example 'self'",
        },
    )
    assert extended == {
        "default-src": ["'self'", "https://cdn.example"],
        "img-src": ["'self'", "data:", "https://cdn.example"],
        "script-src": "https://cdn.example",
    }
    assert base["img-src"] == ("'self'", "data:")  # the base is not edited


def test_extend_directives_replaces_valueless_directives() -> None:
    assert extend_directives({"sandbox": True}, {"sandbox": "allow-forms"}) == {
        "sandbox": "allow-forms"
    }
