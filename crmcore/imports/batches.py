"""A file's cleaned and prepared batches, made in this process or, for a large file, in a second one.

Reading, cleaning and preparing a batch is Python work on one core; writing it is mostly the
database's. For a file of PARALLEL_BYTES or more whose first batch held mostly new or changed rows, a
second Python process (a plain subprocess: nothing is forked beside the app server's threads) reads,
cleans and prepares batch k + 1 while this process writes batch k, so a two-core machine uses both.
Batches come back through a pipe in file order: what is written, and in which transactions, is exactly
what one process would write. The child stops when this process stops reading (done, failed or
killed: its pipe breaks).
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crmcore.imports import reading
from crmcore.imports.batch import Batch, Rejected
from crmcore.imports.cleaning import Cleaner

PARALLEL_BYTES = 10 * 1024 * 1024  # below this, starting a second Python costs more than it saves

# (rows rejected while cleaning and preparing, what the importer prepared, data rows read so far, share of the file read)
Item = tuple[list[Rejected], Any, int, float]


@dataclass(frozen=True)
class Job:
    """Everything needed to make a file's batches, in this process or another (so: plain, picklable values)."""

    kind: str
    mapping: dict[str, Any]
    fmt: reading.FileFormat
    path: Path
    batch_size: int
    importer: type  # the importer class, made again in the child from `importer_args`
    importer_args: dict[str, Any]


def prepared(job: Job, importer=None, *, after: int = 0) -> Iterator[Item]:
    """The batches made here, one after another (those within the first `after` data rows only read past)."""
    importer = importer or job.importer(**job.importer_args)
    cleaner = Cleaner(job.kind, job.mapping, job.fmt.header)
    stream = reading.RowStream(job.path, job.fmt)
    ordinal = 0
    for rows in _chunks(stream, job.batch_size):
        first, ordinal = ordinal + 1, ordinal + len(rows)
        if ordinal <= after:
            continue
        too_long = stream.take_too_long()  # the chunk's rows with a value over the limit
        batch = cleaner.clean(rows, first, too_long=too_long)
        ready = importer.prepare(batch)  # may reject more rows of the batch
        yield batch.rejected, ready, ordinal, stream.fraction()


def batches(job: Job, importer, *, writing: Callable[[], bool]) -> Iterator[Item]:
    """The batches in file order. The first is made here by `importer`; once the caller has written it, if
    the file is large and `writing()` says writing was most of the work (new or changed rows), a child
    process makes the rest. A re-import of unchanged rows or a dry run writes little: a second process
    would only add the cost of sending every batch across. (For a large file the child is started at
    once, as it takes a second to start, and stopped if it is not wanted.)"""
    child = _Child(job, after=job.batch_size) if job.path.stat().st_size >= PARALLEL_BYTES else None
    try:
        here = prepared(job, importer)
        first = next(here, None)
        if first is None:
            return
        yield first
        if child is not None and writing():
            here.close()
            yield from child
        else:
            yield from here
    finally:
        if child is not None:
            child.stop()


def _chunks(stream: reading.RowStream, size: int) -> Iterator[list[tuple[int, list[str]]]]:
    """Rows `size` at a time (the last chunk may be shorter)."""
    rows: list[tuple[int, list[str]]] = []
    for row in stream:
        rows.append(row)
        if len(rows) >= size:
            yield rows
            rows = []
    if rows:
        yield rows


@dataclass
class _Failed:
    error: BaseException


class _Child:
    """A process making the batches that follow the first `after` data rows, sent through its stdout."""

    def __init__(self, job: Job, *, after: int = 0):
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the crmcore package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-c", f"from {__name__} import _make_in_child; _make_in_child()"]
        self.name = job.path.name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            self.process.stdin.write(pickle.dumps((job, after)))
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # the child is gone already: reading from it says so

    def __iter__(self) -> Iterator[Item]:
        try:
            while (item := _receive(self.process.stdout)) is not None:
                if isinstance(item, _Failed):
                    raise item.error
                yield _with_dates(*item)
        except EOFError:
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            raise RuntimeError(f"the process reading {self.name} stopped unexpectedly (exit code {code})") from None
        finally:
            self.stop()

    def stop(self) -> None:
        """Done with it: it has sent everything and is exiting, or what it would send is not wanted."""
        self.process.stdout.close()
        self.process.kill()  # nothing if it has exited already
        self.process.wait()


def _dates_as_text(item: Item) -> tuple[Item, list[str]]:
    """Date columns of a prepared Batch as ISO text, and their names: a date object pickles ten times slower."""
    ready = item[1]
    if not isinstance(ready, Batch):
        return item, []
    dated = [name for name, column in ready.columns.items() if type(next((v for v in column if v is not None), None)) is date]
    for name in dated:
        ready.columns[name] = [None if v is None else v.isoformat() for v in ready.columns[name]]
    return item, dated


def _with_dates(item: Item, dated: list[str]) -> Item:
    columns = item[1].columns if dated else {}
    for name in dated:
        columns[name] = [None if v is None else date.fromisoformat(v) for v in columns[name]]
    return item


def _send(stream, item: Any) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)
    stream.flush()


def _receive(stream) -> Any:
    head = stream.read(8)
    data = stream.read(int.from_bytes(head, "big")) if len(head) == 8 else b""
    if not data:
        raise EOFError
    return pickle.loads(data)


def _make_in_child() -> None:
    """The child's side: the Job arrives on stdin, the batches leave on stdout (anything printed goes to stderr)."""
    gc.disable()  # as in the parent's run: many short-lived containers, no cycles
    sending = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    try:
        job, after = pickle.load(sys.stdin.buffer)
        for item in prepared(job, after=after):
            _send(sending, _dates_as_text(item))
        _send(sending, None)
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped reading (finished early, failed or was killed)
    except Exception as exc:  # noqa: BLE001  (handed to the parent, which raises it)
        try:
            _send(sending, _Failed(exc))
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(sending, _Failed(RuntimeError(str(exc))))

