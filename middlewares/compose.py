"""Stack middleware onto a bare ASGI app in the order ``Starlette(middleware=[...])`` uses."""

from __future__ import annotations

import inspect
from typing import Any

from ._types import ASGIApp


class Layer:
    """One middleware class with its arguments, to be applied by ``compose``.

    The arguments are checked against the class's signature here, so a misspelt or missing
    keyword fails where the stack is written; `compose` then builds every layer at once, so
    a bad value fails before the server takes a request.

    Args:
        cls: The middleware class (any callable taking the inner app first).
        *args: Positional arguments after the app.
        **kwargs: Keyword arguments.
    """

    __slots__ = ("args", "cls", "kwargs")

    def __init__(self, cls: Any, *args: Any, **kwargs: Any) -> None:
        if not callable(cls):
            raise TypeError(f"Layer needs a middleware class or factory, got {cls!r}")
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):  # builtins such as dict have none to check against
            signature = None
        if signature is not None:
            try:
                signature.bind(None, *args, **kwargs)
            except TypeError as error:
                name = getattr(cls, "__name__", repr(cls))
                raise TypeError(f"Layer({name}, ...): {error}") from None
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        params = [*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())]
        return (
            f"Layer({getattr(self.cls, '__name__', self.cls)}{''.join(', ' + p for p in params)})"
        )


def compose(app: ASGIApp, *layers: Layer) -> ASGIApp:
    """Wrap ``app`` in ``layers``; the first layer is the outermost.

    A request passes through the layers top to bottom and the response bottom to top, exactly as
    with ``Starlette(middleware=[Middleware(A), Middleware(B)])``: ``compose(app, Layer(A),
    Layer(B))`` builds ``A(B(app))``. (Starlette's ``app.add_middleware`` prepends, so the last
    class added there is the outermost.) Every layer is built here, at once: a bad argument
    raises now, not on the first request, whatever the server's lifespan mode.
    """
    for layer in reversed(layers):
        app = layer.cls(app, *layer.args, **layer.kwargs)
    return app
