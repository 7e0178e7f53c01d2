"""Apache's combined log format, the line every log shipper (GoAccess, Filebeat's apache
module, AWStats, fail2ban) already parses, written to stdout.

Run it with ``uvicorn examples.access_log_combined:app --no-access-log``; each request prints:

    127.0.0.1 - - [30/Nov/2026:05:36:22 +0000] "GET /?q=1 HTTP/1.1" 200 5 "-" "curl/8.5.0"
"""

from __future__ import annotations

import logging
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import AccessLogMiddleware

combined = logging.getLogger("access.combined")
if not combined.handlers:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    combined.addHandler(handler)
    combined.setLevel(logging.INFO)
    combined.propagate = False


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = AccessLogMiddleware(Starlette(routes=[Route("/", home)]), format="combined", logger=combined)
