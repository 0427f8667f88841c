"""Reading export files as they come: encoding and delimiter sniffed, rows streamed with line numbers.

A file is never loaded whole: rows come one at a time from the csv module over a text stream, each
with the physical line it starts on (so a rejected row is found in an editor even when an earlier
quoted field held newlines).

The encoding is decided over the whole file, not its first block: a file is UTF-8 only if all of it
decodes as UTF-8; otherwise a single-byte encoding (cp1252, else latin-1) is used for all of it, unless
the file also holds UTF-8 characters, which is a file mixing two encodings: refused with the line where
the UTF-8 stops. A value longer than MAX_FIELD_CHARS rejects its row (the rest of the file imports).
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
MAX_FIELD_CHARS = 1_000_000  # a cell longer than this (a million characters) rejects its row
MAX_HEADER_CHARS = 1_000  # a column name longer than this is not a header line
_BLOCK = 1024 * 1024
_TEXT_CHUNK = 64 * 1024  # the text stream's read size: bytes read between two records run ahead by at most this

# The csv module's own limit raises in the middle of a record and leaves the reader lost inside a quoted
# field; ours is checked per record (RowStream), so the csv module's limit is only a backstop.
csv.field_size_limit(2**31 - 1)


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
    """utf-8-sig when a BOM says so, utf-8 when the sample decodes as such, else cp1252 (or latin-1).

    A guess from the first bytes only: `file_encoding` decides over the whole file."""
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


_checked: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) → encoding: a page asks again on every rerun


def file_encoding(path: Path, *, name: str | None = None) -> str:
    """The encoding of the whole file, read once in a streaming pass (BOM, else strict UTF-8 over every
    byte, else cp1252 or latin-1); ValueError naming the line when UTF-8 text turns into something else."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    found = _checked.get(key)
    if found is None:
        found = _whole_file_encoding(path, name or path.name)
        _checked.clear()  # one file at a time is what anyone inspects
        _checked[key] = found
    return found


def _whole_file_encoding(path: Path, name: str) -> str:
    with path.open("rb") as f:
        guess = detect_encoding(f.read(SNIFF_BYTES))
    if guess == "utf-16":
        return guess
    failure = _first_non_utf8(path)
    if failure is None:
        return "utf-8-sig" if guess == "utf-8-sig" else "utf-8"
    offset, line, utf8_before = failure
    if utf8_before or guess == "utf-8-sig":  # UTF-8 characters, then a byte that is not: two encodings
        raise ValueError(
            f"{name}, line {line}: the file is UTF-8 up to here but not from here on (byte {offset:,} is not UTF-8): "
            "it mixes two encodings. Open it in a spreadsheet or editor and save it again as UTF-8."
        )
    return "latin-1" if _has_undefined_cp1252(path) else "cp1252"


def _first_non_utf8(path: Path) -> tuple[int, int, bool] | None:
    """(byte offset, line, whether UTF-8 multi-byte text came before) of the first byte that is not UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done, lines, non_ascii = 0, 1, False
    with path.open("rb") as f:
        while True:
            block = f.read(_BLOCK)
            pending = decoder.getstate()[0]  # the start of a character cut by the previous block
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:  # exc.start counts from the pending bytes
                head = (pending + block)[: exc.start]
                return done - len(pending) + exc.start, lines + head.count(b"\n"), non_ascii or not head.isascii()
            if not block:
                return None
            non_ascii = non_ascii or not block.isascii()
            lines += block.count(b"\n")
            done += len(block)


def _has_undefined_cp1252(path: Path) -> bool:
    """Whether some byte of the file is one of the five cp1252 leaves undefined (then it is latin-1)."""
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            try:
                block.decode("cp1252")
            except UnicodeDecodeError:
                return True
    return False


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


# The first bytes of files people upload by mistake (a photo, a spreadsheet, a PDF renamed .csv).
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive, as an Excel .xlsx workbook is"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook"),
    (b"\x1f\x8b", "a gzip archive"), (b"SQLite format 3\x00", "a SQLite database"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!\x1a\x07", "a RAR archive"),
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"\x7fELF", "a program"),
]
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def check_text(sample: bytes, *, name: str) -> None:
    """ValueError when the file's first bytes are not text: a known binary format (named), NUL bytes, or UTF-16."""
    if sample.startswith(_UTF16_BOMS) or sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ValueError(f"{name} is saved as UTF-16 or UTF-32 text, which imports do not read: save it again as CSV UTF-8.")
    looks = next((what for magic, what in MAGIC if sample.startswith(magic)), None)
    if looks is None and sample.startswith(b"RIFF") and sample[8:12] == b"WEBP":
        looks = "a WebP image"
    if looks is None and b"\x00" in sample:
        looks = "binary data"
    if looks:
        raise ValueError(f"{name} is not a text file (it looks like {looks}): export the data as CSV and upload that.")


def sniff(path: Path, *, name: str | None = None) -> FileFormat:
    """Encoding, delimiter and header of a file; ValueError when it is not text or has no header line (`name`:
    the file's name as uploaded, for messages: the stored copy is named by its hash)."""
    name = name or path.name
    with path.open("rb") as f:
        sample = f.read(SNIFF_BYTES)
    if not sample.strip():
        raise ValueError(f"{name} is empty: the first line must name the columns.")
    check_text(sample, name=name)
    encoding = file_encoding(path, name=name)
    text = sample.decode(encoding, errors="ignore")
    if not text.strip():
        raise ValueError(f"{name} is empty: the first line must name the columns.")
    delimiter = detect_delimiter(text.lstrip("\ufeff"))
    with open_text(path, encoding) as stream:
        header = next(csv.reader(stream, delimiter=delimiter), [])
    header = [h.strip() for h in header]
    if any(len(h) > MAX_HEADER_CHARS for h in header):
        raise ValueError(f"{name}: line 1 must name the columns, but a column name there is longer than {MAX_HEADER_CHARS:,} characters.")
    if not any(header):
        raise ValueError(f"{name}: line 1 must name the columns.")
    return FileFormat(encoding=encoding, delimiter=delimiter, header=header)


def open_text(path: Path, encoding: str):
    # newline="" lets the csv module see quoted newlines; bad bytes become U+FFFD instead of stopping.
    return path.open("r", encoding=encoding, errors="replace", newline="")


def too_long_reason() -> str:
    return f"a value is longer than {MAX_FIELD_CHARS:,} characters (the limit); the row was rejected"


class RowStream:
    """(line number where the record starts, fields) for every data row after the header; knows how far it got.

    A row holding a value longer than MAX_FIELD_CHARS comes as an empty record and its line is in
    `too_long` (line → column name): it keeps its place among the rows, and the cleaner rejects it."""

    def __init__(self, path: Path, fmt: FileFormat):
        self.path, self.fmt = path, fmt
        self.size = max(path.stat().st_size, 1)
        self._stream = None
        self.too_long: dict[int, str] = {}

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        header = self.fmt.header
        with open_text(self.path, self.fmt.encoding) as stream:
            self._stream = stream
            tell = stream.buffer.tell
            reader = csv.reader(stream, delimiter=self.fmt.delimiter)
            next(reader, None)
            last, read = reader.line_num, tell()
            # A record's value can be over the limit only when more bytes than that were read since the
            # last record (a character is at least a byte): one cheap tell() per row, no scan of the cells.
            threshold = MAX_FIELD_CHARS - 2 * _TEXT_CHUNK
            for record in reader:
                start, last = last + 1, reader.line_num
                before, read = read, tell()
                if read - before > threshold:
                    column = next((i for i, cell in enumerate(record) if len(cell) > MAX_FIELD_CHARS), None)
                    if column is not None:
                        self.too_long[start] = header[column] if column < len(header) and header[column] else f"column {column + 1}"
                        yield start, []
                        continue
                if record and (len(record) > 1 or record[0].strip()):
                    yield start, record
        self._stream = None

    def take_too_long(self) -> dict[int, str]:
        """The over-long rows seen since the last call (line → column)."""
        out, self.too_long = self.too_long, {}
        return out

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
