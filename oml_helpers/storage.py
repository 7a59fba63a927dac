"""Keep embeddings on disk in one SQLite file, with OML's metadata, and search them fast.

Table ``items`` has one row per item: ``id`` (yours), ``label``, ``path``, ``split``, ``is_query``,
``is_gallery`` and ``chunk``, the row of table ``chunks`` that holds its vector: vectors are kept as
float32 BLOBs of about 1 MiB, many items each, with their ids in the same order, so that opening a
store reads a few large BLOBs instead of one small one per item (see ``storage_sqlite``). The model
name, dimension and dtype are recorded once per store, in ``meta``. Searches run in memory, on the
vectors loaded on first use and reloaded after any write (this connection's or another's): an int8
copy of the vectors shortlists candidates, exact float64 distances rank them (``storage_search``), so
the answers are those of an exact brute force. Each write is one transaction, chunks rewritten
included: a bad or interrupted batch leaves the file as it was. WAL mode lets readers read while one
writer writes. Use one store object per thread or process. numpy, pandas, sqlite3 and torch's int8 product.
"""

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Union

import numpy as np

from oml_helpers.storage_parts import (
    METADATA_COLUMNS,
    DuplicateIdError,
    EmbeddingError,
    Filter,
    LoadResult,
    MetadataError,
    SearchResult,
    StoreError,
    StoreFileError,
    UnknownIdError,
    check_ids,
    check_metadata,
    check_search_options,
    check_vectors,
    select_rows,
)
from oml_helpers.storage_search import Int8Index, top_k
from oml_helpers.storage_sqlite import (
    SCHEMA_VERSION,
    chunk_rows_for,
    connect,
    create_schema,
    id_rows,
    plan_append,
    read_filter_columns,
    read_meta,
    read_vectors,
    rewrite_chunks,
    write_chunks,
)

class EmbeddingStore:
    """An embedding store in one SQLite file; build it with ``create`` or ``open``, use it with ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, model_name: str, dim: int, dtype: str, chunk_rows: int):
        """Not for direct use: call ``EmbeddingStore.create`` or ``EmbeddingStore.open``."""
        self._conn, self.path, self.model_name, self.dim, self.dtype = conn, path, model_name, dim, dtype
        self.chunk_rows = chunk_rows
        self._cache: Optional[dict] = None
        self._cache_version: Optional[int] = None

    @classmethod
    def create(cls, path: Union[str, Path], model_name: str, dim: int, dtype: str = "float32") -> "EmbeddingStore":
        """Create a new, empty store file.

        Args:
            path: File to create; it must not exist.
            model_name: The model that makes the embeddings (recorded, e.g. ``"vits16_dino"``).
            dim: Size of each vector.
            dtype: Only ``"float32"``.

        Returns:
            The open store.

        Raises:
            StoreFileError: If the file already exists.
            StoreError: If ``dim`` or ``dtype`` is not usable.
        """
        path = Path(path)
        if path.exists():
            raise StoreFileError(f"{path} already exists. Open it with EmbeddingStore.open, or delete it first.")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise StoreError(f"dim must be a positive integer, got {dim!r}.")
        if dtype != "float32":
            raise StoreError(f"dtype={dtype!r} is not supported; the store keeps float32 vectors.")
        conn = connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            meta = {"schema_version": SCHEMA_VERSION, "model_name": model_name, "dim": int(dim), "dtype": dtype,
                    "chunk_rows": chunk_rows_for(int(dim))}
            create_schema(conn, meta, int(dim))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise
        return cls(conn, path, str(model_name), int(dim), dtype, int(meta["chunk_rows"]))

    @classmethod
    def open(cls, path: Union[str, Path]) -> "EmbeddingStore":
        """Open an existing store; a file that is not one is left untouched.

        Args:
            path: The store's file.

        Returns:
            The open store.

        Raises:
            StoreFileError: If the file is missing, is not a SQLite database, or is a database of another schema.
        """
        path = Path(path)
        if not path.is_file():
            raise StoreFileError(f"No store at {path}. Check the path, or make one with EmbeddingStore.create.")
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise StoreFileError(f"{path} is not a SQLite database, so not an embedding store.")
        meta = read_meta(path)  # read-only connection: nothing is written to a file that is not a store
        conn = connect(path)
        return cls(conn, path, meta["model_name"], int(meta["dim"]), meta["dtype"], int(meta["chunk_rows"]))

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
        """Insert a batch of new items in one transaction: all of them or, on any error, none.

        Args:
            ids: Distinct integers, none already stored.
            embeddings: float32 array ``[len(ids), dim]`` of finite values.
            labels, paths, splits, is_query, is_gallery: One value per id (int, str, str, bool, bool;
                ``None`` for empty), or ``None`` to leave the column empty.

        Raises:
            EmbeddingError, MetadataError, DuplicateIdError: Describing the problem; nothing is written.
        """
        ids = check_ids(ids, unique=True)
        vectors = self._check_vectors(embeddings, len(ids))
        columns = check_metadata(len(ids), labels, paths, splits, is_query, is_gallery)
        columns = [[None] * len(ids) if c is None else c for c in columns]
        with self._transaction():
            chunks, pieces = plan_append(self._conn, ids, vectors, self.chunk_rows)
            try:
                self._conn.executemany("INSERT INTO items (id, chunk, label, path, split, is_query, is_gallery) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?)", zip(ids.tolist(), chunks.tolist(), *columns))
            except sqlite3.IntegrityError as e:
                taken = self._existing(ids)
                raise DuplicateIdError(f"{len(taken)} id(s) are already stored, e.g. {taken[:10]}; "
                                       "use update() to change them or pick new ids. Nothing was added.") from e
            write_chunks(self._conn, pieces)

    def update(self, ids: Sequence[int], embeddings: Optional[np.ndarray] = None, labels: Optional[Sequence] = None,
               paths: Optional[Sequence] = None, splits: Optional[Sequence] = None,
               is_query: Optional[Sequence] = None, is_gallery: Optional[Sequence] = None) -> None:
        """Change stored items in one transaction; arguments left as ``None`` keep their values.

        Args:
            ids: Distinct stored ids.
            embeddings, labels, paths, splits, is_query, is_gallery: As in ``add``; a ``None`` inside a
                list empties that cell.

        Raises:
            UnknownIdError: If an id is not stored. Also the errors of ``add``; nothing is written.
        """
        ids = check_ids(ids, unique=True)
        given = dict(zip(METADATA_COLUMNS, check_metadata(len(ids), labels, paths, splits, is_query, is_gallery)))
        given = {k: v for k, v in given.items() if v is not None}
        vectors = None if embeddings is None else self._check_vectors(embeddings, len(ids))
        if not given and vectors is None:
            raise MetadataError("Nothing to update: pass embeddings or at least one metadata list.")
        with self._transaction(must_exist=ids):
            if given:  # column names come from METADATA_COLUMNS, never from the caller; values are parameters
                sets = ", ".join(f"{column} = ?" for column in given)
                self._conn.executemany(f"UPDATE items SET {sets} WHERE id = ?", zip(*given.values(), ids.tolist()))
            if vectors is not None:
                rewrite_chunks(self._conn, ids, self.dim, vectors)

    def delete(self, ids: Sequence[int]) -> None:
        """Delete stored items in one transaction.

        Raises:
            UnknownIdError: If an id is not stored; nothing is deleted.
        """
        ids = np.unique(check_ids(ids))
        with self._transaction(must_exist=ids):
            rewrite_chunks(self._conn, ids, self.dim)  # reads items.chunk: before the rows go
            self._conn.executemany("DELETE FROM items WHERE id = ?", ((i,) for i in ids.tolist()))

    def load(self, ids: Optional[Sequence[int]] = None, split: Filter = None, label: Filter = None,
             is_query: Optional[bool] = None, is_gallery: Optional[bool] = None) -> LoadResult:
        """Items sorted by id, optionally only some: each filter takes one value or a list of values.

        Args:
            ids: Only these ids (unknown ones are skipped).
            split, label, is_query, is_gallery: Only items whose column equals (one of) the value(s).

        Returns:
            ``(ids, vectors, metadata)``: int64 ``[n]``, float32 ``[n, dim]`` (a copy) and a DataFrame.
        """
        cache = self._fresh_cache(with_filters=True)
        rows = select_rows(cache["meta"], ids=ids, split=split, label=label, is_query=is_query, is_gallery=is_gallery)
        metadata = cache["meta"].iloc[rows].reset_index(drop=True)
        return LoadResult(metadata["id"].to_numpy(), cache["matrix"][cache["by_id"][rows]], metadata)

    def search(self, queries: np.ndarray, k: int = 10, metric: str = "euclidean", **filters: Filter) -> SearchResult:
        """The ``k`` stored items nearest to each query, nearest first.

        Args:
            queries: float32 ``[dim]`` (one query) or ``[n_queries, dim]``.
            k: How many neighbours; fewer come back if fewer items match.
            metric: ``"euclidean"`` (L2 distance) or ``"cosine"`` (1 - cosine similarity; zero vectors give 1).
            **filters: Any of ``load``'s filters (``ids``, ``split``, ``label``, ``is_query``, ``is_gallery``).

        Returns:
            ``(ids, distances, paths)``, 1-D for a 1-D query, else ``[n_queries, k]``.
        """
        check_search_options(k, metric, filters)
        single = isinstance(queries, np.ndarray) and queries.ndim == 1
        queries = self._check_vectors(queries[None] if single else queries, None, what="queries")
        cache = self._fresh_cache(with_filters=bool(filters))
        rows = cache["by_id"][select_rows(cache["meta"], **filters)] if filters else None
        matrix, index = cache["matrix"], cache["index"]
        if rows is not None:
            matrix, index = matrix[rows], index.subset(rows)
        found, distances = top_k(matrix, index.sq_norms, queries, min(int(k), len(matrix)), metric, index)
        ids = (cache["ids"] if rows is None else cache["ids"][rows])[found]
        paths = self._paths(ids.ravel()).reshape(ids.shape)
        return SearchResult(ids[0], distances[0], paths[0]) if single else SearchResult(ids, distances, paths)

    # -- internals ---------------------------------------------------------------------------------

    def _check_vectors(self, x: Any, n: Optional[int], what: str = "embeddings") -> np.ndarray:
        return check_vectors(x, n, self.dim, f"{what} (model {self.model_name!r})")

    @contextmanager
    def _transaction(self, must_exist: Optional[np.ndarray] = None) -> Iterator[None]:
        """One write transaction: committed at the end, rolled back on any error (or interruption)."""
        self._cache = None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if must_exist is not None:  # checked inside the transaction: no other writer can interfere
                missing = sorted(set(must_exist.tolist()) - set(self._existing(must_exist)))
                if missing:
                    raise UnknownIdError(f"{len(missing)} id(s) are not stored, e.g. {missing[:10]}; "
                                         "nothing was changed. add() new items first.")
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _existing(self, ids: np.ndarray) -> List[int]:
        return [i for i, _ in id_rows(self._conn, "path", ids)]

    def _fresh_cache(self, with_filters: bool = False) -> dict:
        """The cached ids and vectors (and filter columns if asked), reloaded after any committed change.

        The vectors are in storage (chunk) order; ``by_id`` lists their rows in id order, the order of ``meta``.
        """
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if self._cache is None or version != self._cache_version:
            self._cache, self._cache_version = None, version
            self._conn.execute("BEGIN")  # one read transaction: a consistent snapshot even while others write
            try:
                ids, matrix, codes, stats = read_vectors(self._conn, self.dim)
                by_id = np.arange(len(ids)) if np.all(ids[1:] > ids[:-1]) else np.argsort(ids, kind="stable")
                self._cache = {"ids": ids, "matrix": matrix, "by_id": by_id, "index": Int8Index(codes, stats)}
            finally:
                self._conn.execute("COMMIT")
        if with_filters and "meta" not in self._cache:  # loaded on the first filter only: cold searches skip it
            meta = read_filter_columns(self._conn)
            if self._conn.execute("PRAGMA data_version").fetchone()[0] != version:  # changed meanwhile: again
                self._cache = None
                return self._fresh_cache(with_filters)
            self._cache["meta"] = meta
        return self._cache

    def _paths(self, ids: np.ndarray) -> np.ndarray:
        """Paths of stored ids, read from SQLite (a search's cache holds no paths, to keep memory small)."""
        unique, where = np.unique(ids, return_inverse=True)
        found = dict(id_rows(self._conn, "path", unique))
        return np.array([found.get(i) for i in unique.tolist()], dtype=object)[where]
