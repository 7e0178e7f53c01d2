"""Headless Chromium enforcing SecurityHeadersMiddleware's policies: nonce'd inline scripts run
and others are blocked, report-only violations reach a reporting endpoint, and FastAPI's
``/docs`` works only with the documented override."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from middlewares.security_headers import (
    HTML_PRESET,
    SecurityHeadersMiddleware,
    fastapi_docs_overrides,
)

LiveServer = Callable[..., AbstractContextManager[str]]

# Runs before any page script (injected by the browser, outside the page's CSP).
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.violations.push(`${event.effectiveDirective} ${event.blockedURI} ${event.disposition}`);
});
"""


def violations(page: Any) -> list[str]:
    return list(page.evaluate("window.violations"))


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the browser did not get there in time")
        time.sleep(0.05)


def test_nonced_inline_script_runs_and_others_are_blocked(
    page: Any, live_server: LiveServer
) -> None:
    async def home(request: Request) -> Response:
        nonce = request.state.csp_nonce
        return Response(
            "<!doctype html><body>"
            f'<script nonce="{nonce}">document.body.dataset.nonced = "ran";</script>'
            '<script>document.body.dataset.plain = "ran";</script>'
            '<script nonce="guessed">document.body.dataset.guessed = "ran";</script>'
            "</body>",
            media_type="text/html",
        )

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/", home)]), **HTML_PRESET)
    page.add_init_script(RECORD_VIOLATIONS)
    with live_server(app) as url:
        page.goto(url)
        ran = page.evaluate("({...document.body.dataset})")
        wait_for(lambda: len(violations(page)) == 2)
    assert ran == {"nonced": "ran"}
    assert violations(page) == ["script-src-elem inline enforce"] * 2


def test_T54_report_only_violation_reaches_the_reporting_endpoint(
    page: Any, live_server: LiveServer
) -> None:
    reports: list[tuple[str, dict[str, Any]]] = []

    async def home(request: Request) -> Response:
        return Response(
            '<!doctype html><body><script>document.body.dataset.inline = "ran";</script></body>',
            media_type="text/html",
        )

    async def collect(request: Request) -> PlainTextResponse:
        reports.append((request.headers["content-type"], json.loads(await request.body())))
        return PlainTextResponse("", status_code=204)

    routes = [Route("/", home), Route("/csp-reports", collect, methods=["POST"])]
    app = SecurityHeadersMiddleware(
        Starlette(routes=routes),
        content_security_policy=None,
        content_security_policy_report_only={"default-src": "'self'", "script-src": "'self'"},
        report_uri="/csp-reports",
    )
    with live_server(app) as url:
        page.goto(url)
        # Report-only: the script still runs, and the browser reports what it would block.
        assert page.evaluate("document.body.dataset.inline") == "ran"
        wait_for(lambda: bool(reports))
    content_type, report = reports[0]
    assert content_type == "application/csp-report"
    assert report["csp-report"]["effective-directive"] == "script-src-elem"
    assert report["csp-report"]["disposition"] == "report"
    assert report["csp-report"]["document-uri"] == f"{url}/"


def fastapi_app() -> FastAPI:
    api = FastAPI(title="Shop API", docs_url=None)

    @api.get("/items")
    def items() -> list[str]:
        return []

    return api


def stub_cdn() -> Starlette:
    """Stands in for jsDelivr: a Swagger UI bundle that renders the spec's title."""
    bundle = """
    window.SwaggerUIBundle = function (config) {
        fetch(config.url).then((r) => r.json()).then((spec) => {
            document.querySelector(config.dom_id).textContent = "rendered " + spec.info.title;
        });
    };
    SwaggerUIBundle.presets = {apis: {}};
    SwaggerUIBundle.SwaggerUIStandalonePreset = {};
    """

    async def js(request: Request) -> Response:
        return Response(bundle, media_type="text/javascript")

    async def css(request: Request) -> Response:
        return Response("#swagger-ui { color: black; }", media_type="text/css")

    return Starlette(routes=[Route("/swagger-ui-bundle.js", js), Route("/swagger-ui.css", css)])


def docs_page(api: FastAPI, cdn: str) -> None:
    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Shop API",
            swagger_js_url=f"{cdn}/swagger-ui-bundle.js",
            swagger_css_url=f"{cdn}/swagger-ui.css",
        )


def test_T44_fastapi_docs_is_blocked_by_the_strict_policy_and_works_with_the_override(
    page: Any, live_server: LiveServer
) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    with live_server(stub_cdn()) as cdn:
        api = fastapi_app()
        docs_page(api, cdn)
        strict = SecurityHeadersMiddleware(api, **HTML_PRESET)
        with live_server(strict) as url:
            page.goto(f"{url}/docs")
            wait_for(lambda: any("inline" in v for v in violations(page)))
            blocked = violations(page)
            assert f"script-src-elem {cdn}/swagger-ui-bundle.js enforce" in blocked
            assert "script-src-elem inline enforce" in blocked
            assert page.text_content("#swagger-ui").strip() == ""

        relaxed = SecurityHeadersMiddleware(
            api, **HTML_PRESET, overrides=fastapi_docs_overrides(cdn=cdn)
        )
        with live_server(relaxed) as url:
            page.goto(f"{url}/docs")
            page.wait_for_selector("text=rendered Shop API")
            script_violations = [v for v in violations(page) if v.startswith("script-src")]
            assert script_violations == []


def test_starlette_example_runs_only_its_nonced_script_and_reports_the_other(
    page: Any, live_server: LiveServer, caplog: Any
) -> None:
    from examples.security_headers import app

    with live_server(app) as url:
        page.goto(url)
        assert page.text_content("#status") == "the nonced script ran"
        assert page.title() == "Shop"
        wait_for(lambda: any("CSP violation" in r.getMessage() for r in caplog.records))
