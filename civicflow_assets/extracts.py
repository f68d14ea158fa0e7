"""Extracts: what a load reads, each a named input whose rows stream into PostgreSQL's COPY.

A CSV file goes to COPY as it is (the fast path); a malformed one is re-read row by row so that
bad rows are kept with their reason; API records and GeoJSON/shapefile features are written as
CSV in memory, a megabyte at a time.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from civicflow_assets.sources.mapping import Mapping

COPY_CHUNK = 1 << 20
SPLIT_BYTES = 16 << 20  # a CSV file at least this big is copied in two halves, over two connections
csv.field_size_limit(sys.maxsize)  # one city-limits WKT cell is over 1 MB


class ExtractError(RuntimeError):
    pass


Copy = Callable[[psycopg2.extensions.cursor, sql.Composable], int]  # copies rows into a land table; answers how many


@dataclass(frozen=True)
class Extract:
    """One input of a load: a named file or URL and a way to stream its rows into COPY."""

    name: str
    header: list[str]
    copy_into: Copy
    reusable: bool = False  # can copy_into run twice (a file), or is it a one-shot stream (an API)?
    # A large file's two halves, each copied as it is (no checked fallback: a malformed row fails the COPY)
    halves: Callable[[], tuple[Copy, Copy] | None] = lambda: None


class _ChunkReader(io.RawIOBase):
    """A file-like view over an iterator of bytes, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _csv_chunks(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > COPY_CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _copy_rows(cur, target: sql.Composable, columns: sql.Composable, rows: Iterable[list[Any]]) -> int:
    copy = sql.SQL("copy {t} ({c}) from stdin with (format csv)").format(t=target, c=columns)
    cur.copy_expert(copy.as_string(cur), _ChunkReader(_csv_chunks(rows)), size=COPY_CHUNK)
    return cur.rowcount


class _Slice:
    """Bytes [start, end) of a file, read by COPY."""

    def __init__(self, handle: BinaryIO, start: int, end: int | None):
        handle.seek(start)
        self._handle, self._left = handle, (end - start if end is not None else None)

    def read(self, size: int) -> bytes:
        if self._left is None:
            return self._handle.read(size)
        data = self._handle.read(min(size, self._left))
        self._left -= len(data)
        return data


def _record_boundary(path: Path, near: int) -> int | None:
    """The first record boundary at or after byte `near`: just past a newline outside quotes, or None. PostgreSQL's
    CSV reader ends a record at a newline outside quotes and tells inside from outside by the parity of the quotes
    before it (an escaped quote is two), so a split here gives each half exactly the records COPY would read."""
    quotes = 0
    with path.open("rb") as handle:
        while (left := near - handle.tell()) > 0:
            block = handle.read(min(COPY_CHUNK, left))
            if not block:
                return None
            quotes += block.count(b'"')
        while block := handle.read(COPY_CHUNK):
            start = 0
            while (newline := block.find(b"\n", start)) >= 0:
                quotes += block.count(b'"', start, newline)
                if quotes % 2 == 0:
                    return handle.tell() - len(block) + newline + 1
                start = newline + 1
            quotes += block.count(b'"', start)
    return None


def csv_extract(path: Path) -> Extract:
    """A CSV file: straight into COPY; a ragged file falls back to a checked parse (see `_ragged_rows`)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise ExtractError(f"{path}: empty file, no header row")

    def copy_slice(cur, land: sql.Composable, start: int = 0, end: int | None = None) -> int:
        columns = sql.SQL(", ").join(sql.Identifier(f"c{i}") for i in range(len(header)))
        copy = sql.SQL("copy {t} ({c}) from stdin with (format csv, header {h}, encoding 'UTF8')").format(
            t=land, c=columns, h=sql.SQL("true" if start == 0 else "false"))
        with path.open("rb") as handle:
            cur.copy_expert(copy.as_string(cur), _Slice(handle, start, end), size=COPY_CHUNK)
        return cur.rowcount

    def copy_into(cur, land: sql.Composable) -> int:
        cur.execute("savepoint fast_copy")
        try:
            return copy_slice(cur, land)
        except (psycopg2.errors.BadCopyFileFormat, psycopg2.errors.CharacterNotInRepertoire,
                psycopg2.errors.UntranslatableCharacter):
            cur.execute("rollback to savepoint fast_copy")
            return _copy_checked(cur, land, path, len(header))

    def halves() -> tuple[Copy, Copy] | None:
        size = path.stat().st_size
        split = _record_boundary(path, size // 2) if size >= SPLIT_BYTES else None
        if split is None or split >= size:
            return None
        return (lambda cur, land: copy_slice(cur, land, 0, split), lambda cur, land: copy_slice(cur, land, split))

    return Extract(str(path), header, copy_into, reusable=True, halves=halves)


def _copy_checked(cur, land: sql.Composable, path: Path, width: int) -> int:
    """Row by row in Python, so that a malformed row is kept (with its reason) instead of failing the load."""
    columns = sql.SQL(", ").join(
        [sql.Identifier("_record"), sql.Identifier("_shape_error"),
         *(sql.Identifier(f"c{i}") for i in range(width))])

    def rows() -> Iterator[list[Any]]:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle)
            next(reader)
            for record, row in enumerate(reader, start=1):
                problem = None
                if "\ufffd" in "".join(row):
                    problem = "row is not valid UTF-8"
                if len(row) != width:
                    problem = f"row has {len(row)} fields, the header has {width}"
                    row = [*row[: width - 1], ",".join(row[width - 1 :])] if len(row) > width else row
                    row += [None] * (width - len(row))
                yield [record, problem, *(v if v != "" else None for v in row)]

    return _copy_rows(cur, land, columns, rows())


def records_extract(name: str, header: list[str], rows: Iterable[dict[str, Any]]) -> Extract:
    """Rows from an API client (dicts keyed by source column)."""

    def copy_into(cur, land: sql.Composable) -> int:
        columns = sql.SQL(", ").join(sql.Identifier(f"c{i}") for i in range(len(header)))
        return _copy_rows(cur, land, columns, ([row.get(c) for c in header] for row in rows))

    return Extract(name, header, copy_into)


def spatial_extract(path: Path) -> Extract:
    """GeoJSON or shapefile through pyogrio, reprojected to EPSG:4326, geometry as WKT in `geometry`."""
    import pyogrio
    import shapely

    frame = pyogrio.read_dataframe(path)
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    header = [c for c in frame.columns if c != "geometry"] + ["geometry"]
    wkt = shapely.to_wkt(frame.geometry.values, rounding_precision=-1)

    def rows() -> Iterator[dict[str, Any]]:
        for values, geometry in zip(frame[header[:-1]].itertuples(index=False), wkt, strict=True):
            yield {**dict(zip(header[:-1], values, strict=True)), "geometry": geometry}

    return records_extract(str(path), header, rows())


def extract_for(mapping: Mapping, path: Path) -> Extract:
    if mapping.format == "csv":
        return csv_extract(path)
    if mapping.format in ("geojson", "shapefile"):
        return spatial_extract(path)
    raise ExtractError(f"{mapping.name}: format {mapping.format} has no file reader")
