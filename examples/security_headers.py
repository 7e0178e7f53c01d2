"""A server-rendered Starlette site under a strict Content-Security-Policy: inline scripts run
only when the template writes the response's nonce.

Run it with ``uvicorn examples.security_headers:app``, open http://127.0.0.1:8000 and look at
the response headers; the browser console shows the un-nonced script being blocked.
"""

from __future__ import annotations

import logging

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from middlewares import NONCE, SecurityHeadersMiddleware, get_csp_nonce
from middlewares.security_headers import DEFAULT_CSP

PAGE = """<!doctype html>
<title>Shop</title>
<p id="status">scripts did not run</p>
<script nonce="{{ csp_nonce() }}">
  document.getElementById("status").textContent = "the nonced script ran";
</script>
<script>document.title = "an injected script ran";  /* no nonce: blocked */</script>
"""

templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.DictLoader({"page.html": PAGE})))
# Any template can ask for the nonce; request.state.csp_nonce holds the same value.
templates.env.globals["csp_nonce"] = get_csp_nonce


async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "page.html")


async def csp_reports(request: Request) -> Response:
    # Browsers POST what the policy blocked here (application/csp-report).
    logging.getLogger("csp").warning("CSP violation: %s", (await request.body())[:2000])
    return Response(status_code=204)


app = Starlette(
    routes=[Route("/", home), Route("/csp-reports", csp_reports, methods=["POST"])],
    middleware=[
        Middleware(
            SecurityHeadersMiddleware,
            content_security_policy={
                **DEFAULT_CSP,
                "script-src": ["'self'", NONCE],
                # Safari also upgrades http://localhost; keep it for production only.
                "upgrade-insecure-requests": None,
            },
            report_uri="/csp-reports",
        )
    ],
)
