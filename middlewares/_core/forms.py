"""Find one field of a form body as it streams in: WHATWG URL §5 urlencoded forms and RFC 7578
``multipart/form-data`` (RFC 2046 §5.1.1 boundaries), with bounded buffering.

A scanner is fed the body in the chunks it arrives in and answers the field's value as soon as
it has been read whole; it never keeps more than one field name and value (capped) plus a
boundary's length of look-behind, whatever the size of the parts it skips, and it never raises
on malformed input: what it cannot read is simply not the field.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import unquote_to_bytes

# RFC 7578 §4.8 lets part headers be anything; browsers send two or three short lines.
_MAX_PART_HEADERS = 8192
# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
_MAX_BOUNDARY = 70


class FieldScanner(Protocol):
    """A streaming search for one form field."""

    def feed(self, data: bytes, *, final: bool = False) -> bytes | None:
        """Consume the next chunk of the body (``final`` on the last one); return the field's
        value once it has been read whole, else None."""
        ...


def field_scanner(content_type: bytes, field: bytes, *, max_value: int) -> FieldScanner | None:
    """Return a scanner for ``field`` in a body of ``content_type``, or None when the body is
    not a form (or a multipart form without a usable boundary).

    Args:
        content_type: The request's ``Content-Type`` value.
        field: The field name, as the form's ``name`` attribute spells it.
        max_value: The longest value worth returning; a longer one is skipped, unread.
    """
    media, _, params = content_type.partition(b";")
    media = media.strip(b" \t").lower()
    if media == b"application/x-www-form-urlencoded":
        return _UrlencodedScanner(field, max_value)
    if media != b"multipart/form-data":
        return None
    boundary = _parameter(params, b"boundary")
    if not boundary or len(boundary) > _MAX_BOUNDARY:
        return None
    return _MultipartScanner(boundary, field, max_value)


def _parameter(params: bytes, name: bytes) -> bytes | None:
    """The value of parameter ``name`` in ``; a=b; c="d"`` (RFC 9110 §5.6.6), unquoted."""
    for param in params.split(b";"):
        key, sep, value = param.partition(b"=")
        if sep and key.strip(b" \t").lower() == name:
            value = value.strip(b" \t")
            if len(value) >= 2 and value[:1] == value[-1:] == b'"':
                value = value[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
            return value
    return None


def _form_decode(raw: bytes) -> bytes:
    # WHATWG URL §5.1 application/x-www-form-urlencoded parser: "+" is a space, then
    # percent-decoding; malformed escapes stay as they are.
    return unquote_to_bytes(raw.replace(b"+", b" "))


class _UrlencodedScanner:
    """``name=value&name=value``: keeps only the pair being read, and not even that once it
    is longer than the field could be."""

    __slots__ = ("_field", "_found", "_limit", "_pending", "_skipping")

    def __init__(self, field: bytes, max_value: int) -> None:
        self._field = field
        # Everything percent-encoded triples in length.
        self._limit = 3 * (len(field) + 1 + max_value)
        self._pending = b""
        self._skipping = False
        self._found: bytes | None = None

    def feed(self, data: bytes, *, final: bool = False) -> bytes | None:
        if self._found is not None:
            return self._found
        start = 0
        while True:
            end = data.find(b"&", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._skipping:
                if len(self._pending) + len(piece) > self._limit:
                    self._pending = b""
                    self._skipping = True
                else:
                    self._pending += piece
            if end < 0:
                break
            if self._match():
                return self._found
            start = end + 1
        if final and self._match():
            return self._found
        return None

    def _match(self) -> bool:
        """Close the pair read so far; return whether it was the field."""
        pair, skipping = self._pending, self._skipping
        self._pending = b""
        self._skipping = False
        if skipping:
            return False
        name, _, value = pair.partition(b"=")
        if _form_decode(name) != self._field:
            return False
        self._found = _form_decode(value)
        return True


class _MultipartScanner:
    """Parts between ``--boundary`` lines: reads each part's headers, skips every part but the
    field's, keeping only a delimiter's length of the skipped bytes."""

    __slots__ = ("_buffer", "_delimiter", "_field", "_found", "_max_value", "_state")

    def __init__(self, boundary: bytes, field: bytes, max_value: int) -> None:
        # RFC 2046 §5.1.1: the delimiter is CRLF "--" boundary; the first one may open the
        # body without its CRLF, so the scan starts as if a CRLF came first.
        self._delimiter = b"\r\n--" + boundary
        self._field = field
        self._max_value = max_value
        self._buffer = b"\r\n"
        self._state = "preamble"  # preamble, padding, headers, skip, value, done
        self._found: bytes | None = None

    def feed(self, data: bytes, *, final: bool = False) -> bytes | None:
        if self._found is not None or self._state == "done":
            return self._found
        self._buffer += data
        while self._step():
            pass
        if final:
            self._state = "done"
            self._buffer = b""
        return self._found

    def _step(self) -> bool:
        """Advance through the buffer as far as one state allows; return whether to go on.

        Every limit is judged on positions in the body, never on how it was chunked, so the
        answer is the same whatever the chunking.
        """
        state, buffer = self._state, self._buffer
        if state in ("preamble", "skip", "value"):
            index = buffer.find(self._delimiter)
            keep = len(self._delimiter) - 1
            if state == "value" and (
                index > self._max_value or (index < 0 and len(buffer) - keep > self._max_value)
            ):
                state = self._state = "skip"  # too long to be a token: not worth keeping
            if index < 0:
                if state != "value" and len(buffer) > keep:
                    self._buffer = buffer[-keep:]
                return False
            if state == "value":
                self._found = buffer[:index]
                self._state = "done"
                self._buffer = b""
                return False
            self._buffer = buffer[index + len(self._delimiter) :]
            self._state = "padding"
            return True
        if state == "padding":
            # After a delimiter: "--" closes the body; otherwise optional whitespace, CRLF.
            if buffer[:2] == b"--":
                self._state = "done"
                self._buffer = b""
                return False
            end = buffer.find(b"\r\n")
            if end > _MAX_PART_HEADERS or (end < 0 and len(buffer) > _MAX_PART_HEADERS + 1):
                self._state = "preamble"  # not a delimiter line: look for the next one
                return True
            if end < 0:
                return False
            self._buffer = buffer[end + 2 :]
            self._state = "headers" if not buffer[:end].strip(b" \t") else "preamble"
            return True
        # state == "headers" ("done" never steps)
        if buffer.startswith(b"\r\n"):
            self._buffer = buffer[2:]  # a part without headers: not the field
            self._state = "skip"
            return True
        end = buffer.find(b"\r\n\r\n")
        if end > _MAX_PART_HEADERS or (end < 0 and len(buffer) > _MAX_PART_HEADERS + 3):
            self._state = "skip"
            return True
        if end < 0:
            return False
        self._buffer = buffer[end + 4 :]
        self._state = "value" if self._is_field(buffer[:end]) else "skip"
        return True

    def _is_field(self, headers: bytes) -> bool:
        """Whether part headers name the field as a plain (non-file) value (RFC 7578 §4.2)."""
        for line in headers.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep and name.strip(b" \t").lower() == b"content-disposition":
                kind, _, params = value.partition(b";")
                return (
                    kind.strip(b" \t").lower() == b"form-data"
                    and _parameter(params, b"name") == self._field
                    and _parameter(params, b"filename") is None
                )
        return False
