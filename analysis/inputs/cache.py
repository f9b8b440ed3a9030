"""The on-disk cache of a folder's typed, validated rows, so that a second run, a report, a
notebook or `history` reads Parquet instead of parsing the exports again.

One entry per state of a data folder: the key is the reader's version (the source of the
readers and the polars version), the folder, `--marketplace`, and every file's name, size,
modification and change times and inode. A file whose times are that close to the moment the
entry was written that a later change could leave them equal ("racy") is checked by its SHA-256
as well. So a changed file is never served; an unchanged folder costs a `stat` per file.

- Where: `cache_dir`, else `$AH_CACHE_DIR`, else `$XDG_CACHE_HOME/amazon-account-health`, else
  `~/.cache/amazon-account-health`; never inside the data folder (which is only read).
- Atomic: an entry is written in a temporary folder and renamed into place; two runs building
  the same entry at once both succeed (the second uses the first's). Derived tables
  (populations) are added to an entry with a rename too (its `derived/` folder is made again
  if it was removed). A Parquet write runs on one core, so
  the biggest table is written beside the others and each derived table while the next one is
  computed.
- The run that writes an entry goes on with what the entry holds: its tables read once into memory
  while they fit in `KEEP_BYTES` together, the others scanned, so that the memory they held goes.
- Never trusted when damaged: every table's size and the CRC-32 of all of its bytes are in the
  entry's `meta.json` (each derived table's in a `.json` beside it), and `meta.json` carries the
  SHA-256 of the canonical JSON of the rest of itself (Amazon's snapshots, the files' row counts,
  the notes are served from it). A mismatch, a truncated or unreadable file or a meta that does
  not parse means the entry (or the derived table) is rebuilt, with a note saying so, given as a
  `CacheWarning` too (`Dataset.cache_notes`). Every table is checked whole each time it is read
  (a sampled check lets damage in the middle of a big table through): at 1 M order items, 125 MB
  of tables (uncompressed), that is 0.05 s (0.05-0.08 s with LZ4 tables, under 6 % of a warm
  `metrics` run of 2.0 s with the interpreter's start).
- Old entries of a folder are removed once newer ones exist and they were not used for an hour,
  and so are the leftovers of runs that were killed (folders, files or links).
- A cache folder whose path cannot be followed (a loop of symbolic links) is not used: the files
  are read, with a note, as when it cannot be written.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from analysis.errors import UsageError

CACHE_ENV = "AH_CACHE_DIR"
SWITCH_ENV = "AH_CACHE"  # "off": no cache (the CLI's --no-cache)
APP = "amazon-account-health"
FORMAT = 1  # raise when the layout of an entry changes
META = "meta.json"
_BLOCK = 1 << 18  # a table is checksummed in blocks of this size (all of its bytes)
_SEAL = "sha256"  # the key in meta.json of the checksum of the rest of it
_RACY_NS = 3 * 10**9  # a file changed this close to the entry's writing is checked by content
_KEEP_UNUSED_S = 3600  # an older entry of a folder unused for this long is removed
# the run that writes an entry reads back the rows and derived tables it wrote once, whole, and
# keeps them in memory while they fit in this many bytes together (scanning a small table again
# for every query costs more than it holds); the rest it scans, so their memory goes and Parquet's
# statistics skip the row groups outside a window
KEEP_BYTES = 256 << 20
# tables are written uncompressed: LZ4 made them a third smaller (a 10 M item entry 760 MB, now
# 1.24 GB) at a quarter more CPU per write, 4 % of a cold fleet account's CPU; reads are faster too
COMPRESSION = "uncompressed"
_READER_FILES = ("sources.py", "parsing.py", "cache.py", "marketplaces.py", "snapshots.py")


class CacheDamaged(Exception):
    """An entry that cannot be trusted (the message says what is wrong)."""


class CacheWarning(UserWarning):
    """The cache could not be used as it was (damaged, not writable): the files were read."""


def enabled() -> bool:
    """Whether runs of this process use the cache: the CLI's --cache-dir and --no-cache are set in
    the environment, so the kernels and workers a run starts follow them too."""
    return os.environ.get(SWITCH_ENV, "").strip().lower() != "off"


def root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / APP


_VERSION: list[str] = []


def reader_version() -> str:
    """Changes whenever the code that reads and types the exports, or polars, changes."""
    if not _VERSION:
        h = hashlib.sha256(f"{FORMAT} {pl.__version__}".encode())
        here = Path(__file__).parent
        for name in _READER_FILES:
            h.update((here / name).read_bytes())
        h.update((here.parent / "safety.py").read_bytes())
        _VERSION.append(h.hexdigest()[:16])
    return _VERSION[0]


def _edges(path: Path) -> tuple[int, int]:
    """(size, crc32 of every byte), so a truncated, rewritten or damaged file shows wherever the
    damage is (read in blocks: a big table is not held in memory twice)."""
    size = crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return size, crc


def _canonical(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sealed(meta: dict) -> str:
    """The text of meta.json: `meta` and the SHA-256 of its canonical JSON (taken of the text
    read back, so that writing and reading compute it of the very same values)."""
    body = json.loads(json.dumps(meta, default=str))
    return json.dumps({**body, _SEAL: hashlib.sha256(_canonical(body)).hexdigest()})


def _unsealed(meta: object) -> dict:
    """`meta` without its checksum; CacheDamaged when the checksum is missing or does not match."""
    if not isinstance(meta, dict) or not isinstance(meta.get(_SEAL), str):
        raise CacheDamaged(f"{META} has no checksum")
    body = {k: v for k, v in meta.items() if k != _SEAL}
    if hashlib.sha256(_canonical(body)).hexdigest() != meta[_SEAL]:
        raise CacheDamaged(f"{META} was changed or damaged")
    return body


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_parquet(df: pl.DataFrame, path: Path) -> dict:
    df.write_parquet(path, compression=COMPRESSION, statistics=True)
    size, crc = _edges(path)
    return {"file": path.name, "size": size, "crc": crc}


def _write_tables(tables: dict[str, pl.DataFrame], folder: Path) -> dict[str, dict]:
    """Every table written to `folder`: the biggest by a second thread while this one writes the
    others (a Parquet write runs on one core)."""
    if len(tables) < 2:
        return {name: _write_parquet(df, folder / f"{name}.parquet") for name, df in tables.items()}
    biggest = max(tables, key=lambda name: tables[name].height)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-write") as pool:
        big = pool.submit(_write_parquet, tables[biggest], folder / f"{biggest}.parquet")
        infos = {
            name: _write_parquet(df, folder / f"{name}.parquet")
            for name, df in tables.items()
            if name != biggest
        }
        infos[biggest] = big.result()
    return {name: infos[name] for name in tables}


def _check(path: Path, info: dict) -> None:
    try:
        got = _edges(path)
        expected = (info["size"], info["crc"])
    except OSError as exc:
        raise CacheDamaged(f"{path.name} cannot be read ({exc.strerror})") from exc
    except (KeyError, TypeError) as exc:
        raise CacheDamaged(f"the record of {path.name} is incomplete") from exc
    if got != expected:
        raise CacheDamaged(f"{path.name} was changed or damaged")


class Store:
    """The cache entry of one state of one data folder."""

    def __init__(self, base: Path, data_dir: Path, parts: list, files: list[Path]):
        """`parts`: what the key is made of besides the files; `files`: every file listed (stat'ed
        now: the key is taken before anything is read)."""
        self.base = base
        resolved = str(data_dir.resolve())
        self.folder = base / f"v{FORMAT}" / hashlib.sha256(resolved.encode()).hexdigest()[:16]
        self.stats = []
        for path in files:
            st = os.stat(path)
            self.stats.append([str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
        body = json.dumps([reader_version(), resolved, parts, self.stats], sort_keys=True, default=str)
        self.key = hashlib.sha256(body.encode()).hexdigest()[:32]
        self.dir = self.folder / self.key
        self.frames: dict[str, pl.LazyFrame] = {}
        self.meta: dict = {}
        self.hit = False  # the entry was there and intact: the files were not parsed
        self._kept = 0  # bytes of this entry's tables held in memory by this run (KEEP_BYTES)
        self._keeping = threading.Lock()

    # ------------------------------------------------------------------ reading

    def read(self) -> dict | None:
        """The entry's meta with `tables` as paths checked, or None when there is no entry;
        CacheDamaged when there is one that cannot be trusted."""
        meta_path = self.dir / META
        if not self.dir.exists():
            return None
        try:
            meta = _unsealed(json.loads(meta_path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CacheDamaged(f"{META} cannot be read ({type(exc).__name__})") from exc
        if not isinstance(meta, dict) or meta.get("key") != self.key or meta.get("format") != FORMAT:
            raise CacheDamaged(f"{META} does not belong to this entry")
        try:
            tables, racy = dict(meta["tables"]), list(meta["racy"])
            if len(racy) != len(self.stats) or not {"orders", "quarantine"} <= tables.keys():
                raise ValueError("incomplete")
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheDamaged(f"{META} is incomplete") from exc
        for name, info in tables.items():
            if not isinstance(info, dict) or not isinstance(info.get("file"), str):
                raise CacheDamaged(f"{META} names no file for {name}")
            _check(self.dir / info["file"], info)
            try:
                pl.read_parquet_schema(self.dir / info["file"])
            except Exception as exc:  # noqa: BLE001 (any reader error: damaged)
                raise CacheDamaged(f"{info['file']} is not a readable table ({type(exc).__name__})") from exc
        for stat_now, sha in zip(self.stats, racy, strict=True):
            if sha and file_sha256(Path(stat_now[0])) != sha:
                raise CacheDamaged("a file changed within the same clock tick as its cached copy")
        self._touch()
        self.meta = meta
        self.hit = True
        return meta

    def table(self, name: str) -> Path:
        return self.dir / self.meta["tables"][name]["file"]

    # ------------------------------------------------------------------ writing

    def keep(self, size: int) -> bool:
        """Whether `size` more bytes of tables fit in this run's `KEEP_BYTES` (then counted)."""
        with self._keeping:
            if self._kept + size > KEEP_BYTES:
                return False
            self._kept += size
            return True

    def write(self, tables: dict[str, pl.DataFrame], meta: dict, shas: list[str]) -> bool:
        """Write the entry (atomically); False when the cache folder cannot be written (the
        caller notes it) or another run wrote the same entry first (then it is read)."""
        now = time.time_ns()
        racy = [
            sha if now - max(s[2], s[3]) < _RACY_NS else "" for s, sha in zip(self.stats, shas, strict=True)
        ]
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
        try:
            infos = _write_tables(tables, tmp)
            meta = {**meta, "key": self.key, "format": FORMAT, "tables": infos, "racy": racy}
            (tmp / "derived").mkdir()
            (tmp / META).write_text(_sealed(meta), encoding="utf-8")
            try:
                os.rename(tmp, self.dir)
            except OSError:
                if not self.dir.exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another run wrote it first: use theirs
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune()
        self.meta = meta
        return True

    def remove(self) -> None:
        """Put a damaged entry aside (renamed first, so a run reading it is not disturbed)."""
        gone = self.folder / f".gone-{os.getpid()}-{time.time_ns()}"
        try:
            os.rename(self.dir, gone)
        except OSError:
            return
        _discard(gone)

    def _touch(self) -> None:
        try:
            os.utime(self.dir / META)
        except OSError:
            pass

    def _prune(self) -> None:
        """Remove the folder's other entries unused for an hour (keeping the newest other one)."""
        try:
            others = [
                p
                for p in self.folder.iterdir()
                if p.is_dir() and p != self.dir and not p.name.startswith(".")
            ]
            others.sort(key=lambda p: (p / META).stat().st_mtime if (p / META).exists() else 0, reverse=True)
            cutoff = time.time() - _KEEP_UNUSED_S
            for p in others[1:]:
                used = (p / META).stat().st_mtime if (p / META).exists() else 0
                if used < cutoff:
                    shutil.rmtree(p, ignore_errors=True)
            for p in self.folder.iterdir():  # leftovers of runs that were killed
                if p.name.startswith((".tmp-", ".gone-")) and p.lstat().st_mtime < cutoff:
                    _discard(p)
        except OSError:
            pass

    # ------------------------------------------------------------------ derived tables

    def serves(self, data) -> bool:
        """Whether `data` still holds the frames this entry produced (a what-if copy with other
        frames must compute its own derived tables)."""
        return (
            bool(self.frames)
            and data.frames.keys() == self.frames.keys()
            and all(data.frames[k] is v for k, v in self.frames.items())
        )

    def derived(
        self, name: str, build: Callable[[], pl.LazyFrame | pl.DataFrame], notes: list[str]
    ) -> pl.LazyFrame:
        """A table derived from the entry's rows: read when stored and intact, else built and
        stored (atomically)."""
        return self.derived_many([(name, build)], notes)[name]

    def derived_many(
        self, items: list[tuple[str, Callable[[], pl.LazyFrame | pl.DataFrame]]], notes: list[str]
    ) -> dict[str, pl.LazyFrame]:
        """Several derived tables, as `derived` gives each. Those to build are built one after
        the other, each written by a background thread while the next is built: a Parquet
        write runs on one core, a build on all of them. At most one built table waits for its
        write, so memory holds two at a time besides those kept (`KEEP_BYTES`)."""
        out: dict[str, pl.LazyFrame] = {}
        writes: dict[str, Future] = {}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-write") as pool:
            previous: Future | None = None
            for name, build in items:
                stored = self._stored_derived(name, notes)
                if stored is not None:
                    out[name] = stored
                    continue
                built = build()
                df = built.collect() if isinstance(built, pl.LazyFrame) else built
                del built
                if previous is not None:
                    previous.result()
                previous = writes[name] = pool.submit(self._store_derived, name, df)
                del df
            for name, write in writes.items():
                out[name] = write.result()
        return {name: out[name] for name, _ in items}

    def _derived_path(self, name: str) -> Path:
        return self.dir / "derived" / f"{name}.parquet"

    def _stored_derived(self, name: str, notes: list[str]) -> pl.LazyFrame | None:
        """The stored table `name` when it is there and intact (a damaged one is noted)."""
        path = self._derived_path(name)
        info_path = path.with_suffix(".json")
        if path.exists() and info_path.exists():
            try:
                _check(path, json.loads(info_path.read_text(encoding="utf-8")))
                pl.read_parquet_schema(path)
                return pl.scan_parquet(path)
            except (CacheDamaged, OSError, ValueError) as exc:
                why = str(exc)
            except Exception as exc:  # noqa: BLE001
                why = type(exc).__name__
            note = f"The cached table {name} was damaged ({why}); it was computed again."
            notes.append(note)
            warnings.warn(note, CacheWarning, stacklevel=5)
        return None

    def _store_derived(self, name: str, df: pl.DataFrame) -> pl.LazyFrame:
        """Write `df` as the table `name` (atomically); then what was written, read whole when it
        fits in `KEEP_BYTES`, else scanned, so the memory `df` held goes. `df` itself when the
        entry cannot be written (computed again next time)."""
        path = self._derived_path(name)
        info_path = path.with_suffix(".json")
        try:
            if not path.parent.is_dir():  # removed: made again (in the entry only if it is there)
                path.parent.mkdir(exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                info = _write_parquet(df, tmp)
                info_tmp = tmp.with_suffix(".json")
                info_tmp.write_text(json.dumps(info), encoding="utf-8")
                os.replace(info_tmp, info_path)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
                tmp.with_suffix(".json").unlink(missing_ok=True)
        except OSError:
            return df.lazy()
        return pl.read_parquet(path).lazy() if self.keep(df.estimated_size()) else pl.scan_parquet(path)


def _discard(path: Path) -> None:
    """Remove a leftover, whether a folder, a file or a link (never what a link points to)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def check_location(base: Path, data_dir: Path) -> None:
    """The cache never goes inside the data folder: its exports are only read. OSError when the
    cache folder's path cannot be followed (a loop of symbolic links): the cache cannot be used."""
    data = data_dir.resolve()
    try:
        where = base.resolve()
    except RuntimeError as exc:  # Python before 3.13 raises this for a loop of links
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(base)) from exc
    if where == data or data in where.parents:
        raise UsageError(
            f"The cache folder {base} is inside the data folder {data_dir}, whose exports are only read; "
            "put the cache elsewhere (--cache-dir) or turn it off (--no-cache)."
        )


def encode_snapshot(snap: dict) -> dict:
    return {**snap, "_asOf": snap["_asOf"].isoformat()}


def decode_snapshot(snap: dict) -> dict:
    return {**snap, "_asOf": dt.date.fromisoformat(snap["_asOf"])}
