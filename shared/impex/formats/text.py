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
        except UnicodeDecodeError as error:
            raise FileProblem(
                f"the file is not valid {self._encoding} near byte {self.offset + error.start}; "
                "set options.encoding (e.g. cp1252 or latin-1)"
            ) from None
        if self._terminator == b"\r":
            text = text[:-1] + "\n" if text.endswith("\r") else text
        return text

    def _text_lines(self) -> Iterator[str]:
        # UTF-16 and other multi-byte encodings: decode as a stream; resume by counting records.
        reader = codecs.getreader(self._encoding)(self._stream, "strict")
        try:
            yield from io.TextIOWrapper(
                io.BufferedReader(_ReadableAdapter(reader)), encoding="utf-8", newline=""
            )
        except UnicodeDecodeError:
            raise FileProblem(f"the file is not valid {self._encoding}; set options.encoding") from None


class _ReadableAdapter(io.RawIOBase):
    """Re-encode a decoded text stream as UTF-8 bytes for TextIOWrapper's line splitting."""

    def __init__(self, reader: codecs.StreamReader) -> None:
        self._reader = reader
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            text = self._reader.read(CHUNK)
            if not text:
                return 0
            self._buffer = text.encode("utf-8")
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


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
