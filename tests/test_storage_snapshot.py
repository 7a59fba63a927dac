"""Tests of the store's snapshot (oml_helpers.storage_snapshot): used when fresh, stale after any
other
write, rebuilt from the rows, always equal to them; and of the duplicate-id message of ``add``."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from oml_helpers import storage_read
from oml_helpers.storage import DuplicateIdError, EmbeddingStore, StoreFileError

DIM = 8


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def make(tmp_path: Path, n: int = 30) -> Path:
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        store.add(np.arange(n) * 3, vectors(n), labels=list(range(n)))
    return tmp_path / "s.db"


def rows_and_snapshot(path: Path) -> tuple:
    """The rows' ids and vectors, the snapshot's, and whether its generation is meta's (plain
    sqlite3)."""
    with sqlite3.connect(path) as conn:
        items = conn.execute("SELECT id, vector FROM items ORDER BY id").fetchall()
        ids, blobs = [i for i, _ in items], [b for _, b in items]
        made, snap_ids, snap_vectors = conn.execute(
            "SELECT generation, ids, vectors FROM snapshot"
        ).fetchone()
        current = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    conn.close()
    rows = np.array(ids, np.int64), np.frombuffer(b"".join(blobs), "<f4").reshape(len(ids), DIM)
    snap = np.frombuffer(snap_ids, "<i8"), np.frombuffer(snap_vectors, "<f4").reshape(-1, DIM)
    return rows, snap, made == current


@pytest.fixture
def row_reads(monkeypatch) -> list:
    """Counts the reads of every row (the slow path) that any store makes."""
    calls = []
    original = storage_read.read_rows

    def spy(conn, path, dim, with_meta):
        calls.append(with_meta)
        return original(conn, path, dim, with_meta)

    monkeypatch.setattr(storage_read, "read_rows", spy)
    return calls


def expected_nearest(path: Path, query: np.ndarray) -> int:
    (ids, x), _, _ = rows_and_snapshot(path)
    return int(ids[np.argmin(np.linalg.norm(x.astype(np.float64) - query, axis=1))])


def test_add_names_only_the_ids_stored_before_the_batch(tmp_path):
    path = make(tmp_path, 3)  # ids 0, 3, 6
    with EmbeddingStore.open(path) as store:
        with pytest.raises(DuplicateIdError, match=r"^1 id\(s\) are already stored, e.g. \[3\];"):
            store.add([100_000, 3], vectors(2, seed=1))  # 100000 is inserted first, then 3 fails
        with pytest.raises(
            DuplicateIdError, match=r"^2 id\(s\) are already stored, e.g. \[0, 6\];"
        ):
            store.add([6, 7, 0], vectors(3, seed=1))
        assert store.load().ids.tolist() == [0, 3, 6]
        store.add([100_000], vectors(1, seed=1))  # the failed batches left nothing behind
        assert len(store) == 4


def test_a_fresh_snapshot_is_read_instead_of_the_rows(tmp_path, row_reads):
    path = make(tmp_path)
    x = vectors(30)
    with EmbeddingStore.open(path) as store:
        assert store.search(x[7], k=1).ids[0] == 21
        # metadata from the rows, vectors from the snapshot
        ids, got, meta = store.load(label=[4, 5])
        assert (
            ids.tolist() == [12, 15]
            and np.array_equal(got, x[[4, 5]])
            and meta["label"].tolist() == [4, 5]
        )
    assert row_reads == []


def test_close_after_writes_leaves_the_snapshot_equal_to_the_rows(tmp_path, row_reads):
    path = make(tmp_path)
    with EmbeddingStore.open(path) as store:
        store.update([3, 9], embeddings=vectors(2, seed=5))
        store.update([0], labels=[99])  # metadata only: nothing to rewrite
        store.delete([0, 27, 60])
        store.add([1, 1000], vectors(2, seed=6))
        assert not rows_and_snapshot(path)[2]  # stale until close: one rewrite per batch of writes
        assert len(store) == 29 and store.search(vectors(2, seed=6)[1], k=1).ids[0] == 1000
    rows, snap, fresh = rows_and_snapshot(path)
    assert fresh and np.array_equal(rows[0], snap[0]) and np.array_equal(rows[1], snap[1])
    with EmbeddingStore.open(path) as store:  # an empty store too
        store.delete(store.load().ids)
        assert len(store) == 0 and store.search(vectors(1), k=3).ids.shape == (1, 0)
    rows, snap, fresh = rows_and_snapshot(path)
    assert fresh and len(snap[0]) == 0 and snap[1].shape == (0, DIM)
    assert row_reads == []  # every write started from the cache or the snapshot


@pytest.mark.parametrize(
    "sql, params",
    [
        ("UPDATE items SET vector = ? WHERE id = 6", (np.full(DIM, 50, np.float32).tobytes(),)),
        (
            "INSERT INTO items (id, vector) VALUES (5000, ?)",
            (np.full(DIM, 50, np.float32).tobytes(),),
        ),
        ("DELETE FROM items WHERE id = 3", ()),
        ("UPDATE items SET id = 5000 WHERE id = 6", ()),
    ],
)
def test_a_write_behind_the_stores_back_makes_the_snapshot_stale(tmp_path, row_reads, sql, params):
    path = make(tmp_path)
    with sqlite3.connect(path) as conn:  # a plain script: the triggers bump the generation
        conn.execute(sql, params)
    conn.close()
    _, _, fresh = rows_and_snapshot(path)
    assert not fresh
    query = np.full(DIM, 49, np.float32) if "50" in str(params) else vectors(30)[1]
    with EmbeddingStore.open(path) as store:
        # read from the rows
        assert store.search(query, k=1).ids[0] == expected_nearest(path, query)
        assert len(row_reads) == 1
        store.update([0], embeddings=vectors(1, seed=2))  # the next write rebuilds the snapshot
    rows, snap, fresh = rows_and_snapshot(path)
    assert fresh and np.array_equal(rows[0], snap[0]) and np.array_equal(rows[1], snap[1])
    with EmbeddingStore.open(path) as store:
        assert store.search(query, k=1).ids[0] == expected_nearest(path, query)
    assert len(row_reads) == 1


def test_a_metadata_write_behind_the_back_keeps_the_snapshot(tmp_path, row_reads):
    with sqlite3.connect(make(tmp_path)) as conn:
        conn.execute("UPDATE items SET label = 7, path = 'x.png' WHERE id = 6")
    conn.close()
    with EmbeddingStore.open(tmp_path / "s.db") as store:
        assert store.load(ids=[6]).metadata["path"].tolist() == ["x.png"]
    assert row_reads == []


@pytest.mark.parametrize("column", ["ids", "vectors"])
def test_a_snapshot_blob_of_the_wrong_length_falls_back_to_the_rows(tmp_path, row_reads, column):
    path = make(tmp_path)
    with sqlite3.connect(path) as conn:  # the generation stays equal: only the length tells
        conn.execute(f"UPDATE snapshot SET {column} = substr({column}, 1, length({column}) - 4)")
    conn.close()
    x = vectors(30)
    with EmbeddingStore.open(path) as store:
        assert store.search(x[11], k=1).ids[0] == 33 and np.array_equal(store.load().vectors, x)
        assert row_reads == [False, True]  # search (vectors), then load (vectors and metadata)
        store.add([1], vectors(1, seed=3))  # rebuilt from the cache those reads left
        assert row_reads == [False, True]
    rows, snap, fresh = rows_and_snapshot(path)
    assert fresh and np.array_equal(rows[0], snap[0]) and np.array_equal(rows[1], snap[1])


def test_the_triggers_survive_writes_and_failed_writes(tmp_path):
    path = make(tmp_path, 3)
    with EmbeddingStore.open(path) as store:
        store.add([10], vectors(1))
        with pytest.raises(DuplicateIdError):
            store.add([11, 10], vectors(2))
        store.delete([10])
    with sqlite3.connect(path) as conn:
        triggers = sorted(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        )
    conn.close()
    assert triggers == ["items_changed", "items_deleted", "items_inserted"]


def test_a_write_with_damaged_rows_elsewhere_succeeds_and_close_leaves_the_snapshot_stale(
    tmp_path, row_reads
):
    path = make(tmp_path)
    with sqlite3.connect(path) as conn:  # two damaged rows, written behind the store's back
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE items SET vector = x'00' WHERE id IN (6, 9)")
    conn.close()
    with EmbeddingStore.open(path) as store:
        store.update([6], embeddings=vectors(1, seed=4))  # the way out, one item at a time
    assert row_reads == [False]  # close read the rows, found id 9 damaged, left the snapshot stale
    with sqlite3.connect(path) as conn:
        assert (
            conn.execute(
                "SELECT generation != (SELECT CAST(value AS INTEGER) FROM meta WHERE key = "
                "'generation') FROM snapshot"
            ).fetchone()[0]
            == 1
        )
    conn.close()
    with EmbeddingStore.open(path) as store:
        with pytest.raises(StoreFileError, match="vector of item id 9 is 1 bytes"):
            store.search(vectors(1), k=1)
        store.update([9], embeddings=vectors(1, seed=5))
    rows, snap, fresh = rows_and_snapshot(path)
    assert fresh and np.array_equal(rows[0], snap[0]) and np.array_equal(rows[1], snap[1])


# the vectors alone fit; then ids and vectors fit
@pytest.mark.parametrize("limit_over", [0, 8 * 30])
def test_a_matrix_past_sqlites_length_limit_leaves_no_snapshot_and_close_does_not_fail(
    tmp_path, row_reads, limit_over
):
    path = make(tmp_path)
    with EmbeddingStore.open(path) as store:
        # a limit the vectors alone fit under, but not the row (ids + vectors): no snapshot, no
        # error
        store._conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 31 * DIM * 4 + limit_over)
        store.add([1], vectors(1, seed=7))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM snapshot").fetchone()[0] == 0
    conn.close()
    with EmbeddingStore.open(path) as store:  # reads the rows, still right
        assert len(store.load().ids) == 31 and row_reads == [True]
