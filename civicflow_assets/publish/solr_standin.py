"""A minimal Solr stand-in so that CKAN 2.11 runs in development and tests: NOT Solr, NOT for deployments.

Real deployments run real Solr with CKAN's own schema (`ckan/config/solr/schema.xml`, e.g. the `ckan/ckan-solr`
image in docker-compose). No Solr can be installed on the development machine, and CKAN cannot run without
one: every dataset write is pushed to the index (the `synchronous_search` system plugin) and start-up checks
the schema version. This stdlib HTTP server answers the calls CKAN makes, well enough for package_search,
package_list, organization pages and dataset pages:

- `GET /solr/<core>/schema?wt=schema.xml`, `/solr/<core>/admin/file/?file=schema.xml`: a schema named `ckan-2.11`.
- `POST /solr/<core>/update`: JSON documents (a list, or `{"add": ..., "delete": ..., "commit": {}}`), XML
  `<add>`, `<delete><id/><query/></delete>`, `<commit/>`. Changes are visible at once; `uniqueKey` is `index_id`.
- `GET|POST /solr/<core>/select`: q, fq (repeated), q.op, defType (dismax/edismax use qf, lucene uses df),
  start, rows, sort (with `score`), fl, facet, facet.field, facet.limit, facet.mincount; JSON answers only.

Queries support the Lucene syntax CKAN generates: `*:*`, `field:value`, `field:"phrase"`, `+`/`-`/NOT, AND/OR,
parentheses and `field:(a OR b)`, `field:*`, wildcards, ranges `[a TO b]`. String fields match exactly; text
fields (title, notes, text, res_name, extras_*...) match lower-cased, crudely stemmed tokens. Scores are simple
boosted hit counts, dismax `mm` is treated as "all terms", and there is no date math, highlighting or grouping.

Documents live in memory per core; with `--data-dir` each core is also snapshotted to `<core>.json` (at most
once a second, and on SIGTERM) so the index survives a restart as Solr's would.

    python -m civicflow_assets.publish.solr_standin --port 8983 --data-dir .civicflow/ckan/solr
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

SCHEMA_NAME = "ckan-2.11"
SCHEMA_VERSION = "1.6"
UNIQUE_KEY = "index_id"

# Field types from CKAN's schema.xml: everything not listed as text is a string (exact match).
TEXT_FIELDS = frozenset({
    "text", "title", "notes", "urls", "author", "author_email", "maintainer", "maintainer_email", "res_name",
    "res_description", "title_ngram", "name_ngram", "depends_on", "dependency_of", "derives_from",
    "has_derivation", "links_to", "linked_from", "child_of", "parent_of",
})
TEXT_PREFIXES = ("extras_", "res_extras_")
STORED_FIELDS = frozenset({
    "index_id", "id", "site_id", "title", "title_ngram", "entity_type", "dataset_type", "state", "name",
    "name_ngram", "revision_id", "version", "url", "ckan_url", "download_url", "notes", "author", "author_email",
    "maintainer", "maintainer_email", "license", "license_id", "tags", "groups", "organization", "capacity",
    "res_name", "res_description", "res_format", "res_url", "res_type", "metadata_created", "metadata_modified",
    "indexed_ts", "data_dict", "validated_data_dict", "_version_",
})
STORED_PREFIXES = ("extras_", "res_extras_", "vocab_")
# copyField sources of the catch-all `text` field.
CATCH_ALL_SOURCES = (
    "url", "ckan_url", "download_url", "res_url", "name", "title", "text", "license", "notes", "tags", "groups",
    "organization", "res_name", "res_description", "maintainer", "author",
)
CATCH_ALL_PREFIXES = ("extras_", "res_extras_", "vocab_")
FLUSH_INTERVAL = 1.0


class QueryError(ValueError):
    pass


# ---------------------------------------------------------------- values and analysis

def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value if v is not None]
    return [_as_text(value)]


def _is_text_field(name: str) -> bool:
    return name in TEXT_FIELDS or name.startswith(TEXT_PREFIXES)


def _is_stored(name: str) -> bool:
    return name in STORED_FIELDS or name.startswith(STORED_PREFIXES) or name.endswith("_date")


def _stem(token: str) -> str:
    # Crude English stemming so "roads" finds "road", as Solr's Snowball filter would.
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)] + replacement
    if token.endswith("s") and not token.endswith("ss") and len(token) > 3:
        return token[:-1]
    return token


def _raw_tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _tokens(text: str) -> list[str]:
    return [_stem(t) for t in _raw_tokens(text)]


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return any(haystack[i:i + width] == needle for i in range(len(haystack) - width + 1))


@dataclass
class Entry:
    """A stored document and its analysed fields, computed on first use."""

    doc: dict[str, Any]
    _analysed: dict[str, list[list[str]]] = field(default_factory=dict)

    def strings(self, name: str) -> list[str]:
        if name == "text":
            return self._catch_all()
        return _values(self.doc.get(name))

    def analysed(self, name: str) -> list[list[str]]:
        if name not in self._analysed:
            self._analysed[name] = [_tokens(v) for v in self.strings(name)]
        return self._analysed[name]

    def _catch_all(self) -> list[str]:
        out: list[str] = []
        for key, value in self.doc.items():
            if key in CATCH_ALL_SOURCES or key.startswith(CATCH_ALL_PREFIXES):
                out.extend(_values(value))
        return out


# ---------------------------------------------------------------- query parsing (the Lucene subset CKAN uses)

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


@dataclass
class Term:
    field: str | None
    text: str
    phrase: bool = False


@dataclass
class Range:
    field: str | None
    low: str
    high: str
    include_low: bool
    include_high: bool


@dataclass
class MatchAll:
    pass


@dataclass
class Bool:
    clauses: list[tuple[str, Any]]


@dataclass
class Token:
    kind: str  # ( ) + - NOT AND OR FIELD TERM PHRASE RANGE
    text: str = ""
    extra: tuple[Any, ...] = ()


_OPERATORS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR", "NOT": "NOT", "!": "NOT"}


def _read_bare(text: str, i: int, stop_on_colon: bool) -> tuple[str, int, bool]:
    """A bare word, honouring backslash escapes; returns (word, next index, ended at an unescaped colon)."""
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch.isspace() or ch in "()":
            break
        if ch == ":" and stop_on_colon:
            return "".join(out), i + 1, True
        out.append(ch)
        i += 1
    return "".join(out), i, False


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    i += 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    if i >= len(text):
        raise QueryError(f"unterminated quote in {text!r}")
    return "".join(out), i + 1


def _read_range(text: str, i: int) -> tuple[Token, int]:
    closers = [p for p in (text.find("]", i), text.find("}", i)) if p >= 0]
    if not closers:
        raise QueryError(f"unterminated range in {text!r}")
    close = min(closers)
    parts = text[i + 1:close].split(" TO ")
    if len(parts) != 2:
        raise QueryError(f"bad range {text[i:close + 1]!r}")
    low, high = (p.strip().strip('"') for p in parts)
    return Token("RANGE", extra=(low, high, text[i] == "[", text[close] == "]")), close + 1


def _strip_suffix(word: str) -> str:
    # Boosts (term^2) and fuzziness (term~1) change scoring only.
    return re.sub(r"(?<!\\)[\^~][\d.]*$", "", word) or word


def _lex(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    after_field = False
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            tokens.append(Token(ch))
            i += 1
        elif ch in "+-!" and not after_field:
            tokens.append(Token("NOT" if ch == "!" else ch))
            i += 1
        elif text.startswith(("&&", "||"), i):
            tokens.append(Token(_OPERATORS[text[i:i + 2]]))
            i += 2
        elif ch == '"':
            phrase, i = _read_quoted(text, i)
            if i < len(text) and text[i] in "~^":  # proximity or boost: scoring only
                _, i, _ = _read_bare(text, i, stop_on_colon=False)
            tokens.append(Token("PHRASE", phrase))
        elif ch in "[{":
            token, i = _read_range(text, i)
            tokens.append(token)
        else:
            word, i, is_field = _read_bare(text, i, stop_on_colon=not after_field)
            if is_field:
                tokens.append(Token("FIELD", word))
                after_field = True
                continue
            if word in ("AND", "OR", "NOT") and not after_field:
                tokens.append(Token(word))
            else:
                tokens.append(Token("TERM", _strip_suffix(word)))
        after_field = False
    return tokens


class _Parser:
    def __init__(self, text: str, default_and: bool) -> None:
        self.tokens = _lex(text)
        self.pos = 0
        self.default_and = default_and

    def parse(self) -> Bool:
        query = self._bool(None)
        if self.pos < len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.pos].kind!r}")
        return query

    def _peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            raise QueryError("unexpected end of query")
        self.pos += 1
        return token

    def _bool(self, default_field: str | None) -> Bool:
        clauses: list[tuple[str, Any]] = []
        conj: str | None = None
        while (token := self._peek()) is not None and token.kind != ")":
            if token.kind in ("AND", "OR"):
                conj = token.kind
                self.pos += 1
                continue
            mods = None
            if token.kind in ("+", "-", "NOT"):
                mods = "+" if token.kind == "+" else "-"
                self.pos += 1
            self._add(clauses, conj, mods, self._clause(default_field))
            conj = None
        return Bool(clauses)

    def _add(self, clauses: list[tuple[str, Any]], conj: str | None, mods: str | None, node: Any) -> None:
        # Lucene's QueryParser rules: AND makes the previous clause required, OR (under q.op=AND) optional.
        if clauses and conj == "AND" and clauses[-1][0] != MUST_NOT:
            clauses[-1] = (MUST, clauses[-1][1])
        if clauses and conj == "OR" and self.default_and and clauses[-1][0] != MUST_NOT:
            clauses[-1] = (SHOULD, clauses[-1][1])
        if mods == "-":
            occur = MUST_NOT
        elif mods == "+" or conj == "AND" or (self.default_and and conj != "OR"):
            occur = MUST
        else:
            occur = SHOULD
        clauses.append((occur, node))

    def _clause(self, default_field: str | None) -> Any:
        token = self._next()
        name = default_field
        if token.kind == "FIELD":
            name = token.text
            token = self._next()
        if token.kind == "(":
            inner = self._bool(name)
            if self._next().kind != ")":
                raise QueryError("missing )")
            return inner
        if token.kind == "TERM":
            if token.text == "*" and name in ("*", None):
                return MatchAll()
            return Term(name, token.text)
        if token.kind == "PHRASE":
            return Term(name, token.text, phrase=True)
        if token.kind == "RANGE":
            return Range(name, *token.extra)
        raise QueryError(f"unexpected {token.kind!r}")


def parse_query(text: str, default_and: bool = False) -> Bool:
    return _Parser(text, default_and).parse()


# ---------------------------------------------------------------- matching

@dataclass
class Scope:
    """Fields searched by a term without a field: dismax `qf` (with boosts), or lucene `df`."""

    fields: list[tuple[str, float]]


def _term_score(term: Term, entry: Entry, scope: Scope) -> float:
    if term.field is None:
        return max((boost for name, boost in scope.fields if _term_matches(name, term, entry)), default=0.0)
    return 1.0 if _term_matches(term.field, term, entry) else 0.0


def _term_matches(name: str, term: Term, entry: Entry) -> bool:
    if term.text == "*" and not term.phrase:
        return bool(entry.strings(name))
    if _is_text_field(name):
        return _text_matches(name, term, entry)
    if _has_wildcard(term.text) and not term.phrase:
        return any(fnmatch.fnmatchcase(v, term.text) for v in entry.strings(name))
    return term.text in entry.strings(name)


def _text_matches(name: str, term: Term, entry: Entry) -> bool:
    if _has_wildcard(term.text) and not term.phrase:
        pattern = term.text.lower()
        return any(fnmatch.fnmatchcase(t, pattern) for v in entry.strings(name) for t in _raw_tokens(v))
    wanted = _tokens(term.text)
    if not wanted:
        return False
    return any(_contains_run(tokens, wanted) for tokens in entry.analysed(name))


def _comparable(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _range_matches(query: Range, entry: Entry, scope: Scope) -> bool:
    names = [query.field] if query.field else [name for name, _ in scope.fields]
    for name in names:
        for value in entry.strings(name):
            v = _comparable(value)
            low_ok = query.low == "*" or (v >= _comparable(query.low) if query.include_low
                                           else v > _comparable(query.low))
            high_ok = query.high == "*" or (v <= _comparable(query.high) if query.include_high
                                             else v < _comparable(query.high))
            if low_ok and high_ok:
                return True
    return False


def score(node: Any, entry: Entry, scope: Scope) -> float:
    if isinstance(node, MatchAll):
        return 1.0
    if isinstance(node, Term):
        return _term_score(node, entry, scope)
    if isinstance(node, Range):
        return 1.0 if _range_matches(node, entry, scope) else 0.0
    total, has_must, has_should, should_hit = 0.0, False, False, False
    for occur, child in node.clauses:
        value = score(child, entry, scope)
        if occur == MUST_NOT:
            if value:
                return 0.0
        elif occur == MUST:
            if not value:
                return 0.0
            total, has_must = total + value, True
        else:
            has_should = True
            if value:
                total, should_hit = total + value, True
    if has_should and not has_must and not should_hit:
        return 0.0
    # A purely negative query matches everything it does not exclude, as Solr's fq does.
    return total or 1.0


# ---------------------------------------------------------------- cores

def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Core:
    name: str
    docs: dict[str, Entry] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    dirty: bool = False

    def add(self, doc: dict[str, Any]) -> None:
        key = doc.get(UNIQUE_KEY, doc.get("id"))
        if key is None:
            raise QueryError(f"Document is missing mandatory uniqueKey field: {UNIQUE_KEY}")
        doc.setdefault("indexed_ts", _now())
        with self.lock:
            self.docs[_as_text(key)] = Entry(doc)
            self.dirty = True

    def delete_ids(self, ids: Iterable[str]) -> None:
        ids = {_as_text(key) for key in ids}
        with self.lock:
            for key in ids:
                if self.docs.pop(key, None) is not None:
                    self.dirty = True
            # Solr deletes by uniqueKey; CKAN's id is not its uniqueKey, so also accept it.
            for key, entry in list(self.docs.items()):
                if _as_text(entry.doc.get("id")) in ids:
                    del self.docs[key]
                    self.dirty = True

    def delete_query(self, query: str) -> None:
        parsed = parse_query(query)
        scope = Scope([("text", 1.0)])
        with self.lock:
            for key, entry in list(self.docs.items()):
                if score(parsed, entry, scope):
                    del self.docs[key]
                    self.dirty = True

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            self.dirty = False
            return [entry.doc for entry in self.docs.values()]


@dataclass
class Store:
    data_dir: Path | None
    cores: dict[str, Core] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def core(self, name: str) -> Core:
        with self.lock:
            if name not in self.cores:
                self.cores[name] = self._load(name)
            return self.cores[name]

    def _load(self, name: str) -> Core:
        core = Core(name)
        path = self._path(name)
        if path is not None and path.exists():
            for doc in json.loads(path.read_text()):
                core.docs[_as_text(doc.get(UNIQUE_KEY, doc.get("id")))] = Entry(doc)
        return core

    def _path(self, name: str) -> Path | None:
        if self.data_dir is None or not re.fullmatch(r"[\w.-]+", name):
            return None
        return self.data_dir / f"{name}.json"

    def flush(self) -> None:
        with self.lock:
            cores = list(self.cores.values())
        for core in cores:
            path = self._path(core.name)
            if path is None or not core.dirty:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(core.snapshot()))
            tmp.replace(path)


# ---------------------------------------------------------------- select

Params = dict[str, list[str]]


def _first(params: Params, name: str, default: str | None = None) -> str | None:
    values = params.get(name)
    return values[0] if values else default


def _scope(params: Params) -> Scope:
    if _first(params, "defType") in ("dismax", "edismax"):
        spec = _first(params, "qf") or _first(params, "df") or "text"
    else:
        spec = _first(params, "df") or "text"
    fields = []
    for item in spec.split():
        name, _, boost = item.partition("^")
        fields.append((name, float(boost or 1.0)))
    return Scope(fields)


def _sort(hits: list[tuple[float, Entry]], spec: str | None) -> list[tuple[float, Entry]]:
    keys = [part.split() for part in (spec or "score desc").split(",") if part.strip()]
    for key in reversed(keys):
        name, direction = key[0], (key[1].lower() if len(key) > 1 else "asc")
        if direction not in ("asc", "desc"):
            raise QueryError(f"Can't determine a Sort Order (asc or desc) in sort spec '{spec}'")
        if name == "score":
            hits = sorted(hits, key=lambda hit: hit[0], reverse=direction == "desc")
            continue
        present = [hit for hit in hits if hit[1].strings(name)]
        missing = [hit for hit in hits if not hit[1].strings(name)]
        present.sort(key=lambda hit, n=name: _comparable(hit[1].strings(n)[0]), reverse=direction == "desc")
        hits = present + missing  # Solr's sortMissingLast, in both directions
    return hits


def _project(entry: Entry, hit_score: float, fl: str) -> dict[str, Any]:
    wanted = [f for f in re.split(r"[,\s]+", fl) if f]
    everything = "*" in wanted
    out = {k: v for k, v in entry.doc.items() if _is_stored(k) and (everything or k in wanted)}
    if "score" in wanted:
        out["score"] = hit_score
    return out


def _facets(params: Params, hits: list[tuple[float, Entry]], core: Core) -> dict[str, list[Any]]:
    limit = int(_first(params, "facet.limit", "100") or 100)
    mincount = int(_first(params, "facet.mincount", "0") or 0)
    result: dict[str, list[Any]] = {}
    for spec in params.get("facet.field", []):
        name = re.sub(r"^\{!.*?\}", "", spec)
        counts: Counter[str] = Counter()
        for _, entry in hits:
            counts.update(set(entry.strings(name)))
        if mincount == 0:
            for entry in core.docs.values():
                for value in entry.strings(name):
                    counts.setdefault(value, 0)
        ranked = sorted((item for item in counts.items() if item[1] >= mincount), key=lambda kv: (-kv[1], kv[0]))
        if limit >= 0:
            ranked = ranked[:limit]
        result[name] = [x for pair in ranked for x in pair]
    return result


def select(core: Core, params: Params) -> dict[str, Any]:
    started = time.monotonic()
    default_and = (_first(params, "q.op") or "OR").upper() == "AND"
    q = (_first(params, "q") or "").strip() or "*:*"
    query = parse_query(q, default_and)
    filters = [parse_query(fq, default_and) for fq in params.get("fq", []) if fq.strip()]
    scope, filter_scope = _scope(params), Scope([(_first(params, "df") or "text", 1.0)])
    with core.lock:
        entries = list(core.docs.values())
        hits = []
        for entry in entries:
            if all(score(f, entry, filter_scope) for f in filters) and (s := score(query, entry, scope)):
                hits.append((s, entry))
        start = int(_first(params, "start", "0") or 0)
        rows = int(_first(params, "rows", "10") or 10)
        ranked = _sort(hits, _first(params, "sort"))
        fl = _first(params, "fl") or "*"
        answer: dict[str, Any] = {
            "responseHeader": {"status": 0, "QTime": int((time.monotonic() - started) * 1000),
                               "params": {k: v[0] if len(v) == 1 else v for k, v in params.items()}},
            "response": {"numFound": len(hits), "start": start, "numFoundExact": True,
                         "docs": [_project(e, s, fl) for s, e in ranked[start:start + max(rows, 0)]]},
        }
        if (_first(params, "facet") or "false").lower() == "true":
            answer["facet_counts"] = {"facet_queries": {}, "facet_fields": _facets(params, hits, core),
                                      "facet_ranges": {}, "facet_intervals": {}, "facet_heatmaps": {}}
    return answer


# ---------------------------------------------------------------- update

class _Pairs(list):
    """A JSON object kept as its (key, value) pairs: Solr's update commands may repeat a key ("add")."""


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _update_json(core: Core, body: bytes) -> None:
    message = json.loads(body or b"[]", object_pairs_hook=_Pairs)
    if not isinstance(message, _Pairs):
        for doc in _plain(message):
            core.add(doc)
        return
    for command, value in message:
        if command == "add":
            doc = _plain(value)
            core.add(doc.get("doc", doc))
        elif command == "delete":
            _json_delete(core, _plain(value))


def _json_delete(core: Core, value: Any) -> None:
    if isinstance(value, str | int):
        core.delete_ids([str(value)])
    elif isinstance(value, list):
        core.delete_ids([str(v) for v in value])
    elif "query" in value:
        core.delete_query(value["query"])
    elif "id" in value:
        core.delete_ids(_values(value["id"]))


def _update_xml(core: Core, body: bytes) -> None:
    root = ElementTree.fromstring(body)
    if root.tag == "add":
        for doc in root.iter("doc"):
            fields: dict[str, Any] = {}
            for f in doc.iter("field"):
                name, text = f.get("name", ""), f.text or ""
                fields[name] = [*_values(fields[name]), text] if name in fields else text
            core.add(fields)
    elif root.tag == "delete":
        ids = [e.text or "" for e in root.iter("id")]
        if ids:
            core.delete_ids(ids)
        for query in root.iter("query"):
            core.delete_query(query.text or "")


def update(core: Core, body: bytes, content_type: str) -> dict[str, Any]:
    """Changes are visible at once (like Solr's soft auto-commit), so commit and optimize have nothing to do."""
    if "xml" in content_type or body.lstrip().startswith(b"<"):
        _update_xml(core, body)
    else:
        _update_json(core, body)
    return {"responseHeader": {"status": 0, "QTime": 0}}


# ---------------------------------------------------------------- HTTP

def schema_xml() -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" ?>\n<schema name="{SCHEMA_NAME}" version="{SCHEMA_VERSION}">\n'
            f"  <uniqueKey>{UNIQUE_KEY}</uniqueKey>\n</schema>\n").encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "SolrStandIn/1.0"
    store: Store

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length))

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        params: Params = parse_qs(url.query, keep_blank_values=True)
        content_type = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in content_type:
            for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        parts = [p for p in url.path.split("/") if p]
        try:
            self._route(parts, params, body, content_type)
        except (QueryError, ValueError, ElementTree.ParseError) as exc:
            self._json(400, {"responseHeader": {"status": 400}, "error": {"msg": str(exc), "code": 400}})

    def _route(self, parts: list[str], params: Params, body: bytes, content_type: str) -> None:
        if len(parts) < 3 or parts[0] != "solr":
            self._json(404, {"error": {"msg": f"no handler for {self.path}", "code": 404}})
            return
        core, handler = self.store.core(parts[1]), "/".join(parts[2:])
        if handler == "select":
            self._json(200, select(core, params))
        elif handler in ("update", "update/json"):
            self._json(200, update(core, body, content_type))
        elif (handler == "schema" and _first(params, "wt") == "schema.xml") or handler == "admin/file":
            self._send(200, schema_xml(), "application/xml; charset=utf-8")
        elif handler == "schema":
            self._json(200, {"schema": {"name": SCHEMA_NAME, "version": float(SCHEMA_VERSION),
                                        "uniqueKey": UNIQUE_KEY}})
        elif handler == "admin/ping":
            self._json(200, {"status": "OK", "docs": len(core.docs)})
        else:
            self._json(404, {"error": {"msg": f"no handler for {self.path}", "code": 404}})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(host: str, port: int, data_dir: Path | None) -> None:
    store = Store(data_dir)
    handler = type("BoundHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    stopping = threading.Event()

    def flush_loop() -> None:
        while not stopping.wait(FLUSH_INTERVAL):
            store.flush()

    def on_signal(signum: int, frame: Any) -> None:
        # shutdown() blocks until serve_forever returns, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=flush_loop, daemon=True).start()
    sys.stderr.write(f"Solr stand-in (not Solr) on http://{host}:{server.server_port}/solr/<core>\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stopping.set()
        store.flush()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Minimal Solr stand-in for CKAN (development and tests only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8983)
    parser.add_argument("--data-dir", type=Path, default=None, help="snapshot each core here (optional)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.data_dir)


if __name__ == "__main__":
    main()
