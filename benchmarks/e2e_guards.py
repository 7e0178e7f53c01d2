"""The guards served by uvicorn for ``benchmarks/e2e.py``, beside their peers:

    python benchmarks/e2e.py bare pass_through benchmarks.e2e_guards:body_limit \\
        benchmarks.e2e_guards:starlette_body_limit benchmarks.e2e_guards:timeout \\
        benchmarks.e2e_guards:fastapi_recipe
"""

from __future__ import annotations

from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from middlewares.body_limit import BodyLimitMiddleware
from middlewares.timeout import TimeoutMiddleware

from .bench_guards import fastapi_recipe as _recipe
from .e2e_apps import bare

body_limit = BodyLimitMiddleware(bare, max_body_size=1024 * 1024)
starlette_body_limit = RequestBodyLimitMiddleware(bare, max_body_size=1024 * 1024)
timeout = TimeoutMiddleware(bare, timeout=30)
fastapi_recipe = _recipe(bare)
