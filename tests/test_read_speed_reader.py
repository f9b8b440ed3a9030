"""The speed-ups of the fast reader change nothing it reads: the repeated columns of a big file
typed in parallel give the rows, reasons and counts of the one-by-one typing, and the sort-based
search for repeated hashes is `Series.is_duplicated`."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analysis import config
from analysis.inputs import sources


@pytest.mark.parametrize("n", [0, 1, 2, 50, 5000])
def test_repeats_is_is_duplicated(n):
    rng = np.random.default_rng(n)
    for high in (3, 2**63):
        h = rng.integers(0, high, n, dtype=np.uint64)
        assert sources._repeats(h).to_list() == pl.Series(h).is_duplicated().to_list()
        assert sources._repeats(pl.Series(h)).to_list() == pl.Series(h).is_duplicated().to_list()


def _read(folder) -> sources.Dataset:
    return sources.load(folder, use_cache=False)


def _same(a: sources.Dataset, b: sources.Dataset) -> None:
    for kind in sources.TABLE_KINDS:
        assert a.frame(kind).collect().equals(b.frame(kind).collect()), kind
    assert a.quarantine.equals(b.quarantine)
    assert [(f.path.name, f.rows, f.quarantined, f.duplicates, f.accepted) for f in a.files] == [
        (f.path.name, f.rows, f.quarantined, f.duplicates, f.accepted) for f in b.files
    ]
    assert a.notes == b.notes


def test_parallel_typing_reads_what_the_sequential_one_reads(tmp_path, monkeypatch):
    """Every file of the sample, and an All Orders file with broken cells, blank values, padded
    and repeated rows: typed with its repeated columns in parallel (as a file of a million rows
    is), one after the other, and cell by cell (as a small file is)."""
    from analysis.inputs.sample import ORDERS_HEADER

    folder = tmp_path / "data"
    folder.mkdir()
    for p in config.SAMPLE_DIR.iterdir():
        if p.is_file():
            (folder / p.name).write_bytes(p.read_bytes())

    def row(i: int, **cells: str) -> str:
        base = dict.fromkeys(ORDERS_HEADER, "")
        base.update(
            {
                "amazon-order-id": f"111-{i:07d}-0000001",
                "purchase-date": "2026-05-01T10:00:00+00:00",
                "last-updated-date": "2026-05-02T10:00:00+00:00",
                "order-status": "Shipped",
                "fulfillment-channel": "Merchant" if i % 2 else "Amazon",
                "sales-channel": "Amazon.com",
                "sku": f"SKU-{i % 7}",
                "quantity": str(1 + i % 3),
                "item-price": "9.99",
                "is-business-order": "false",
            }
        )
        base.update(cells)
        return "\t".join(base[h] for h in ORDERS_HEADER)

    lines = [row(i) for i in range(300)]
    lines += [
        row(400, quantity="-1"),
        row(401, **{"order-status": "Lost"}),
        row(402, sku=" SKU-1 "),
        row(403, quantity=""),
        row(404, **{"is-business-order": "maybe"}),
        row(405, **{"item-price": "abc"}),
        row(5),
        row(6),
    ]
    (folder / "extra_orders.txt").write_text("\t".join(ORDERS_HEADER) + "\n" + "\n".join(lines) + "\n")
    fast = sources._fast_export
    read_fast: list[str] = []

    def spy(shown, *rest):
        out = fast(shown, *rest)
        if out is not None:
            read_fast.append(shown)
        return out

    monkeypatch.setattr(sources, "_fast_export", spy)
    monkeypatch.setattr(sources, "_IN_PLACE_ROWS", -1)  # typed once per distinct value
    monkeypatch.setattr(sources, "_PARALLEL_ROWS", 10**12)
    one_by_one = _read(folder)
    monkeypatch.setattr(sources, "_PARALLEL_ROWS", 0)
    parallel = _read(folder)
    _same(one_by_one, parallel)
    monkeypatch.setattr(sources, "_IN_PLACE_ROWS", 10**12)  # every cell where it stands
    _same(one_by_one, _read(folder))
    assert "extra_orders.txt" in read_fast
    assert parallel.quarantine.filter(pl.col("file") == "extra_orders.txt").height == 5
    assert any(f.duplicates for f in parallel.files)


@pytest.mark.parametrize(
    "body",
    [
        "a\tb\nZürich ção\t€\n".encode(),  # characters of 2 and 3 bytes, cut by every block edge
        "\ufeffa\tb\n1\t2\n".encode(),  # a BOM at the start
        "a\tb\n1\t2\n\ufeffa\tb\n".encode(),  # a BOM inside: files joined together
        "a\tb\n1\t\ufffd2\n".encode(),  # U+FFFD
        b"a\tb\n1\t\xff2\n",  # not UTF-8
        b"a\tb\n1\t\xe2\x82",  # cut inside a character at the end
        b"a\tb\r\n1\t2\r\n",  # CR
        b'a\tb\n"1"\t2\n',  # a quote
        b"a\tb\n1\t2",  # no line end at the end (read as it is)
        b"a\tb\n1\t2\n",  # plain ASCII
    ],
)
@pytest.mark.parametrize("block", [4, 5, 7, 16, 1 << 20])  # a block holds a BOM
def test_probe_says_the_same_whatever_the_block_size(tmp_path, monkeypatch, body, block):
    """The plain-file checks and the hash, made block by block in one reused buffer (and the
    UTF-8 check a piece at a time), give what one block of the whole file gives."""
    import hashlib

    path = tmp_path / "f.txt"
    path.write_bytes(body)

    def probe() -> tuple[sources._Probe, str]:
        hasher = hashlib.sha256()
        with open(path, "rb") as fh:
            return sources._probe_blocks(
                sources._file_blocks(fh), sources._Probe(), hasher
            ), hasher.hexdigest()

    whole, digest = probe()
    monkeypatch.setattr(sources, "_BLOCK", block)
    monkeypatch.setattr(sources, "_DECODE", max(1, block // 2))
    got, got_digest = probe()
    assert got_digest == digest == hashlib.sha256(body).hexdigest()
    assert got.plain == whole.plain
    if whole.plain:  # (a file found not plain is read line by line: its other checks stop there)
        assert got == whole
    expect_plain = b"\r" not in body and b"\xff" not in body and not body.endswith(b"\xe2\x82")
    expect_plain &= body.count("\ufeff".encode()) <= int(body.startswith("\ufeff".encode()))
    assert whole.plain == expect_plain
    assert whole.damaged == ("\ufffd".encode() in body)
    assert whole.quote == (b'"' in body)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 40])
def test_file_blocks_are_the_files_bytes(tmp_path, monkeypatch, size):
    """Blocks of _BLOCK bytes read into one buffer (sized to the file when it is smaller) join
    into the file's bytes, at and around the block size."""
    body = (b"0123456789abcdef" * 3)[:size]
    path = tmp_path / "f.txt"
    path.write_bytes(body)
    monkeypatch.setattr(sources, "_BLOCK", 16)
    with open(path, "rb") as fh:
        got = [bytes(b) for b in sources._file_blocks(fh)]
    assert b"".join(got) == body
    assert all(len(b) <= 16 for b in got)


def test_a_small_file_is_checked_without_a_block_sized_buffer(tmp_path):
    """A file of a few bytes is read into a buffer its size, not a 16 MB block (zeroing one cost
    a small account ~1 ms per file, most of the check of its small exports)."""
    import tracemalloc

    path = tmp_path / "f.txt"
    path.write_bytes(b"a\tb\n1\t2\n")
    tracemalloc.start()
    try:
        with open(path, "rb") as fh:
            got = b"".join(bytes(b) for b in sources._file_blocks(fh))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == b"a\tb\n1\t2\n"
    assert sources._BLOCK >= 1 << 20 and peak < 256 << 10


def test_a_file_that_grows_while_checked_is_read_in_big_blocks(tmp_path):
    """The buffer is sized from the file's size when opened, but never under 64 kB: a file that
    grows meanwhile (or whose size the file system reports as 0) is not read a few bytes at a time."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"a")
    with open(path, "rb") as fh:
        with open(path, "ab") as more:
            more.write(b"x" * (1 << 20))
        blocks = [len(b) for b in sources._file_blocks(fh)]
    assert sum(blocks) == (1 << 20) + 1
    assert len(blocks) <= 17
