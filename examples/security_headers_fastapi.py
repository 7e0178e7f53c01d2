"""A FastAPI JSON API under Mozilla Observatory's API policy, with Swagger UI and ReDoc still
working at /docs and /redoc thanks to a per-path override.

Run it with ``uvicorn examples.security_headers_fastapi:app --no-server-header``, then open
http://127.0.0.1:8000/docs.
"""

from __future__ import annotations

from fastapi import FastAPI

from middlewares import SecurityHeadersMiddleware
from middlewares.security_headers import JSON_API_PRESET, fastapi_docs_overrides

app = FastAPI(title="Shop API")


@app.get("/")
async def home() -> dict[str, str]:
    return {"docs": "/docs"}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


app.add_middleware(
    SecurityHeadersMiddleware,
    **JSON_API_PRESET,  # default-src 'none'; frame-ancestors 'none'; X-Frame-Options: DENY
    # /docs, /docs/oauth2-redirect and /redoc load jsDelivr's assets and run inline scripts.
    overrides=fastapi_docs_overrides(),
)
