"""Issue 16: the on-disk cache of typed rows, the fast reader, and one order id in two marketplaces.

- The cache gives the very outputs of a cold run (byte-identical `metrics` JSON) on the sample and
  on every case of tests/corpus; a changed, a truncated and a damaged cache file each lead to a
  rebuild; two runs at once both succeed; the data folder is never written.
- A hostile cache: an edited meta.json (still valid JSON), a byte changed in the middle of a
  table over 32 MB and a damaged derived table are each rebuilt with one warning line; a deleted
  `derived/` folder is made again; a loop of symbolic links as the cache folder is a warning, the
  files read; leftovers that are files are removed.
- The fast reader (polars' CSV reader on plain files) gives the rows of the line-by-line reader.
- The same order id in two marketplaces is two orders, each counted in its own marketplace.

Every test here uses its own cache folder (`cache_dir`, or AH_CACHE_DIR for the command line).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import cover_until

from analysis import config
from analysis.errors import UsageError
from analysis.inputs import cache, sources
from analysis.metrics import definitions, health

CORPUS = Path(__file__).parent / "corpus"
SAMPLE_AS_OF = dt.date(2026, 11, 15)


def _corpus_cases() -> list[str]:
    return sorted(
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix != ".py" and not p.name.startswith("_")
    )


def _case(tmp_path: Path, name: str) -> Path:
    """As tests/test_corpus.py runs them: the base orders file plus the file under test."""
    d = tmp_path / "case"
    d.mkdir()
    shutil.copy(CORPUS / "_base_orders.txt", d / "base_orders.txt")
    shutil.copy(CORPUS / name, d / Path(name).name)
    return d


def _outputs(data: sources.Dataset) -> str:
    """Everything a run shows of a dataset: the metrics JSON as of its newest order day (the
    sample's as-of day for the sample), a 40-day history, every row of every frame, the files'
    row accounting and the quarantine."""
    day = min(health.newest_order_day(data), SAMPLE_AS_OF)
    doc = health.account_health(data, day, allow_incomplete=True).to_json()
    hist = definitions.history(data, day - dt.timedelta(days=40), day).write_csv()
    frames = "\n".join(data.frame(k).collect().write_csv() for k in sources.TABLE_KINDS)
    files = repr([dataclasses.astuple(f) for f in data.files])
    return "\n".join(
        [doc, hist, frames, files, data.quarantine.write_csv(), repr(data.notes), repr(data.skipped)]
    )


def _load(folder: Path, cache_dir: Path | None) -> sources.Dataset:
    return sources.load(folder, cache_dir=cache_dir, use_cache=cache_dir is not None)


def _served(data: sources.Dataset) -> bool:
    """Whether the dataset's rows were read from the cache (not parsed)."""
    entry = sources.cache_entry(data)
    return entry is not None and entry.hit


# ----------------------------------------------------------------------------- same outputs


def test_sample_metrics_json_byte_identical_from_the_cache(tmp_path):
    """`python -m analysis metrics` prints the same bytes cold, while building the cache, and
    served from it."""
    folder = tmp_path / "sample"
    shutil.copytree(config.SAMPLE_DIR, folder)
    args = [sys.executable, "-m", "analysis", "metrics", "--data", str(folder), "--as-of", str(SAMPLE_AS_OF)]

    def run(cache_dir: Path) -> bytes:
        env = {**os.environ, cache.CACHE_ENV: str(cache_dir)}
        r = subprocess.run(args, capture_output=True, env=env, cwd=config.PROJ_ROOT, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout

    cold = run(tmp_path / "cold-cache")
    building = run(tmp_path / "cache")
    warm = run(tmp_path / "cache")
    assert cold == building == warm
    assert list((tmp_path / "cache").glob("v*/*/*/meta.json")), "the cache was not written"
    assert list((tmp_path / "cache").glob("v*/*/*/derived/units-order_defects-*.parquet"))


def test_sample_in_python_cold_equals_cached(tmp_path, sample_dir):
    cold = _outputs(_load(sample_dir, None))
    first = _load(sample_dir, tmp_path / "c")
    assert not _served(first)
    built = _outputs(first)
    second = _load(sample_dir, tmp_path / "c")
    assert _served(second)
    assert cold == built == _outputs(second)


def _run(folder: Path, cache_dir: Path | None) -> tuple[str, bool]:
    """(outputs or the DataError sentence, whether the rows came from the cache)."""
    try:
        data = _load(folder, cache_dir)
        return _outputs(data), _served(data)
    except sources.DataError as exc:
        return f"DataError: {exc}", False


@pytest.mark.parametrize("name", _corpus_cases())
def test_corpus_case_same_from_the_cache(tmp_path, name):
    folder = _case(tmp_path, name)
    cold, _ = _run(folder, None)
    built, _ = _run(folder, tmp_path / "c")
    served, from_cache = _run(folder, tmp_path / "c")
    assert cold == built == served
    assert from_cache or cold.startswith("DataError")


@pytest.mark.parametrize("in_place", [True, False], ids=["cells-in-place", "per-value"])
@pytest.mark.parametrize("name", ["sample", *_corpus_cases()])
def test_fast_reader_gives_the_line_by_line_rows(tmp_path, monkeypatch, name, in_place):
    """polars' CSV reader on plain files and the line-by-line reader agree, row for row, whether
    the repeated columns are typed cell by cell (small files) or once per distinct value."""
    folder = config.SAMPLE_DIR if name == "sample" else _case(tmp_path, name)

    monkeypatch.setattr(sources, "_IN_PLACE_ROWS", 10**12 if in_place else -1)
    fast = _run(folder, None)
    monkeypatch.setattr(sources, "FAST_PATH", False)
    assert _run(folder, None) == fast


def test_fast_reader_takes_plain_files_and_hands_over_bad_rows(tmp_path, monkeypatch):
    """A plain file is read by polars; its bad rows, duplicates and odd timestamps still get the
    line-by-line reader's reasons and lines."""
    taken = []
    original = sources._fast_export

    def spy(shown, *args):
        out = original(shown, *args)
        taken.append((shown, out is not None))
        return out

    monkeypatch.setattr(sources, "_fast_export", spy)
    folder = _case(tmp_path, "orders_bad_values.txt")
    shutil.copy(CORPUS / "orders_exact_duplicates.txt", folder)
    data = _load(folder, None)
    assert ("orders_bad_values.txt", True) in taken and ("orders_exact_duplicates.txt", True) in taken
    q = data.quarantine.filter(pl.col("file") == "orders_bad_values.txt")
    assert set(q.select("line", "column", "reason").rows()) == {
        (2, "quantity", "negative quantity"),
        (3, "order-status", "unknown value"),
        (4, "purchase-date", "cannot read as timestamp"),
        (5, "sales-channel", "unknown value"),
    }
    dup = next(f for f in data.files if f.path.name == "orders_exact_duplicates.txt")
    assert (dup.rows, dup.accepted, dup.duplicates) == (3, 2, 1)


# ----------------------------------------------------------------------------- invalidation


def _entry_dir(cache_dir: Path) -> Path:
    (meta,) = cache_dir.glob("v*/*/*/meta.json")
    return meta.parent


def test_changed_file_is_never_served(tmp_path, sample_copy):
    c = tmp_path / "c"
    before = _outputs(_load(sample_copy, c))
    orders = sample_copy / "All_Orders_com.txt"
    lines = orders.read_text(encoding="utf-8").splitlines(keepends=True)
    orders.write_text("".join(lines[:-1]), encoding="utf-8")  # one order item less
    after = _load(sample_copy, c)
    assert not _served(after)
    assert _outputs(after) == _outputs(_load(sample_copy, None)) != before


def test_same_size_rewrite_in_the_same_tick_is_caught(tmp_path, account):
    """A file rewritten with other bytes of the same size, its times put back: the entry was
    written right after the file, so its content is checked (SHA-256) before it is served."""
    folder = cover_until(account.order("A1", "2026-06-01").order("A2", "2026-06-02").write(), "2026-06-30")
    c = tmp_path / "c"
    _load(folder, c)
    orders = folder / "orders.txt"
    st = orders.stat()
    text = orders.read_text(encoding="utf-8")
    orders.write_text(text.replace("2026-06-02T12", "2026-06-03T12"), encoding="utf-8")
    os.utime(orders, ns=(st.st_atime_ns, st.st_mtime_ns))
    data = _load(folder, c)
    days = data.frame("orders").select(pl.col("purchase_ts").dt.date()).collect().to_series().to_list()
    assert dt.date(2026, 6, 3) in days and dt.date(2026, 6, 2) not in days


@pytest.mark.parametrize("damage", ["changed", "truncated", "corrupt", "meta"])
def test_damaged_cache_file_is_rebuilt_with_a_note(tmp_path, sample_copy, damage):
    c = tmp_path / "c"
    reference = _outputs(_load(sample_copy, c))
    entry = _entry_dir(c)
    target = entry / "orders.parquet"
    if damage == "changed":  # another valid table in its place
        pl.read_parquet(target).head(10).write_parquet(target)
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "corrupt":  # same size, garbage in the middle
        raw = bytearray(target.read_bytes())
        mid = len(raw) // 2
        raw[mid : mid + 64] = b"\xff" * 64
        target.write_bytes(bytes(raw))
    else:
        (entry / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.warns(cache.CacheWarning, match="damaged"):
        data = _load(sample_copy, c)
    assert any("damaged" in n for n in data.cache_notes)
    assert not any("cache" in n.lower() for n in data.notes)  # the outputs do not change
    assert _outputs(data) == reference
    assert _served(_load(sample_copy, c))  # and the rebuilt entry serves the next run


def test_damaged_derived_table_is_computed_again(tmp_path, sample_copy):
    c = tmp_path / "c"
    reference = _outputs(_load(sample_copy, c))
    _outputs(_load(sample_copy, c))  # the populations are stored by now
    (pop,) = _entry_dir(c).glob("derived/units-order_defects-*.parquet")
    pop.write_bytes(pop.read_bytes()[:100])
    data = _load(sample_copy, c)
    with pytest.warns(cache.CacheWarning, match="units-order_defects"):
        assert _outputs(data) == reference
    assert any("units-order_defects" in n for n in data.cache_notes)


def test_reader_version_is_part_of_the_key(tmp_path, sample_dir, monkeypatch):
    c = tmp_path / "c"
    _load(sample_dir, c)
    monkeypatch.setattr(cache, "_VERSION", ["another-reader"])
    assert not _served(_load(sample_dir, c))
    assert len(list(c.glob("v*/*/*/meta.json"))) == 2


# ----------------------------------------------------------------------------- safety


def test_two_runs_at_once_both_succeed(tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(config.SAMPLE_DIR, folder)
    env = {**os.environ, cache.CACHE_ENV: str(tmp_path / "c")}
    args = [sys.executable, "-m", "analysis", "metrics", "--data", str(folder), "--as-of", str(SAMPLE_AS_OF)]
    runs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=config.PROJ_ROOT)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [e.decode() for _, e in outs]
    assert outs[0][0] == outs[1][0]
    assert len(list((tmp_path / "c").glob("v*/*/*/meta.json"))) == 1
    assert not list((tmp_path / "c").glob("v*/*/.tmp-*"))


def test_data_folder_never_written(tmp_path, sample_copy):
    def state():
        return sorted(
            (str(p.relative_to(sample_copy)), p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sample_copy.rglob("*")
        )

    before = state()
    for _ in range(2):
        _outputs(_load(sample_copy, tmp_path / "c"))
    assert state() == before


def test_cache_inside_the_data_folder_is_refused(sample_copy):
    with pytest.raises(UsageError, match="inside the data folder"):
        sources.load(sample_copy, cache_dir=sample_copy / "cache")
    assert not (sample_copy / "cache").exists()


def test_no_cache_writes_nothing(tmp_path, sample_dir, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    data = sources.load(sample_dir, use_cache=False)
    health.account_health(data, SAMPLE_AS_OF)
    assert sources.cache_entry(data) is None and not (tmp_path / "c").exists()


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.root() == tmp_path / "xdg" / "amazon-account-health"
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "env"))
    assert cache.root() == tmp_path / "env"
    assert cache.root(tmp_path / "arg") == tmp_path / "arg"


def test_unwritable_cache_folder_only_notes(tmp_path, sample_dir):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.warns(cache.CacheWarning):
        data = _load(sample_dir, blocked / "c")
        health.account_health(data, SAMPLE_AS_OF)
    assert any("cannot be written" in n for n in data.cache_notes)


# ----------------------------------------------------------------------------- one id, two marketplaces


def test_one_order_id_in_two_marketplaces_is_counted_in_each(account):
    """The id 111-SHARED is an order on Amazon.com and another on Amazon.co.uk. Its negative
    feedback is in the UK's feedback file: a defect of the UK order only. Its A-to-z claim names
    only the id: it counts for both orders."""
    a = account
    A = dt.date(2026, 6, 30)
    a.order("111-SHARED", "2026-06-05", market="Amazon.com").order(
        "111-US-ONLY", "2026-06-05", market="Amazon.com"
    )
    a.order("111-SHARED", "2026-06-06", market="Amazon.co.uk").order(
        "202-UK-ONLY", "2026-06-06", market="Amazon.co.uk"
    )
    a.feedback("111-US-ONLY", "6/8/26", 5, file="feedback_us.txt")
    a.feedback("202-UK-ONLY", "8/6/26", 5, file="feedback_uk.txt").feedback(
        "111-SHARED", "9/6/26", 1, file="feedback_uk.txt"
    )
    a.claim("111-SHARED", "2026-06-12T10:00:00+00:00", "granted")
    folder = cover_until(a.write(), A)
    data = sources.load(folder, use_cache=False)
    assert any("1 order id is in the orders of more than one marketplace" in n for n in data.notes)
    doc = health.account_health(data, A).document
    odr = {pm["marketplaceId"]: pm["orderDefectRate"]["afn"] for pm in doc["performanceMetrics"]}
    us, uk = odr["ATVPDKIKX0DER"], odr["A1F83G8C2ARO7P"]
    assert (us["orderCount"], us["orderWithDefects"]["count"]) == (2, 1)
    assert (us["negativeFeedback"]["count"], us["claims"]["count"]) == (0, 1)
    assert (uk["orderCount"], uk["orderWithDefects"]["count"]) == (2, 1)
    assert (uk["negativeFeedback"]["count"], uk["claims"]["count"]) == (1, 1)
    refunds = {pm["marketplaceId"]: pm["refundRate"]["orderCount"] for pm in doc["performanceMetrics"]}
    assert refunds["ATVPDKIKX0DER"] == 2 and refunds["A1F83G8C2ARO7P"] == 2


def test_one_order_id_in_two_marketplaces_mfn_packages(account):
    """A shipments row names only the order id: the package counts for the MFN order of that id
    in each marketplace (late in both)."""
    a = account
    A = dt.date(2026, 6, 30)
    a.order("111-SHARED", "2026-06-20", channel="MFN", market="Amazon.com")
    a.order("111-SHARED", "2026-06-20", channel="MFN", market="Amazon.co.uk")
    a.shipment("111-SHARED", "2026-06-22", ship="2026-06-24T10:00:00+00:00")  # shipped late
    folder = cover_until(a.write(), A)
    doc = health.account_health(sources.load(folder, use_cache=False), A).document
    lsr = {pm["marketplaceId"]: pm["lateShipmentRate"] for pm in doc["performanceMetrics"]}
    for mkt in ("ATVPDKIKX0DER", "A1F83G8C2ARO7P"):
        assert (lsr[mkt]["orderCount"], lsr[mkt]["lateShipmentCount"]) == (1, 1)


def test_what_if_copy_does_not_use_the_stored_populations(tmp_path, sample_dir):
    """A copy of a dataset with other frames (the removal what-if) computes its own populations
    even when the original came from the cache."""
    import dataclasses

    c = tmp_path / "c"
    _outputs(_load(sample_dir, c))
    data = _load(sample_dir, c)
    assert _served(data)
    before = health.account_health(data, SAMPLE_AS_OF).document
    no_feedback = data.frame("feedback").filter(pl.lit(False))
    copy = dataclasses.replace(data, frames={**data.frames, "feedback": no_feedback})  # cache shared
    after = health.account_health(copy, SAMPLE_AS_OF).document
    b = before["performanceMetrics"][0]["orderDefectRate"]["afn"]["negativeFeedback"]["count"]
    a = after["performanceMetrics"][0]["orderDefectRate"]["afn"]["negativeFeedback"]["count"]
    assert b > 0 and a == 0
    assert json.dumps(health.account_health(data, SAMPLE_AS_OF).document) == json.dumps(before)


def test_one_cold_metrics_run_stores_every_population_it_computed(tmp_path, sample_dir, monkeypatch):
    """The populations are written by a background thread while the next one is computed: after
    the first `account_health` every one of them is on disk, intact, and the next run reads them
    instead of computing any."""
    from analysis.metrics import populations

    c = tmp_path / "c"
    first = _load(sample_dir, c)
    reference = health.account_health(first, SAMPLE_AS_OF).to_json()
    derived = _entry_dir(c) / "derived"
    names = {p.name.rsplit("-", 1)[0] for p in derived.glob("*.parquet")}
    assert names == {*(f"units-{n}" for n in populations._BUILD), "mfn-without-shipments"}
    for table in derived.glob("*.parquet"):
        cache._check(table, json.loads(table.with_suffix(".json").read_text()))
    assert not list(derived.glob(".tmp-*"))

    def computed(*_):
        raise AssertionError("a stored population was computed again")

    monkeypatch.setattr(populations, "_BUILD", dict.fromkeys(populations._BUILD, computed))
    monkeypatch.setattr(populations, "_mfn_orders_without_shipments", computed)
    again = _load(sample_dir, c)
    assert _served(again)
    assert health.account_health(again, SAMPLE_AS_OF).to_json() == reference
    assert not again.cache_notes


@pytest.mark.parametrize("in_place", [True, False], ids=["cells-in-place", "per-value"])
def test_fast_reader_finds_duplicates_that_differ_only_in_padding(tmp_path, monkeypatch, in_place):
    """A repeated-text column (SKU) read as it is by the fast reader, and one whose values carry
    spaces: rows equal once their cells are stripped are duplicates for both readers."""
    from analysis.inputs.sample import ORDERS_HEADER

    monkeypatch.setattr(sources, "_IN_PLACE_ROWS", 10**12 if in_place else -1)

    def row(order: str, sku: str) -> str:
        cells = dict.fromkeys(ORDERS_HEADER, "")
        cells.update(
            {
                "amazon-order-id": order,
                "purchase-date": "2026-05-01T10:00:00+00:00",
                "order-status": "Shipped",
                "fulfillment-channel": "Amazon",
                "sales-channel": "Amazon.com",
                "sku": sku,
                "quantity": "1",
            }
        )
        return "\t".join(cells[h] for h in ORDERS_HEADER)

    folder = tmp_path / "d"
    folder.mkdir()
    plain = [row("111-0000001-0000001", "SKU-1"), row("111-0000002-0000001", "SKU-2")]
    plain.append(plain[0])  # an exact duplicate
    padded = [row("111-0000003-0000001", "SKU-3"), row("111-0000003-0000001", " SKU-3 ")]
    (folder / "a.txt").write_text("\n".join(["\t".join(ORDERS_HEADER), *plain]) + "\n")
    (folder / "b.txt").write_text("\n".join(["\t".join(ORDERS_HEADER), *padded]) + "\n")
    fast = _load(folder, None)
    assert [(f.path.name, f.rows, f.duplicates) for f in fast.files] == [("a.txt", 3, 1), ("b.txt", 2, 1)]
    monkeypatch.setattr(sources, "FAST_PATH", False)
    assert _outputs(_load(folder, None)) == _outputs(fast)


# ----------------------------------------------------------------------------- hostile cache


def _cli(folder: Path, cache_dir: Path, command: str = "metrics") -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "analysis", "--cache-dir", str(cache_dir), command, "--data", str(folder)]
    if command == "metrics":
        args += ["--as-of", str(SAMPLE_AS_OF)]
    return subprocess.run(args, capture_output=True, text=True, cwd=config.PROJ_ROOT, timeout=300)


def _cache_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "cache" in line.lower()]


@pytest.mark.parametrize("edit", ["snapshot", "duplicates"])
def test_edited_meta_is_damaged_not_served(tmp_path, sample_copy, edit):
    """meta.json holds numbers that are shown as they are (Amazon's snapshots, the files' counts):
    one edited value, the JSON still valid, is a damaged entry, rebuilt with one warning line."""
    c = tmp_path / "c"
    cold = _cli(sample_copy, c, "metrics")
    check = _cli(sample_copy, c, "check")
    assert cold.returncode == 0 and check.returncode == 0, cold.stderr + check.stderr
    meta_path = _entry_dir(c) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if edit == "snapshot":
        text = meta_path.read_text(encoding="utf-8")
        assert '"ahrScore": 262' in text and '"ahrScore": 262' in cold.stdout
        meta_path.write_text(text.replace('"ahrScore": 262', '"ahrScore": 162'), encoding="utf-8")
        got = _cli(sample_copy, c, "metrics")
        assert got.stdout == cold.stdout
    else:
        meta["files"][0][4] = 999  # the duplicates of the first file
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        got = _cli(sample_copy, c, "check")
        assert got.stdout == check.stdout and "999" not in got.stdout
    assert got.returncode == 0, got.stderr
    (line,) = _cache_warnings(got.stderr)
    assert line.startswith("warning: The cache of ") and "meta.json" in line and "damaged" in line
    assert _served(_load(sample_copy, c))  # the rebuilt entry serves the next run


def test_meta_without_its_checksum_is_damaged(tmp_path, sample_copy):
    c = tmp_path / "c"
    reference = _outputs(_load(sample_copy, c))
    meta_path = _entry_dir(c) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    del meta[cache._SEAL]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.warns(cache.CacheWarning, match="meta.json has no checksum"):
        data = _load(sample_copy, c)
    assert _outputs(data) == reference


def test_damage_in_the_middle_of_a_big_table_is_caught(tmp_path, sample_copy):
    """A table over 32 MB is checked whole too: a byte changed half-way through (where a sampled
    check would not look) is a damaged table, computed again."""
    c = tmp_path / "c"
    _load(sample_copy, c)
    n = 5_000_000
    big = pl.select(pl.int_range(0, n, dtype=pl.Int64).hash(7).alias("x"))  # does not compress
    _load(sample_copy, c).derived("big-test", lambda: big).collect()
    path = _entry_dir(c) / "derived" / "big-test.parquet"
    size = path.stat().st_size
    assert size > 32 << 20
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    data = _load(sample_copy, c)
    with pytest.warns(cache.CacheWarning, match="big-test was damaged"):
        got = data.derived("big-test", lambda: big).collect()
    assert got.equals(big)
    assert any("big-test" in n for n in data.cache_notes)


def test_derived_tables_read_back_whole_while_they_fit_the_budget(tmp_path, sample_copy, monkeypatch):
    """A derived table is written to the cache either way; then read back whole into memory while
    the entry's tables kept so far fit in `KEEP_BYTES` together (scanning a small table for every
    query costs more than it holds), else scanned from its Parquet; the same rows either way."""
    c = tmp_path / "c"
    df = pl.DataFrame({"x": list(range(1000)), "y": ["a", None] * 500})
    data = _load(sample_copy, c)
    kept = sources.cache_entry(data)._kept
    monkeypatch.setattr(cache, "KEEP_BYTES", kept + int(1.5 * df.estimated_size()))
    first = data.derived("first-test", lambda: df)
    second = data.derived("second-test", lambda: df)  # would pass the budget: scanned
    assert "PARQUET" not in first.explain().upper()
    assert "PARQUET" in second.explain().upper()
    assert first.collect().equals(df) and second.collect().equals(df)
    for name in ("first-test", "second-test"):
        assert pl.read_parquet(_entry_dir(c) / "derived" / f"{name}.parquet").equals(df)


def test_small_rows_just_written_are_read_back_whole_big_ones_scanned(tmp_path, sample_dir, monkeypatch):
    """The run that fills the cache goes on with the rows the entry holds: read once into memory
    when they fit in `KEEP_BYTES`, else scanned from the entry (the memory goes); the same outputs
    either way and as the next run's, served from the cache."""
    first = _load(sample_dir, tmp_path / "c")
    assert not _served(first)
    assert "PARQUET" not in first.frames["orders"].explain().upper()
    monkeypatch.setattr(cache, "KEEP_BYTES", 0)
    scanned = _load(sample_dir, tmp_path / "c2")
    assert not _served(scanned)
    assert "PARQUET" in scanned.frames["orders"].explain().upper()
    served = _load(sample_dir, tmp_path / "c")
    assert _served(served)
    assert _outputs(first) == _outputs(scanned) == _outputs(served)


def test_damaged_derived_table_is_one_warning_line(tmp_path, sample_copy):
    """A damaged population is computed again with a warning line (not only a note nobody sees)."""
    c = tmp_path / "c"
    first = _cli(sample_copy, c)
    (pop,) = _entry_dir(c).glob("derived/units-order_defects-*.parquet")
    pop.write_bytes(pop.read_bytes()[:100])
    got = _cli(sample_copy, c)
    assert got.returncode == 0, got.stderr
    assert got.stdout == first.stdout
    (line,) = _cache_warnings(got.stderr)
    assert line.startswith("warning: The cached table units-order_defects-") and "damaged" in line
    again = _cli(sample_copy, c)
    assert again.stdout == first.stdout and not _cache_warnings(again.stderr)


def test_deleted_derived_folder_is_made_again(tmp_path, sample_copy, monkeypatch):
    """With `derived/` gone the populations are computed, stored again, and read by the next run."""
    from analysis.metrics import populations

    c = tmp_path / "c"
    reference = health.account_health(_load(sample_copy, c), SAMPLE_AS_OF).to_json()
    derived = _entry_dir(c) / "derived"
    stored = sorted(p.name for p in derived.iterdir())
    shutil.rmtree(derived)
    data = _load(sample_copy, c)
    assert _served(data)
    assert health.account_health(data, SAMPLE_AS_OF).to_json() == reference
    assert sorted(p.name for p in derived.iterdir()) == stored

    def computed(*_):
        raise AssertionError("a stored population was computed again")

    monkeypatch.setattr(populations, "_BUILD", dict.fromkeys(populations._BUILD, computed))
    monkeypatch.setattr(populations, "_mfn_orders_without_shipments", computed)
    assert health.account_health(_load(sample_copy, c), SAMPLE_AS_OF).to_json() == reference


@pytest.mark.parametrize("where", ["loop", "loop/sub"])
def test_symlink_loop_as_cache_folder_is_one_warning(tmp_path, where):
    """A cache folder that is a loop of symbolic links cannot be used: one warning line, the files
    are read, the document is the cold run's."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    got = _cli(config.SAMPLE_DIR, tmp_path / where)
    assert got.returncode == 0, got.stderr
    cold = _metrics_no_cache()
    assert got.stdout == cold
    (line,) = _cache_warnings(got.stderr)
    assert line.startswith("warning: The cache folder ") and "cannot be used" in line
    assert "internal error" not in got.stderr and "Traceback" not in got.stderr
    with pytest.warns(cache.CacheWarning, match="cannot be used"):
        data = _load(config.SAMPLE_DIR, tmp_path / where)
    assert sources.cache_entry(data) is None


def _metrics_no_cache() -> str:
    args = [sys.executable, "-m", "analysis", "--no-cache", "metrics", "--data", str(config.SAMPLE_DIR)]
    r = subprocess.run(
        [*args, "--as-of", str(SAMPLE_AS_OF)],
        capture_output=True,
        text=True,
        cwd=config.PROJ_ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_entry_replaced_by_a_file_leaves_nothing_behind(tmp_path, sample_copy):
    """An entry that became a plain file is put aside and removed, as are old leftovers that are
    files (`.gone-*`, `.tmp-*`), by the cleanup."""
    c = tmp_path / "c"
    reference = _outputs(_load(sample_copy, c))
    entry = _entry_dir(c)
    shutil.rmtree(entry)
    entry.write_text("not an entry")
    old = entry.parent / ".gone-1-1"
    old.write_text("left by an earlier run")
    hour_ago = old.stat().st_mtime - 2 * cache._KEEP_UNUSED_S
    os.utime(old, (hour_ago, hour_ago))
    with pytest.warns(cache.CacheWarning, match="damaged"):
        data = _load(sample_copy, c)
    assert _outputs(data) == reference
    assert entry.is_dir() and _served(_load(sample_copy, c))
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]
