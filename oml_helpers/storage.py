"""Embeddings in one SQLite file, one row per item, with OML's metadata and an exact top-k search.

``items`` has one row per item: ``id``, ``label``, ``path``, ``split``, ``is_query``, ``is_gallery`` and
``vector``, a little-endian float32 BLOB of exactly ``4 * dim`` bytes; ``meta`` records the model name,
dimension, dtype and schema version. One vector by hand: ``SELECT vector FROM items WHERE id = ?``.
Each write is one transaction in WAL mode: a bad or interrupted batch leaves the file as it was, and
readers keep reading during a write. Searches use all vectors as one float32 matrix, kept in memory
until any connection writes (``PRAGMA data_version``): a float32 product picks a shortlist that
provably holds the true top ``k`` (``float32_scores``), float64 distances rank it, so the answers are
a float64 brute force's. One store object per thread or process; numpy, pandas and sqlite3 only.
"""

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from oml_helpers.storage_checks import (  # noqa: F401 (the result types and errors belong to this API)
    FILTERS, METADATA_COLUMNS, VECTOR_DTYPE, DuplicateIdError, EmbeddingError, Filter, LoadResult, MetadataError,
    SearchResult, StoreError, StoreFileError, UnknownIdError, check_ids, check_metadata, check_search_options,
    check_vectors, damaged_error, read_meta, select_rows)

SCHEMA_VERSION = 4  # 4: one float32 BLOB per item, no int8 codes (3 kept chunks of vectors and codes)
APPLICATION_ID = 0x4F4D4C45  # "OMLE" in the file header: marks the file as an embedding store
READ_ROWS = 8192  # rows joined at a time when the vectors are read: bounds the extra memory
SCORE_BLOCK = 1 << 25  # float32 scores computed at a time (128 MiB)
U = 2.0 ** -24  # float32's unit roundoff
SCHEMA = """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, label INTEGER, path TEXT, split TEXT,
    is_query INTEGER CHECK (is_query IN (0, 1)), is_gallery INTEGER CHECK (is_gallery IN (0, 1)),
    vector BLOB NOT NULL CHECK (typeof(vector) = 'blob' AND length(vector) = {nbytes}))"""


def _connect(path: Path) -> sqlite3.Connection:
    """WAL, a busy timeout and durable commits; the store issues BEGIN and COMMIT itself."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA page_size = 65536")  # new files only: a full read visits fewer pages
    conn.execute("PRAGMA mmap_size = 1073741824")  # reads map the file instead of copying pages
    conn.execute("PRAGMA journal_mode = WAL")  # readers read while one writer writes
    conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk when add() returns
    return conn


def float32_scores(matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, metric: str) -> tuple:
    """Scores ``[n_queries, n]`` from one float32 matrix product, lower is nearer, and each query's margin.

    Scores are ``|x|^2 - 2 q.x`` (euclidean) or ``-q.x / |x|`` (cosine; 0 for x = 0), and every one is
    within ``margin`` of its exact value: ``gamma_d |q| |x|`` bounds the error of a float32 dot product
    of ``d`` terms in any order, and a few ``u`` cover the float32 norms and the last operations.
    """
    d, largest, q_norms = matrix.shape[1], np.sqrt(sq.max(initial=0)), np.linalg.norm(queries.astype(np.float64), axis=1)
    gamma = d * U / (1 - d * U) if d * U < 0.5 else np.inf
    scores = (matrix @ queries[0])[None] if len(queries) == 1 else queries @ matrix.T
    if metric == "euclidean":
        scores *= -2
        scores += sq.astype(np.float32)
        margin = (2 * gamma + 3 * U) * q_norms * largest + 3 * U * largest ** 2
    else:
        norms = np.sqrt(sq)
        scores *= -np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
        margin = (gamma + 3 * U) * q_norms
    return scores, 1.01 * margin + d * 2.0 ** -90  # 1.01: the bound's own rounding; 2**-90: underflow


def shortlists(matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, k: int, metric: str) -> List[np.ndarray]:
    """Rows that may hold each query's ``k`` nearest: those scoring within twice the margin of the ``k``-th.

    At least ``k`` rows truly score at most the ``k``-th float32 score plus the margin, so a row of the
    true top ``k`` cannot score, in float32, above that plus a second margin.
    """
    found: List[np.ndarray] = []
    block = max(1, SCORE_BLOCK // max(len(matrix), 1))  # bounds the [block, n] float32 scores
    for start in range(0, len(queries), block):
        scores, margin = float32_scores(matrix, sq, queries[start:start + block], metric)
        kth = np.partition(scores, k - 1, axis=1)[:, k - 1]
        rows, columns = np.nonzero(scores <= (kth + 2 * margin)[:, None])
        found += np.split(columns, np.searchsorted(rows, np.arange(1, len(scores))))
    return found


def top_k(matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, k: int, metric: str) -> tuple:
    """Rows (int64) of ``matrix`` nearest to each query and their float32 distances, both ``[n_queries, k]``,
    ranked in float64, ties to the lower row; ``sq``: the rows' float64 squared norms; ``k`` at most ``n``."""
    found = np.zeros((len(queries), k), np.int64)
    distances = np.zeros((len(queries), k), np.float64)
    if k == 0:
        return found, distances.astype(np.float32)
    for i, (query, rows) in enumerate(zip(queries.astype(np.float64), shortlists(matrix, sq, queries, k, metric))):
        vectors = matrix[rows].astype(np.float64)
        if metric == "euclidean":
            exact = np.sqrt(((vectors - query) ** 2).sum(axis=1))
        else:
            denominator = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
            exact = 1 - np.divide(vectors @ query, denominator, out=np.zeros(len(rows)), where=denominator > 0)
        best = np.lexsort((rows, exact))[:k]
        found[i], distances[i] = rows[best], exact[best]
    return found, distances.astype(np.float32)


class EmbeddingStore:
    """An embedding store in one SQLite file; make it with ``create`` or ``open``, use it with ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, model_name: str, dim: int, dtype: str):
        """Not for direct use: call ``EmbeddingStore.create`` or ``EmbeddingStore.open``."""
        self._conn, self.path, self.model_name, self.dim, self.dtype = conn, path, model_name, dim, dtype
        self._cache: Optional[dict] = None  # ids, matrix (id order), meta (on first filter), version

    @classmethod
    def create(cls, path: Union[str, Path], model_name: str, dim: int, dtype: str = "float32") -> "EmbeddingStore":
        """A new, empty store at ``path`` (which must not exist) that records model name, ``dim`` and dtype.

        Raises:
            StoreFileError: If the file exists. StoreError: If ``dim`` or ``dtype`` (only float32) is not usable.
        """
        path = Path(path)
        if path.exists():
            raise StoreFileError(f"{path} already exists. Open it with EmbeddingStore.open, or delete it first.")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise StoreError(f"dim must be a positive integer, got {dim!r}.")
        if dtype != "float32":
            raise StoreError(f"dtype={dtype!r} is not supported; the store keeps float32 vectors.")
        conn = _connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in SCHEMA.format(nbytes=VECTOR_DTYPE.itemsize * int(dim)).split(";"):
                conn.execute(statement)
            meta = {"schema_version": SCHEMA_VERSION, "model_name": model_name, "dim": int(dim), "dtype": dtype}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise
        return cls(conn, path, str(model_name), int(dim), dtype)

    @classmethod
    def open(cls, path: Union[str, Path]) -> "EmbeddingStore":
        """Open an existing store; a file that is not one gets StoreFileError and is left untouched."""
        path = Path(path)
        if not path.is_file():
            raise StoreFileError(f"No store at {path}. Check the path, or make one with EmbeddingStore.create.")
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise StoreFileError(f"{path} is not a SQLite database, so not an embedding store.")
        meta = read_meta(path, APPLICATION_ID, SCHEMA_VERSION)  # read-only: nothing is written to a file that is not a store
        return cls(_connect(path), path, meta["model_name"], int(meta["dim"]), meta["dtype"])

    def close(self) -> None:
        """Close the connection and drop the cached vectors."""
        self._cache = None
        self._conn.close()

    def __enter__(self) -> "EmbeddingStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM items").fetchone()[0]

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, model_name={self.model_name!r}, dim={self.dim}, n={len(self)})"

    def add(self, ids: Sequence[int], embeddings: np.ndarray, labels: Optional[Sequence] = None,
            paths: Optional[Sequence] = None, splits: Optional[Sequence] = None,
            is_query: Optional[Sequence] = None, is_gallery: Optional[Sequence] = None) -> None:
        """Insert new items (distinct ids, float32 ``[len(ids), dim]``) in one transaction: all or none.

        Metadata lists hold one value per id (int, str, str, bool, bool; None for empty), or are None.
        Raises EmbeddingError, MetadataError or DuplicateIdError naming the problem; nothing is written.
        """
        ids = check_ids(ids, unique=True)
        vectors = check_vectors(embeddings, len(ids), self.dim, f"embeddings (model {self.model_name!r})")
        columns = [[None] * len(ids) if c is None else c
                   for c in check_metadata(len(ids), labels, paths, splits, is_query, is_gallery)]
        with self._transaction():
            try:
                self._conn.executemany(f"INSERT INTO items (id, {', '.join(METADATA_COLUMNS)}, vector) VALUES "
                                       "(?, ?, ?, ?, ?, ?, ?)", zip(ids.tolist(), *columns, map(bytes, vectors)))
            except sqlite3.IntegrityError as e:
                taken = self._existing(ids)
                raise DuplicateIdError(f"{len(taken)} id(s) are already stored, e.g. {taken[:10]}; use update() "
                                       "to change them or pick new ids. Nothing was added.") from e

    def update(self, ids: Sequence[int], embeddings: Optional[np.ndarray] = None, labels: Optional[Sequence] = None,
               paths: Optional[Sequence] = None, splits: Optional[Sequence] = None,
               is_query: Optional[Sequence] = None, is_gallery: Optional[Sequence] = None) -> None:
        """Change stored items in one transaction; arguments left None keep their values, a None in a list empties.

        Raises:
            UnknownIdError: If an id is not stored. Also the errors of ``add``; nothing is written.
        """
        ids = check_ids(ids, unique=True)
        given = dict(zip(METADATA_COLUMNS, check_metadata(len(ids), labels, paths, splits, is_query, is_gallery)))
        given = {column: values for column, values in given.items() if values is not None}
        if embeddings is not None:
            given["vector"] = list(map(bytes, check_vectors(embeddings, len(ids), self.dim,
                                                            f"embeddings (model {self.model_name!r})")))
        if not given:
            raise MetadataError("Nothing to update: pass embeddings or at least one metadata list.")
        with self._transaction(must_exist=ids):  # column names are the store's own; values are parameters
            sets = ", ".join(f"{column} = ?" for column in given)
            self._conn.executemany(f"UPDATE items SET {sets} WHERE id = ?", zip(*given.values(), ids.tolist()))

    def delete(self, ids: Sequence[int]) -> None:
        """Delete stored items in one transaction; UnknownIdError (and nothing deleted) if one is not stored."""
        ids = np.unique(check_ids(ids))
        with self._transaction(must_exist=ids):
            self._conn.executemany("DELETE FROM items WHERE id = ?", ((i,) for i in ids.tolist()))

    def load(self, ids: Optional[Sequence[int]] = None, split: Filter = None, label: Filter = None,
             is_query: Optional[bool] = None, is_gallery: Optional[bool] = None) -> LoadResult:
        """Items sorted by id, or only those whose column equals (one of) the value(s) given; unknown ids skipped.

        Returns:
            ``(ids, vectors, metadata)``: int64 ``[n]``, float32 ``[n, dim]`` (a copy) and a DataFrame.
        """
        rows, cache = self._rows(dict(ids=ids, split=split, label=label, is_query=is_query, is_gallery=is_gallery))
        metadata = cache["meta"].iloc[rows].reset_index(drop=True)
        return LoadResult(metadata["id"].to_numpy(), cache["matrix"][rows], metadata)

    def search(self, queries: np.ndarray, k: int = 10, metric: str = "euclidean", **filters: Filter) -> SearchResult:
        """The ``k`` stored items (passing ``load``'s filters) nearest to each float32 query, nearest first.

        ``metric``: ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity; zero vectors give 1). Returns
        ``(ids, distances, paths)``, ``[k]`` for a 1-D query, else ``[n_queries, k]`` (fewer if fewer match).
        """
        check_search_options(k, metric)
        single = isinstance(queries, np.ndarray) and queries.ndim == 1
        queries = check_vectors(queries[None] if single else queries, None, self.dim,
                                f"queries (model {self.model_name!r})")
        rows, cache = self._rows(filters)
        matrix, sq, ids = (cache[key] if rows is None else cache[key][rows] for key in ("matrix", "sq", "ids"))
        found, distances = top_k(matrix, sq, queries, min(int(k), len(matrix)), metric)
        found = ids[found]
        unique, where = np.unique(found, return_inverse=True)
        paths = dict(self._id_rows("path", unique))
        paths = np.array([paths.get(i) for i in unique.tolist()] + [None], dtype=object)[:-1][where]
        paths = paths.reshape(found.shape)
        return SearchResult(found[0], distances[0], paths[0]) if single else SearchResult(found, distances, paths)

    @contextmanager
    def _transaction(self, must_exist: Optional[np.ndarray] = None) -> Iterator[None]:
        """One write transaction: committed at the end, rolled back on any error or interruption."""
        self._cache = None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if must_exist is not None:  # inside the transaction: no other writer can interfere
                missing = sorted(set(must_exist.tolist()) - set(self._existing(must_exist)))
                if missing:
                    raise UnknownIdError(f"{len(missing)} id(s) are not stored, e.g. {missing[:10]}; nothing was "
                                         "changed. add() new items first.")
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _existing(self, ids: np.ndarray) -> List[int]:
        return [i for i, _ in self._id_rows("id", ids)]

    def _id_rows(self, column: str, ids: np.ndarray) -> List[tuple]:
        """``(id, column)`` of the stored ids among ``ids``, in batches under SQLite's limit on parameters."""
        ids, found = np.asarray(ids).tolist(), []
        for start in range(0, len(ids), 30_000):
            part = ids[start:start + 30_000]
            found += self._conn.execute(f"SELECT id, {column} FROM items WHERE id IN ({','.join('?' * len(part))})",
                                        part).fetchall()
        return found

    def _rows(self, filters: dict) -> tuple:
        """The rows of the (fresh) cache that pass ``filters`` (None if none is set), and the cache."""
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise StoreError(f"Unknown filter(s) {sorted(unknown)}; use {', '.join(FILTERS)}.")
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]  # changes on others' commits
        needs_meta = "ids" in filters or any(v is not None for v in filters.values())
        if self._cache is None or self._cache["version"] != version or (needs_meta and "meta" not in self._cache):
            self._cache = self._read(version, with_meta=needs_meta)  # a plain search skips the metadata
        return (select_rows(self._cache["meta"], filters) if needs_meta else None), self._cache

    def _read(self, version: int, with_meta: bool) -> dict:
        """ids and vectors (and metadata) of every item in id order, in one read transaction."""
        self._conn.execute("BEGIN")  # a consistent snapshot while others write
        try:
            n = self._conn.execute("SELECT count(*) FROM items").fetchone()[0]
            ids, matrix, at = np.empty(n, np.int64), np.empty((n, self.dim), np.float32), 0
            columns = "id, vector" + (", path, label, split, is_query, is_gallery" if with_meta else "")
            cursor, meta = self._conn.execute(f"SELECT {columns} FROM items ORDER BY id"), []
            while rows := cursor.fetchmany(READ_ROWS):
                batch_ids, blobs, *rest = zip(*rows)
                try:
                    joined = b"".join(blobs)
                except TypeError:  # a value that is not a BLOB
                    joined = b""
                if len(joined) != len(blobs) * self.dim * VECTOR_DTYPE.itemsize:
                    raise damaged_error(self.path, self.dim, batch_ids, blobs)
                ids[at:at + len(rows)] = batch_ids
                matrix[at:at + len(rows)] = np.frombuffer(joined, VECTOR_DTYPE).reshape(len(rows), self.dim)
                at, meta = at + len(rows), meta + ([rest] if with_meta else [])
        finally:
            self._conn.execute("COMMIT")
        cache = {"ids": ids, "matrix": matrix, "version": version,
                 "sq": np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)}
        if with_meta:
            paths, labels, splits, is_query, is_gallery = ([v for part in meta for v in part[i]] for i in range(5))
            cache["meta"] = pd.DataFrame({
                "id": ids, "path": pd.array(paths, dtype=object), "label": pd.array(labels, dtype="Int64"),
                "split": pd.array(splits, dtype=object), "is_query": pd.array(is_query, dtype="boolean"),
                "is_gallery": pd.array(is_gallery, dtype="boolean")})
        return cache
