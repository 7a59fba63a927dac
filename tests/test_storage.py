"""Tests of oml_helpers.storage: behaviour, edge cases, bad inputs, crashes and concurrent
readers."""

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oml_helpers.storage import (
    APPLICATION_ID,
    DuplicateIdError,
    EmbeddingError,
    EmbeddingStore,
    MetadataError,
    StoreError,
    StoreFileError,
    UnknownIdError,
)

DIM = 16
STORAGE_DIR = Path(__file__).resolve().parents[1] / "oml_helpers"


def vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def filled(tmp_path: Path, n: int = 50) -> EmbeddingStore:
    store = EmbeddingStore.create(tmp_path / "s.db", "test-model", DIM)
    store.add(
        np.arange(n) * 2,
        vectors(n),
        labels=[i % 5 for i in range(n)],
        paths=[f"img/{i}.png" for i in range(n)],
        splits=["train" if i < n // 2 else "validation" for i in range(n)],
        is_query=[None if i < n // 2 else i % 2 == 0 for i in range(n)],
        is_gallery=[None if i < n // 2 else True for i in range(n)],
    )
    return store


def snapshot(store: EmbeddingStore):
    ids, x, meta = store.load()
    return ids.copy(), x.copy(), meta.copy()


def assert_same(a, b) -> None:
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[2].equals(b[2])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def brute_force(x: np.ndarray, q: np.ndarray, k: int, metric: str):
    if metric == "euclidean":
        d = np.linalg.norm(q[:, None, :].astype(np.float64) - x[None].astype(np.float64), axis=2)
    else:
        d = 1 - (q @ x.T) / np.linalg.norm(q, axis=1)[:, None] / np.linalg.norm(x, axis=1)[None]
    order = np.argsort(d, axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


# -- behaviour ------------------------------------------------------------------------------------


def test_round_trip_is_exact_and_survives_reopen(tmp_path):
    x = vectors(30)
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        store.add(np.arange(30)[::-1], x[::-1].copy(), labels=list(range(30))[::-1])
        assert len(store) == 30
    with EmbeddingStore.open(tmp_path / "s.db") as store:
        ids, got, meta = store.load()
        assert (store.model_name, store.dim, store.dtype) == ("m", DIM, "float32")
    assert np.array_equal(ids, np.arange(30)) and got.dtype == np.float32
    assert np.array_equal(got, x)  # bit-exact
    assert meta["label"].tolist() == list(range(30)) and meta["path"].isna().all()


def test_filters(tmp_path):
    with filled(tmp_path) as store:
        _, _, meta = store.load()
        for kwargs, expected in [
            ({"split": "train"}, meta["split"] == "train"),
            ({"label": [1, 3]}, meta["label"].isin([1, 3])),
            ({"is_query": True}, meta["is_query"].fillna(False).astype(bool)),
            (
                {"is_gallery": True, "label": 2},
                meta["is_gallery"].fillna(False).astype(bool) & (meta["label"] == 2),
            ),
            ({"ids": [0, 4, 999]}, meta["id"].isin([0, 4])),
        ]:
            ids, x, sub = store.load(**kwargs)
            assert ids.tolist() == meta["id"][expected.to_numpy(bool)].tolist(), kwargs
            assert len(x) == len(sub) == len(ids)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_search_matches_numpy_brute_force(tmp_path, metric):
    with filled(tmp_path, 200) as store:
        ids, x, meta = store.load()
        queries = vectors(7, seed=1)
        found = store.search(queries, k=5, metric=metric)
        order, dist = brute_force(x, queries, 5, metric)
        assert np.array_equal(found.ids, ids[order])
        assert np.allclose(found.distances, dist, atol=1e-5)
        assert np.all(np.diff(found.distances, axis=1) >= 0)
        assert found.paths[0, 0] == meta.set_index("id").loc[found.ids[0, 0], "path"]
        one = store.search(queries[3], k=5, metric=metric)  # a 1-D query gives 1-D answers
        assert one.ids.shape == (5,) and np.array_equal(one.ids, found.ids[3])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_search_is_exact_for_very_close_neighbours(tmp_path, metric):
    # Trained embeddings of one class can sit ~0.005 apart on the unit sphere, where the float32
    # expansion |q|^2 - 2 q.x + |x|^2 alone would rank wrongly; the store re-ranks exactly.
    rng = np.random.default_rng(0)
    base = rng.standard_normal(DIM)
    x = (base / np.linalg.norm(base) + 1e-3 * rng.standard_normal((2000, DIM))).astype(np.float32)
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        store.add(np.arange(2000), x)
        found = store.search(x[:20], k=10, metric=metric)
    order, dist = brute_force(x.astype(np.float64), x[:20].astype(np.float64), 10, metric)
    assert np.array_equal(found.ids, order)


def test_filtered_search_right_after_open(tmp_path):
    with filled(tmp_path, 60):
        pass
    with EmbeddingStore.open(
        tmp_path / "s.db"
    ) as store:  # no load() first: the filter columns load on demand
        found = store.search(vectors(2, seed=3), k=3, split="train")
        train_ids = store.load(split="train").ids
    assert set(found.ids.ravel()) <= set(train_ids)


def test_search_with_filter_only_returns_matching_items(tmp_path):
    with filled(tmp_path, 100) as store:
        gallery_ids, gallery_x, _ = store.load(is_gallery=True)
        found = store.search(vectors(3, seed=2), k=4, is_gallery=True)
        order, _ = brute_force(gallery_x, vectors(3, seed=2), 4, "euclidean")
        assert np.array_equal(found.ids, gallery_ids[order])


def test_update_and_delete_and_cache_invalidation(tmp_path):
    with filled(tmp_path) as store:
        store.search(vectors(1), k=3)  # fills the cache
        new = vectors(2, seed=9)
        store.update([0, 2], embeddings=new, labels=[100, None], paths=["a.png", "b.png"])
        ids, x, meta = store.load(ids=[0, 2])
        assert np.array_equal(x, new) and meta["label"].isna().tolist() == [False, True]
        assert meta["path"].tolist() == ["a.png", "b.png"] and meta["split"].tolist() == [
            "train",
            "train",
        ]
        assert store.search(new[1], k=1).ids[0] == 2
        store.delete([0, 4])
        assert len(store) == 48 and 0 not in store.load().ids
        assert store.search(new[0], k=1).ids[0] != 0


def test_many_small_batches_in_any_id_order(tmp_path):
    # ids in no particular order
    x, ids = vectors(23), np.random.default_rng(3).permutation(23) * 10
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        for start in range(0, 23, 3):
            store.add(ids[start : start + 3], x[start : start + 3])
    with EmbeddingStore.open(tmp_path / "s.db") as store:
        got_ids, got, _ = store.load()
        order = np.argsort(ids)
        # load() sorts by id
        assert np.array_equal(got_ids, ids[order]) and np.array_equal(got, x[order])
        found = store.search(x[[4, 11]], k=3)
        expected, _ = brute_force(x, x[[4, 11]], 3, "euclidean")
        assert np.array_equal(found.ids, ids[expected])
        assert np.array_equal(
            store.search(x, k=1, label=None, ids=ids[:5].tolist()).ids[:5, 0], ids[:5]
        )


def test_update_and_delete_survive_reopen(tmp_path):
    x = vectors(10)
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        store.add(np.arange(10), x, labels=list(range(10)))
        store.search(x[:1], k=1)  # fill the cache first: it must be refreshed
        new = vectors(2, seed=7)
        store.update([5, 9], embeddings=new)
        x[[5, 9]] = new
        assert np.array_equal(store.load().vectors, x)
        store.delete([1, 2, 8, 9])
        keep = [0, 3, 4, 5, 6, 7]
        ids, got, meta = store.load()
        assert (
            ids.tolist() == keep and np.array_equal(got, x[keep]) and meta["label"].tolist() == keep
        )
        assert store.search(x[5], k=1).ids[0] == 5 and store.search(x[3], k=1).ids[0] == 3
    with EmbeddingStore.open(tmp_path / "s.db") as store:  # and the same from a new connection
        ids, got, _ = store.load()
        assert ids.tolist() == keep and np.array_equal(got, x[keep])


def test_failed_batch_leaves_the_store_as_it_was(tmp_path):
    with filled(tmp_path, 6) as store:
        before = snapshot(store)
        with pytest.raises(DuplicateIdError):  # id 100 would be inserted first, then id 2 fails
            store.add([100, 2], vectors(2, seed=4))
        with pytest.raises(UnknownIdError):
            store.update([4, 77], embeddings=vectors(2, seed=4))
        assert_same(snapshot(store), before)


def test_one_vector_is_one_select(tmp_path):
    x = vectors(5)
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        store.add([3, 1, 4, 15, 9], x)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        (blob,) = conn.execute("SELECT vector FROM items WHERE id = ?", (15,)).fetchone()
    conn.close()
    assert np.array_equal(np.frombuffer(blob, "<f4"), x[3])


def damage(path: Path, item_id: int, value) -> None:
    """Write a vector behind the store's back, as a careless script would (skipping the CHECK)."""
    with sqlite3.connect(path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # SQLite itself refuses it...
            conn.execute("UPDATE items SET vector = ? WHERE id = ?", (value, item_id))
        conn.execute("PRAGMA ignore_check_constraints = ON")  # ...unless told not to check
        conn.execute("UPDATE items SET vector = ? WHERE id = ?", (value, item_id))
    conn.close()


@pytest.mark.parametrize(
    "value, got",
    [
        (np.zeros(10, np.float32).tobytes(), "40 bytes"),
        (np.zeros(DIM, np.float64).tobytes(), "128 bytes"),
        ("text", "a str"),
    ],
)
def test_a_damaged_vector_is_named(tmp_path, value, got):
    filled(tmp_path).close()
    damage(tmp_path / "s.db", 42, value)
    for use in (lambda s: s.search(vectors(1), k=3), lambda s: s.load(), lambda s: s.load(label=1)):
        with EmbeddingStore.open(tmp_path / "s.db") as store:
            with pytest.raises(
                StoreFileError, match=f"damaged: the vector of item id 42 is {got}, not 64 bytes"
            ):
                use(store)
    with EmbeddingStore.open(tmp_path / "s.db") as store:  # the way out the message names
        store.update([42], embeddings=vectors(1))
        assert len(store.search(vectors(1), k=3).ids[0]) == 3


def test_other_connection_sees_writes(tmp_path):
    with filled(tmp_path) as writer, EmbeddingStore.open(tmp_path / "s.db") as reader:
        assert len(reader.load().ids) == 50
        writer.add([1001], vectors(1, seed=5))
        # cache refreshed (data_version)
        assert reader.search(vectors(1, seed=5)[0], k=1).ids[0] == 1001


def test_edge_cases_of_search(tmp_path):
    with EmbeddingStore.create(tmp_path / "s.db", "m", DIM) as store:
        empty = store.search(vectors(2), k=3)
        assert empty.ids.shape == (2, 0) and empty.distances.shape == (2, 0)
        store.add([1, 2], vectors(2))
        assert store.search(vectors(1)[0], k=10).ids.shape == (2,)
        for k in (0, -1, 1.5, True):
            with pytest.raises(StoreError, match="k must be"):
                store.search(vectors(1), k=k)
        with pytest.raises(StoreError, match="metric"):
            store.search(vectors(1), metric="manhattan")
        with pytest.raises(StoreError, match="Unknown filter"):
            store.search(vectors(1), colour="red")


def test_importing_storage_does_not_import_torch():
    # load the storage modules without the package __init__, which imports the training helpers
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('oml_helpers'); "
        f"pkg.__path__ = [{str(STORAGE_DIR)!r}]; sys.modules['oml_helpers'] = pkg\n"
        "import oml_helpers.storage\n"
        "assert 'torch' not in sys.modules, 'storage imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- bad input: a clear error and nothing written -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"embeddings": vectors(3).astype(np.float64)}, EmbeddingError, r"astype\(np.float32\)"),
        ({"embeddings": vectors(3, dim=DIM + 1)}, EmbeddingError, "shape"),
        ({"embeddings": vectors(2)}, EmbeddingError, "shape"),
        ({"embeddings": np.full((3, DIM), np.nan, np.float32)}, EmbeddingError, "NaN"),
        ({"embeddings": np.full((3, DIM), np.inf, np.float32)}, EmbeddingError, "inf"),
        ({"embeddings": np.full((3, DIM), 1e20, np.float32)}, EmbeddingError, "normalise"),
        ({"embeddings": np.full((3, DIM), 1e-20, np.float32)}, EmbeddingError, "normalise"),
        ({"embeddings": vectors(3).tolist()}, EmbeddingError, "numpy array"),
        ({"ids": [500, 501, 500]}, DuplicateIdError, "repeat"),
        ({"ids": [500, 501, 0]}, DuplicateIdError, "already stored"),
        ({"ids": [1.5, 2.5, 3.5]}, MetadataError, "integers"),
        ({"labels": [1, 2]}, MetadataError, "one per id"),
        ({"paths": ["a", "b", "c", "d"]}, MetadataError, "one per id"),
        ({"labels": ["cat", 1, 2]}, MetadataError, "int"),
        ({"is_query": [1, 0, 1]}, MetadataError, "bool"),
    ],
)
def test_bad_add_raises_and_writes_nothing(tmp_path, kwargs, error, message):
    with filled(tmp_path) as store:
        before = snapshot(store)
        args = {"ids": [500, 501, 502], "embeddings": vectors(3, seed=3), **kwargs}
        with pytest.raises(error, match=message):
            store.add(**args)
        assert issubclass(error, ValueError)
        assert_same(snapshot(store), before)


def test_bad_update_and_delete_write_nothing(tmp_path):
    with filled(tmp_path) as store:
        before = snapshot(store)
        with pytest.raises(UnknownIdError, match="not stored"):
            store.update([0, 777], labels=[1, 2])
        with pytest.raises(UnknownIdError, match="not stored"):
            store.delete([0, 2, 777])
        with pytest.raises(EmbeddingError):
            store.update([0], embeddings=np.zeros((1, DIM)))
        with pytest.raises(MetadataError, match="Nothing to update"):
            store.update([0])
        assert_same(snapshot(store), before)


def test_create_refuses_an_existing_file_and_bad_settings(tmp_path):
    filled(tmp_path).close()
    with pytest.raises(StoreFileError, match="already exists"):
        EmbeddingStore.create(tmp_path / "s.db", "m", DIM)
    with pytest.raises(StoreError, match="float32"):
        EmbeddingStore.create(tmp_path / "b.db", "m", DIM, dtype="float64")
    with pytest.raises(StoreError, match="dim"):
        EmbeddingStore.create(tmp_path / "c.db", "m", 0)
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "c.db").exists()


# -- files that are not stores: a clear error, and the file is untouched ---------------------------


def test_open_missing_file(tmp_path):
    with pytest.raises(StoreFileError, match="No store"):
        EmbeddingStore.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_open_random_bytes(tmp_path):
    path = tmp_path / "random.db"
    path.write_bytes(np.random.default_rng(0).bytes(10_000))
    before = digest(path)
    with pytest.raises(StoreFileError, match="not a SQLite database"):
        EmbeddingStore.open(path)
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == ["random.db"]


def test_open_database_of_another_schema(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
        conn.execute("INSERT INTO people VALUES ('ada')")
    conn.close()
    before = digest(path)
    with pytest.raises(StoreFileError, match="not an embedding store"):
        EmbeddingStore.open(path)
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == ["other.db"]


def test_open_store_of_an_older_schema_version(tmp_path):
    path = tmp_path / "old.db"  # schema 3 kept vectors in chunks with int8 codes
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 3")
        for table in (
            "meta (key, value)",
            "items (id)",
            "chunks (chunk, n, ids, vectors, codes, stats)",
        ):
            conn.execute(f"CREATE TABLE {table}")
    conn.close()
    with pytest.raises(
        StoreFileError, match="schema version 3; this code reads version 5. Create the store"
    ):
        EmbeddingStore.open(path)


def test_open_store_of_a_newer_schema_version(tmp_path):
    filled(tmp_path).close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreFileError, match="schema version 99"):
        EmbeddingStore.open(tmp_path / "s.db")


# -- crashes and concurrency ---------------------------------------------------------------------

CHILD = """
import sys, time, types
import numpy as np
pkg = types.ModuleType("oml_helpers")
pkg.__path__ = [sys.argv[2]]
sys.modules["oml_helpers"] = pkg
import oml_helpers.storage as storage
store = storage.EmbeddingStore.open(sys.argv[1])
# small page cache: uncommitted pages spill into the WAL file
store._conn.execute("PRAGMA cache_size = 20")


class HalfThenWait:  # deep inside add(): half the rows inserted, uncommitted
    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def executemany(self, sql, rows):
        rows = list(rows)
        self.conn.executemany(sql, rows[:len(rows) // 2])
        print("inserting", flush=True)  # tell the parent, then wait to be killed
        time.sleep(60)


store._conn = HalfThenWait(store._conn)
n = 200_000
store.add(np.arange(10_000, 10_000 + n), np.ones((n, {dim}), np.float32), labels=[1] * n)
print("committed", flush=True)
"""


def test_killed_writer_leaves_store_as_it_was(tmp_path):
    with filled(tmp_path) as store:
        before = snapshot(store)
    wal = tmp_path / "s.db-wal"
    wal_before = wal.stat().st_size if wal.exists() else 0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(dim=DIM), str(tmp_path / "s.db"), str(STORAGE_DIR)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "inserting"
        assert wal.stat().st_size > wal_before  # uncommitted rows really reached the file
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    with EmbeddingStore.open(tmp_path / "s.db") as store:
        assert_same(snapshot(store), before)
        store.add([999_999], vectors(1))  # and it still takes writes
        assert len(store) == 51


def test_reader_reads_while_a_writer_holds_a_transaction(tmp_path):
    with filled(tmp_path) as store:
        before = snapshot(store)
    writer = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    # uncommitted
    writer.execute("INSERT INTO items (id, vector) VALUES (12345, ?)", (vectors(1).tobytes(),))
    try:
        start = time.perf_counter()
        with EmbeddingStore.open(tmp_path / "s.db") as reader:
            # the uncommitted row is invisible, and nothing blocks
            assert_same(snapshot(reader), before)
            assert len(reader.search(vectors(1), k=3).ids[0]) == 3
            assert time.perf_counter() - start < 2
            writer.execute("COMMIT")
            assert 12345 in reader.load().ids
    finally:
        writer.close()
