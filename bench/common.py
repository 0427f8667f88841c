"""What every benchmark shares: timing, peak memory, the cached data sets, the machine, the result rows.

Figures are medians of several repetitions after a warm-up; the product and its baseline run in the
same process on the same data, so their ratio survives a noisy machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import postgres
from crmcore.db import Database, migrate

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"  # git-ignored: generated data sets, reused across runs
RESULTS_DIR = BENCH_DIR / "results"
SEED = 1
BENCH_USER = "bench-manager"


@dataclass
class Row:
    """One line of the results table."""

    id: str
    what: str
    product_s: float | None = None
    baseline_s: float | None = None
    target: str = ""
    met: bool | None = None  # None: no target at this size, or not measured
    agree: bool = True  # product and baseline gave the same answers
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.product_s is None or not self.baseline_s:
            return None
        return self.product_s / self.baseline_s

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


class WrongAnswer(Exception):
    """Product and baseline disagree: the timing is worthless and is not reported."""


def check_agree(what: str, product: Any, baseline: Any) -> None:
    """Raise WrongAnswer naming the first difference between the product's and the baseline's answers."""
    if product == baseline:
        return
    if isinstance(product, dict) and isinstance(baseline, dict):
        for key in sorted(set(product) | set(baseline), key=str):
            if product.get(key) != baseline.get(key):
                raise WrongAnswer(f"{what}: {key}: product {product.get(key)!r} != baseline {baseline.get(key)!r}")
    raise WrongAnswer(f"{what}: product {product!r} != baseline {baseline!r}")


def load_average() -> list[float]:
    """The machine's load average (1, 5, 15 minutes) when a figure was taken: shared machines make slow runs."""
    return [round(x, 2) for x in os.getloadavg()]


def median_time(fn: Callable[[], Any], *, reps: int = 3, setup: Callable[[], Any] | None = None, warm_up: bool = True) -> tuple[float, Any]:
    """Median wall time of `fn()` over `reps` runs after one warm-up (unless `warm_up` is False); `setup()` runs
    untimed before each."""
    times, result = [], None
    for i in range(reps + 1 if warm_up else reps):
        if setup is not None:
            setup()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        if i > 0 or not warm_up:  # the first run is the warm-up (imports, caches, page cache)
            times.append(elapsed)
        if elapsed > 10:  # a long run says how it went as it goes (load average beside it: the machine may be shared)
            say(f"    {'warm-up' if i == 0 else f'run {i}'}: {elapsed:.1f} s (load average {os.getloadavg()[0]:.1f})")
    return statistics.median(times), result


# Runs argv[1:] and prints its peak resident memory in bytes: the larger of the kernel's peak for the
# process and the sum over it and the processes it started (a large import reads in a second process),
# sampled every 20 ms. A child forked from a big process reports that process's resident memory at the
# fork as its own peak, so the command is started from this small launcher instead.
_PEAK_RSS_LAUNCHER = """
import os, sys, time
import psutil
pid = os.spawnv(os.P_NOWAIT, sys.argv[1], sys.argv[1:])
root, together = psutil.Process(pid), 0
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done:
        break
    try:
        together = max(together, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
    except psutil.Error:
        pass
    time.sleep(0.02)
print(max(usage.ru_maxrss * 1024, together))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(command: list[str], *, env: dict[str, str] | None = None) -> int:
    """Peak resident memory in bytes of `command` and the processes it starts (interpreters included), run fresh."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_LAUNCHER, *command], cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(done.stdout.split()[-1])


def run_checked(command: list[str], *, env: dict[str, str] | None = None) -> str:
    """Run a command from the repository root; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def machine(*, backend: str = "sqlite") -> dict[str, Any]:
    """The machine the figures come from (and the PostgreSQL server's version when it is measured)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
        **({"postgresql": postgres.server_version()} if backend == "postgres" else {}),
    }


# --- data sets -------------------------------------------------------------------------------------


def dataset_path(size: int) -> Path:
    return DATA_DIR / f"library-{size}-seed{SEED}.db"


BACKENDS = ("sqlite", "postgres")
_backend = {"name": "sqlite"}  # the run's backend: set by Context (python -m bench --db …)


def backend() -> str:
    """The backend this run measures: "sqlite" or "postgres"."""
    return _backend["name"]


def use_backend(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    _backend["name"] = name


def _ensure_bench_user(db: Database) -> int:
    """A manager account the page benchmark signs in as."""
    from sqlmodel import select

    from crmcore.admin.auth import hash_password
    from crmcore.models import StaffUser

    with db.write() as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == BENCH_USER)).first()
        if user is None:
            user = StaffUser(username=BENCH_USER, role="manager", password_hash=hash_password(os.urandom(16).hex()))
            session.add(user)
            session.flush()
        return user.id


def _sqlite_dataset(size: int, *, regenerate: bool = False) -> Database:
    from crmcore.demo.library import generate

    path = dataset_path(size)
    if regenerate and path.exists():
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        for stale in path.parent.glob(partial.name + "*"):
            stale.unlink()
        url = f"sqlite:///{partial}"
        migrate(url)
        db = Database(url)
        say(f"  generating the demo library: {size:,} patrons (cached in {path.relative_to(BENCH_DIR.parent)}) …")
        start = time.perf_counter()
        counts = generate(db, patrons=size, seed=SEED)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.dispose()
        partial.rename(path)
        say(f"  generated in {time.perf_counter() - start:.0f} s: {counts}")
    url = f"sqlite:///{path}"
    migrate(url)  # a data set cached by an older checkout gets the newer schema ...
    db = Database(url)
    db.analyze()  # ... and planner statistics for it
    _ensure_bench_user(db)
    return db


def _postgres_dataset(size: int, *, regenerate: bool = False) -> Database:
    """The SQLite data set of `size` copied once into a PostgreSQL database named for size, seed and schema."""
    from crmcore.db import head_revision

    name = postgres.dataset_name(size, SEED, head_revision())
    if regenerate:
        postgres.drop(name)
    if not postgres.exists(name):
        source = _sqlite_dataset(size, regenerate=regenerate)
        with source.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        source.dispose()
        partial = f"{name}_partial"
        postgres.create(partial)
        migrate(postgres.url_for(partial))
        say(f"  copying the {size:,}-patron library into PostgreSQL ({name}) …")
        start = time.perf_counter()
        counts = postgres.load_from_sqlite(dataset_path(size), postgres.url_for(partial))
        postgres.rename(partial, name)
        say(f"  copied in {time.perf_counter() - start:.0f} s: {sum(counts.values()):,} rows")
    db = Database(postgres.url_for(name))
    _ensure_bench_user(db)
    return db


def dataset(size: int, *, regenerate: bool = False) -> Database:
    """The seeded demo library of `size` patrons on the run's backend: generated once into bench/data/
    (and, for PostgreSQL, copied once into a database of its own) and reused."""
    if backend() == "postgres":
        return _postgres_dataset(size, regenerate=regenerate)
    return _sqlite_dataset(size, regenerate=regenerate)


def scratch_copy(db: Database, name: str) -> Database:
    """A copy of a data set that a benchmark may change (sending, imports); `name` is a file name
    (`b8-journeys.db`), which on PostgreSQL names a database of this checkout."""
    if not db.is_sqlite:
        db.dispose()  # a database with sessions open cannot be a template; the pool reconnects when used
        target = postgres.scratch_name(name)
        postgres.create(target, template=db.engine.url.database)
        return Database(postgres.url_for(target))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    source = Path(db.engine.url.database)
    target = DATA_DIR / "scratch" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    shutil.copy(source, target)
    return Database(f"sqlite:///{target}")


def fresh_database(name: str) -> Database:
    """An empty, migrated database on the run's backend: a file under bench/data/scratch/, or on
    PostgreSQL a database of this checkout named for it."""
    if backend() == "postgres":
        target = postgres.scratch_name(name)
        postgres.create(target)
        url = postgres.url_for(target)
        migrate(url)
        return Database(url)
    target = DATA_DIR / "scratch" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    url = f"sqlite:///{target}"
    migrate(url)
    return Database(url)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Context:
    """What a benchmark run knows: the size, the repetitions, the data sets opened so far."""

    size: int
    reps: int = 3
    regenerate: bool = False
    rows: int | None = None  # B1b's activity rows (None: its default)
    backend: str = "sqlite"  # or "postgres": every data set, scratch copy and fresh database is there
    _open: dict[int, Database] = field(default_factory=dict)

    def __post_init__(self) -> None:
        use_backend(self.backend)

    def db(self, size: int | None = None) -> Database:
        """The cached data set of `size` patrons (default: the run's size), opened once per run."""
        size = size or self.size
        if size not in self._open:
            self._open[size] = dataset(size, regenerate=self.regenerate)
        return self._open[size]
