"""Text files as lines (with the byte offset after each, for resuming), and text output to a sink."""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterator
from typing import IO, Any, Protocol

from impex.formats.errors import FileProblem

CHUNK = 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
# The same cap for decoded text: a character takes at most 4 bytes.
MAX_LINE_CHARS = MAX_LINE_BYTES // 4
# Encodings in which a b"\n" / b"\r" byte is always a line break, so byte offsets stay exact.
_BYTE_SAFE = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso8859-1", "ascii", "iso8859-15", "cp1250"}


class Sink(Protocol):
    """Where a writer's bytes go (a multipart upload, a file)."""

    def write(self, data: bytes) -> Any: ...


class LineSource:
    """Decoded lines of a binary stream, tracking the byte offset after each line."""

    def __init__(self, stream: IO[bytes], encoding: str, *, start_offset: int = 0, terminator: bytes = b"\n"):
        self._stream = stream
        self._encoding = encoding
        self._terminator = terminator
        self.offset = start_offset
        self.byte_exact = codecs.lookup(encoding).name in _BYTE_SAFE or encoding in _BYTE_SAFE
        self._first = start_offset == 0

    def __iter__(self) -> Iterator[str]:
        if not self.byte_exact:
            yield from self._text_lines()
            return
        pending = b""
        while True:
            chunk = self._stream.read(CHUNK)
            if not chunk:
                break
            pieces = (pending + chunk).split(self._terminator)
            pending = pieces.pop()
            if len(pending) > MAX_LINE_BYTES:
                raise FileProblem(f"a line near byte {self.offset} is longer than {MAX_LINE_BYTES} bytes")
            for piece in pieces:
                raw = piece + self._terminator
                text = self._decode(raw)
                self.offset += len(raw)
                yield text
        if pending:
            text = self._decode(pending)
            self.offset += len(pending)
            yield text

    def _decode(self, raw: bytes) -> str:
        encoding = self._encoding
        if not self._first and encoding == "utf-8-sig":
            encoding = "utf-8"
        self._first = False
        try:
            text = raw.decode(encoding)
        except UnicodeError as error:
            near = self.offset + getattr(error, "start", 0)
            raise FileProblem(
                f"the file is not valid {self._encoding} near byte {near}; "
                "set options.encoding (e.g. cp1252 or latin-1)"
            ) from None
        # A CR-only file's lines end in "\r", which the csv module takes as the end of a record; a CR
        # inside a quoted field stays a CR.
        return text

    def _text_lines(self) -> Iterator[str]:
        """UTF-16/32 and codepages whose bytes are not line-safe: decoded as a stream, split on the
        terminator, with the same cap on a line's length; a resume re-reads and counts records."""
        decoder = codecs.getincrementaldecoder(self._encoding)("strict")
        separator = self._terminator.decode("ascii")
        pending = ""
        while True:
            chunk = self._stream.read(CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeError:  # also "UTF-16 stream does not start with BOM"
                raise FileProblem(f"the file is not valid {self._encoding}; set options.encoding") from None
            pieces = (pending + text).split(separator)
            pending = pieces.pop()
            if len(pending) > MAX_LINE_CHARS:
                raise FileProblem(f"a line is longer than {MAX_LINE_CHARS} characters")
            for piece in pieces:
                yield piece + separator
            if not chunk:
                break
        if pending:
            yield pending


def first_lines_terminator(head: bytes) -> bytes:
    """b"\\r" for old Mac files (CR only), otherwise b"\\n" (LF and CRLF)."""
    return b"\r" if b"\r" in head and b"\n" not in head else b"\n"


class TextOut:
    """Text output to a sink, optionally as gzip (each invocation's share is one gzip member)."""

    def __init__(self, sink: Sink, *, compress: bool) -> None:
        self._sink = sink
        self._gzip = gzip.GzipFile(fileobj=_SinkFile(sink), mode="wb", mtime=0) if compress else None

    def write(self, text: str) -> None:
        """Encode as UTF-8 (and compress) into the sink."""
        data = text.encode("utf-8")
        if self._gzip is not None:
            self._gzip.write(data)
        else:
            self._sink.write(data)

    def close(self) -> None:
        """End the gzip member, if any."""
        if self._gzip is not None:
            self._gzip.close()


class _SinkFile(io.RawIOBase):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sink.write(bytes(data))
        return len(data)
