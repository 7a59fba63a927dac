"""Embeddings in one SQLite file, one row per item, with OML's metadata and an exact
top-k search.

``items`` has one row per item: ``id``, ``label``, ``path``, ``split``,
``is_query``, ``is_gallery`` and ``vector``, a little-endian float32 BLOB of exactly
``4 * dim`` bytes; ``meta`` records the model name, dimension, dtype and schema
version. One vector by hand: ``SELECT vector FROM items WHERE id = ?``. Each write
is one transaction in WAL mode: a bad or interrupted batch leaves the file as it
was, and readers keep reading during a write. Searches use all vectors as one
float32 matrix, kept in memory until another connection writes (``PRAGMA
data_version``). A cold open reads that matrix from the ``snapshot`` table, two
BLOBs that ``close`` saves after a store's writes (see ``storage_snapshot``), and
falls back to the rows when the snapshot is stale or damaged. A float32 product
picks a shortlist that provably holds the true top ``k`` (``float32_scores``),
float64 distances rank it, so the answers are a float64 brute force's. One store
object per thread or process; numpy, pandas and sqlite3 only.

This module holds the class and its transactions; the file's schema, creation and
opening are in ``storage_file``, reading the cache in ``storage_read``, the
snapshot in ``storage_snapshot``, the search in ``storage_search`` and the checks
of input in ``storage_checks``.
"""

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import numpy as np

from oml_helpers.storage_checks import (  # noqa: F401 (the result types and errors belong to this API)
    FILTERS,
    METADATA_COLUMNS,
    VECTOR_DTYPE,
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
from oml_helpers.storage_file import (  # noqa: F401 (part of this API)
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_VERSION,
    create_file,
    open_file,
)
from oml_helpers.storage_read import cache_of, read_cache, save_snapshot
from oml_helpers.storage_search import float32_scores, shortlists, top_k  # noqa: F401 (part of this API)
from oml_helpers.storage_snapshot import (
    Matrix,
    mark_stale,
    read_snapshot,
    with_added,
    with_deleted,
    with_updated,
)


class EmbeddingStore:
    """An embedding store in one SQLite file; make it with ``create`` or
    ``open``, use it with ``with``."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        model_name: str,
        dim: int,
        dtype: str,
    ):
        """Not for direct use: call ``EmbeddingStore.create`` or
        ``EmbeddingStore.open``."""
        self._conn, self.path, self.model_name, self.dim, self.dtype = (
            conn,
            path,
            model_name,
            dim,
            dtype,
        )
        # ids, matrix (id order), sq, meta (on first filter), version: see
        # storage_read
        self._cache: Optional[dict] = None
        # this store changed ids or vectors: close() saves the snapshot
        self._dirty = False

    @classmethod
    def create(
        cls,
        path: Union[str, Path],
        model_name: str,
        dim: int,
        dtype: str = "float32",
    ) -> "EmbeddingStore":
        """A new, empty store at ``path`` (which must not exist) that records model
        name, ``dim`` and dtype.

        Raises:
            StoreFileError: If the file exists. StoreError: If ``dim`` or ``dtype``
                (only float32) is not usable.
        """
        path = Path(path)
        conn = create_file(path, model_name, dim, dtype)
        return cls(conn, path, str(model_name), int(dim), dtype)

    @classmethod
    def open(cls, path: Union[str, Path]) -> "EmbeddingStore":
        """Open an existing store; a file that is not one gets StoreFileError and
        is left untouched."""
        conn, meta = open_file(Path(path))
        return cls(
            conn, Path(path), meta["model_name"], int(meta["dim"]), meta["dtype"]
        )

    def close(self) -> None:
        """Save the snapshot if this store changed ids or vectors, then close the
        connection.

        The snapshot is a cache for the next open: if it cannot be written now
        (another writer holds the file, a row is damaged), it stays stale, and the
        next open reads the rows instead.
        """
        try:
            if self._dirty:
                save_snapshot(self._conn, self.path, self.dim, self._cache)
        finally:
            self._cache, self._dirty = None, False
            self._conn.close()

    def __enter__(self) -> "EmbeddingStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM items").fetchone()[0]

    def __repr__(self) -> str:
        return (
            f"EmbeddingStore({str(self.path)!r}, model_name={self.model_name!r}, "
            f"dim={self.dim}, n={len(self)})"
        )

    def add(
        self,
        ids: Sequence[int],
        embeddings: np.ndarray,
        labels: Optional[Sequence] = None,
        paths: Optional[Sequence] = None,
        splits: Optional[Sequence] = None,
        is_query: Optional[Sequence] = None,
        is_gallery: Optional[Sequence] = None,
    ) -> None:
        """Insert new items (distinct ids, float32 ``[len(ids), dim]``) in one
        transaction: all or none.

        Metadata lists hold one value per id (int, str, str, bool, bool; None for
        empty), or are None. Raises EmbeddingError, MetadataError or
        DuplicateIdError naming the problem; nothing is written.
        """
        ids = check_ids(ids, unique=True)
        vectors = check_vectors(
            embeddings,
            len(ids),
            self.dim,
            f"embeddings (model {self.model_name!r})",
        )
        columns = [
            [None] * len(ids) if c is None else c
            for c in check_metadata(
                len(ids), labels, paths, splits, is_query, is_gallery
            )
        ]
        with self._transaction(
            change=lambda before: with_added(before, ids, vectors)
        ):
            # to look at the store as it was if an id is taken
            self._conn.execute("SAVEPOINT batch")
            try:
                self._conn.executemany(
                    "INSERT INTO items "
                    f"(id, {', '.join(METADATA_COLUMNS)}, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    zip(ids.tolist(), *columns, map(bytes, vectors)),
                )
            except sqlite3.IntegrityError as e:
                # undo the batch's own inserts, keep the lock
                self._conn.execute("ROLLBACK TO batch")
                taken = sorted(self._existing(ids))
                raise DuplicateIdError(
                    f"{len(taken)} id(s) are already stored, e.g. {taken[:10]}; "
                    "use update() to change them or pick new ids. "
                    "Nothing was added."
                ) from e
            self._conn.execute("RELEASE batch")

    def update(
        self,
        ids: Sequence[int],
        embeddings: Optional[np.ndarray] = None,
        labels: Optional[Sequence] = None,
        paths: Optional[Sequence] = None,
        splits: Optional[Sequence] = None,
        is_query: Optional[Sequence] = None,
        is_gallery: Optional[Sequence] = None,
    ) -> None:
        """Change stored items in one transaction; arguments left None keep their
        values, a None in a list empties.

        Raises:
            UnknownIdError: If an id is not stored. Also the errors of ``add``;
                nothing is written.
        """
        ids = check_ids(ids, unique=True)
        given = dict(
            zip(
                METADATA_COLUMNS,
                check_metadata(
                    len(ids), labels, paths, splits, is_query, is_gallery
                ),
            )
        )
        given = {
            column: values for column, values in given.items() if values is not None
        }
        change: Optional[Callable[[Matrix], Matrix]] = (
            None  # metadata only: ids and vectors stay as they are
        )
        if embeddings is not None:
            vectors = check_vectors(
                embeddings,
                len(ids),
                self.dim,
                f"embeddings (model {self.model_name!r})",
            )
            given["vector"], change = (
                list(map(bytes, vectors)),
                lambda before: with_updated(before, ids, vectors),
            )
        if not given:
            raise MetadataError(
                "Nothing to update: pass embeddings or at least one metadata list."
            )
        # column names are the store's own; values are parameters
        with self._transaction(must_exist=ids, change=change):
            sets = ", ".join(f"{column} = ?" for column in given)
            self._conn.executemany(
                f"UPDATE items SET {sets} WHERE id = ?",
                zip(*given.values(), ids.tolist()),
            )

    def delete(self, ids: Sequence[int]) -> None:
        """Delete stored items in one transaction; UnknownIdError (and nothing
        deleted) if one is not stored."""
        ids = np.unique(check_ids(ids))
        with self._transaction(
            must_exist=ids, change=lambda before: with_deleted(before, ids)
        ):
            self._conn.executemany(
                "DELETE FROM items WHERE id = ?", ((i,) for i in ids.tolist())
            )

    def load(
        self,
        ids: Optional[Sequence[int]] = None,
        split: Filter = None,
        label: Filter = None,
        is_query: Optional[bool] = None,
        is_gallery: Optional[bool] = None,
    ) -> LoadResult:
        """Items sorted by id, or only those whose column equals (one of) the
        value(s) given; unknown ids skipped.

        Returns:
            ``(ids, vectors, metadata)``: int64 ``[n]``, float32 ``[n, dim]`` (a
            copy) and a DataFrame.
        """
        rows, cache = self._rows(
            dict(
                ids=ids,
                split=split,
                label=label,
                is_query=is_query,
                is_gallery=is_gallery,
            )
        )
        metadata = cache["meta"].iloc[rows].reset_index(drop=True)
        return LoadResult(
            metadata["id"].to_numpy(), cache["matrix"][rows], metadata
        )

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        metric: str = "euclidean",
        **filters: Filter,
    ) -> SearchResult:
        """The ``k`` stored items (passing ``load``'s filters) nearest to each
        float32 query, nearest first.

        ``metric``: ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity; zero
        vectors give 1). Returns ``(ids, distances, paths)``, ``[k]`` for a 1-D
        query, else ``[n_queries, k]`` (fewer if fewer match).
        """
        check_search_options(k, metric)
        single = isinstance(queries, np.ndarray) and queries.ndim == 1
        queries = check_vectors(
            queries[None] if single else queries,
            None,
            self.dim,
            f"queries (model {self.model_name!r})",
        )
        rows, cache = self._rows(filters)
        matrix, sq, ids = (
            cache[key] if rows is None else cache[key][rows]
            for key in ("matrix", "sq", "ids")
        )
        found, distances = top_k(
            matrix, sq, queries, min(int(k), len(matrix)), metric
        )
        found = ids[found]
        unique, where = np.unique(found, return_inverse=True)
        paths = dict(self._id_rows("path", unique))
        paths = np.array(
            [paths.get(i) for i in unique.tolist()] + [None], dtype=object
        )[:-1][where]
        paths = paths.reshape(found.shape)
        return (
            SearchResult(found[0], distances[0], paths[0])
            if single
            else SearchResult(found, distances, paths)
        )

    @contextmanager
    def _transaction(
        self,
        must_exist: Optional[np.ndarray] = None,
        change: Optional[Callable[[Matrix], Matrix]] = None,
    ) -> Iterator[None]:
        """One write transaction: committed at the end, rolled back on any error or
        interruption.

        ``change`` (None: metadata only) maps the ids and vectors as they were to
        the batch's result; applied to the fresh cache (or snapshot), it becomes the
        new cache. A change also makes the snapshot stale until ``close`` saves it
        (see ``mark_stale``).
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            # no other writer from here on
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            fresh = self._cache is not None and self._cache["version"] == version
            before = (self._cache["ids"], self._cache["matrix"]) if fresh else None
            if change is not None:
                before = (
                    read_snapshot(self._conn, self.dim)
                    if before is None
                    else before
                )
                mark_stale(self._conn)
            self._cache = None
            # inside the transaction: no other writer can interfere
            if must_exist is not None:
                missing = sorted(
                    set(must_exist.tolist()) - set(self._existing(must_exist))
                )
                if missing:
                    raise UnknownIdError(
                        f"{len(missing)} id(s) are not stored, "
                        f"e.g. {missing[:10]}; "
                        "nothing was changed. add() new items first."
                    )
            yield
            after = before if change is None or before is None else change(before)
            self._conn.execute("COMMIT")
            self._cache = None if after is None else cache_of(after, version)
            self._dirty = self._dirty or change is not None
        except BaseException:
            self._cache = None
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _existing(self, ids: np.ndarray) -> List[int]:
        return [i for i, _ in self._id_rows("id", ids)]

    def _id_rows(self, column: str, ids: np.ndarray) -> List[tuple]:
        """``(id, column)`` of the stored ids among ``ids``, in batches under
        SQLite's limit on parameters."""
        ids, found = np.asarray(ids).tolist(), []
        for start in range(0, len(ids), 30_000):
            part = ids[start : start + 30_000]
            found += self._conn.execute(
                f"SELECT id, {column} FROM items "
                f"WHERE id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
        return found

    def _rows(self, filters: dict) -> tuple:
        """The rows of the (fresh) cache that pass ``filters`` (None if none is
        set), and the cache."""
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise StoreError(
                f"Unknown filter(s) {sorted(unknown)}; use {', '.join(FILTERS)}."
            )
        # changes on others' commits
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        needs_meta = "ids" in filters or any(
            v is not None for v in filters.values()
        )
        if (
            self._cache is None
            or self._cache["version"] != version
            or (needs_meta and "meta" not in self._cache)
        ):
            # a plain search skips the metadata
            self._cache = read_cache(
                self._conn, self.path, self.dim, version, with_meta=needs_meta
            )
        return (
            select_rows(self._cache["meta"], filters) if needs_meta else None
        ), self._cache
