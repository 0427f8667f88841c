"""Reading export files as they come: encoding and delimiter sniffed, rows streamed with line numbers.

A file is never loaded whole: rows come one at a time from the csv module over a text stream, each
with the physical line it starts on (so a rejected row is found in an editor even when an earlier
quoted field held newlines).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crmcore.admin import config

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DEFAULT_MAX_MB = 200

csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class FileFormat:
    encoding: str
    delimiter: str
    header: list[str]

    def describe(self) -> str:
        return f"{self.encoding}, {DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}-separated, {len(self.header)} columns"


def max_bytes() -> int:
    """The configured upload limit (CRM_MAX_UPLOAD_MB, default 200 MB), in bytes."""
    raw = config.get("CRM_MAX_UPLOAD_MB", str(DEFAULT_MAX_MB))
    try:
        return int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ValueError(f"CRM_MAX_UPLOAD_MB must be a number of megabytes, not {raw!r}.") from None


def check_size(path: Path, *, name: str | None = None) -> int:
    """The file's size in bytes; ValueError with a clear message when it is over the limit."""
    size = path.stat().st_size
    limit = max_bytes()
    if size > limit:
        raise ValueError(
            f"{name or path.name} is {size / 1024 / 1024:,.1f} MB, over the import limit of {limit / 1024 / 1024:,.0f} MB "
            "(CRM_MAX_UPLOAD_MB). Split the file or raise the limit."
        )
    return size


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig when a BOM says so, utf-8 when the sample decodes as such, else cp1252 (or latin-1)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # cp1252 leaves five bytes undefined; latin-1 decodes anything


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most fields (quotes respected)."""
    first = next(iter(csv.reader(io.StringIO(text), delimiter="\x00")), [""])
    header_line = first[0] if first else ""
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        count = len(next(csv.reader([header_line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def sniff(path: Path) -> FileFormat:
    """Encoding, delimiter and header of a file; ValueError when it has no header line."""
    with path.open("rb") as f:
        sample = f.read(SNIFF_BYTES)
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="ignore")
    if not text.strip():
        raise ValueError(f"{path.name} is empty: the first line must name the columns.")
    delimiter = detect_delimiter(text.lstrip("\ufeff"))
    with open_text(path, encoding) as stream:
        header = next(csv.reader(stream, delimiter=delimiter), [])
    header = [h.strip() for h in header]
    if not any(header):
        raise ValueError(f"{path.name}: line 1 must name the columns.")
    return FileFormat(encoding=encoding, delimiter=delimiter, header=header)


def open_text(path: Path, encoding: str):
    # newline="" lets the csv module see quoted newlines; bad bytes become U+FFFD instead of stopping.
    return path.open("r", encoding=encoding, errors="replace", newline="")


class RowStream:
    """(line number where the record starts, fields) for every data row after the header; knows how far it got."""

    def __init__(self, path: Path, fmt: FileFormat):
        self.path, self.fmt = path, fmt
        self.size = max(path.stat().st_size, 1)
        self._stream = None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with open_text(self.path, self.fmt.encoding) as stream:
            self._stream = stream
            reader = csv.reader(stream, delimiter=self.fmt.delimiter)
            next(reader, None)
            last = reader.line_num
            for record in reader:
                start, last = last + 1, reader.line_num
                if record and (len(record) > 1 or record[0].strip()):
                    yield start, record
        self._stream = None

    def fraction(self) -> float:
        """Share of the file read so far (bytes, ahead by at most one read buffer)."""
        if self._stream is None:
            return 1.0
        return min(self._stream.buffer.tell() / self.size, 1.0)


def rows(path: Path, fmt: FileFormat) -> Iterator[tuple[int, list[str]]]:
    return iter(RowStream(path, fmt))


def preview(path: Path, fmt: FileFormat, *, limit: int = 5) -> list[list[str]]:
    """The first `limit` data rows, for a person to check the columns."""
    out = []
    for _line, record in rows(path, fmt):
        out.append(record)
        if len(out) >= limit:
            break
    return out
