"""SecurityHeadersMiddleware's construction-time checks: every misconfiguration is a
ValueError or TypeError naming the argument and value (T57), deprecated directives and features
warn (T56), and HSTS preload follows the preload list's rules (T41)."""

from __future__ import annotations

from typing import Any

import pytest

from middlewares._types import Receive, Scope, Send
from middlewares.security_headers import DEFAULT_CSP, SecurityHeadersMiddleware


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"strict_transport_security_preload": True, "strict_transport_security_max_age": 600},
            "one year",
            id="preload with a short max age",
        ),
        pytest.param(
            {
                "strict_transport_security_preload": True,
                "strict_transport_security_include_subdomains": False,
            },
            "include_subdomains=True",
            id="preload without includeSubDomains",
        ),
        pytest.param({"strict_transport_security_max_age": -1}, "max_age", id="negative max age"),
        pytest.param(
            {"strict_transport_security_max_age": "1y"}, "max_age", id="max age as a string"
        ),
    ],
)
def test_hsts_misconfiguration_raises(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SecurityHeadersMiddleware(app, **options)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"/x": {"frame_option": "DENY"}}, TypeError, id="unknown argument name"),
        pytest.param({"/x": "DENY"}, TypeError, id="not a mapping"),
        pytest.param({"/x": {"frame_options": "ALLOW-FROM x"}}, ValueError, id="bad value"),
        pytest.param({"x": False}, ValueError, id="pattern without a slash"),
    ],
)
def test_override_misconfiguration_raises(overrides: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        SecurityHeadersMiddleware(app, overrides=overrides)


def test_T56_deprecated_features_and_directives_warn_at_the_callers_line() -> None:
    with pytest.warns(UserWarning, match="interest-cohort") as feature:
        SecurityHeadersMiddleware(app, permissions_policy={"interest-cohort": []})
    with pytest.warns(UserWarning, match="block-all-mixed-content") as directive:
        SecurityHeadersMiddleware(
            app, content_security_policy={**DEFAULT_CSP, "block-all-mixed-content": True}
        )
    overrides = {"/old": {"content_security_policy": {"default-src": "'self'", "referrer": True}}}
    with pytest.warns(UserWarning, match="'referrer'") as override:
        SecurityHeadersMiddleware(app, overrides=overrides)
    for record in (*feature, *directive, *override):
        assert record.filename == __file__


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"content_security_policy": {"default-src": "self"}},
            r"content_security_policy\['default-src'\] has the unquoted keyword 'self'",
            id="unquoted self",
        ),
        pytest.param(
            {"content_security_policy_report_only": {"script-src": ["nonce-abc"]}},
            "content_security_policy_report_only",
            id="unquoted nonce in report-only",
        ),
        pytest.param(
            {"content_security_policy": {"default-src": "'self'; script-src *"}},
            "invalid source",
            id="semicolon smuggling a directive",
        ),
        pytest.param(
            {"content_security_policy": {"scritp-src": "'none'"}, "strict_directives": True},
            "unknown directive 'scritp-src'",
            id="unknown directive with strict_directives",
        ),
        pytest.param({"frame_options": "ALLOW-FROM https://a"}, "frame_options", id="xfo"),
        pytest.param({"referrer_policy": "never"}, "referrer_policy", id="referrer"),
        pytest.param({"referrer_policy": []}, "referrer_policy", id="empty referrer list"),
        pytest.param({"frame_options": ["DENY"]}, "frame_options", id="list for one value"),
        pytest.param({"cross_origin_embedder_policy": "require"}, "embedder", id="coep"),
        pytest.param({"report_uri": "https://r.example/a b"}, "report_uri", id="report uri"),
        pytest.param({"report_to": {"CSP": "https://r.example"}}, "group names", id="group"),
        pytest.param({"report_to": {"csp": 'https://r"x'}}, "report_to URLs", id="group url"),
        pytest.param({"permissions_policy": {"Camera": []}}, "feature name", id="feature"),
        pytest.param(
            {"permissions_policy": {"camera": ["none"]}}, "members must be", id="allowlist"
        ),
        pytest.param({"mode": "append"}, "mode", id="mode"),
    ],
)
def test_T57_misconfiguration_raises_naming_the_value(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SecurityHeadersMiddleware(app, **options)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"content_security_policy": "default-src 'self'"}, id="policy as a string"),
        pytest.param({"remove_headers": "X-Powered-By"}, id="remove_headers as a string"),
        pytest.param({"report_to": "https://r.example"}, id="report_to as a string"),
        pytest.param({"permissions_policy": "camera=()"}, id="permissions as a string"),
    ],
)
def test_wrong_types_raise_type_error(options: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        SecurityHeadersMiddleware(app, **options)
