"""Collect the records a logger emits during a block, after the handlers it already has."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def collected(logger: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    """Yield the list of records ``logger`` handles inside the block. The collector is added
    last, so filters on the logger's own handlers (which may set attributes) ran first."""
    collect = _Collect()
    logger.addHandler(collect)
    try:
        yield collect.records
    finally:
        logger.removeHandler(collect)
