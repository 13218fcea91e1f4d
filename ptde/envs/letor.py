"""LETOR / MSLR-WEB30K data: a streaming parser with a binary cache, the paper's subsampling, normalisation.

The text format (SVMlight with a query id) is one document per line::

    <relevance> qid:<int> 1:<value> 2:<value> ... 136:<value> [# comment]

with relevance an integer grade 0-4 and the documents of one query on adjacent lines. MSLR-WEB30K
ships it as `Fold1..Fold5/{train,vali,test}.txt`; a fold's train file is ~2 GB, so the parser
streams it in chunks of lines and writes the parsed arrays once as `.npy` files in a folder beside
the data file (`train.txt` -> `train.txt.ptde-cache/`). The cache records the source's size and
mtime; a changed file is parsed again. Later loads memory-map the arrays, so subsampling 10,000
queries reads only their rows.

Subsampling follows PTDE Section 4.3 (10,000 queries of 10 documents, split 7:3); where the paper
is silent the choices here are:
- a query is eligible when it has at least `docs_per_query` documents (smaller ones are dropped,
  never padded, so every agent is a real document);
- per query, up to `max_relevant` (default half the slate, 5) documents of grade > 0 are drawn at
  random, the rest of the slate is drawn uniformly from the query's remaining documents (any
  grade), and the slate is shuffled, so a document's position (= agent index) carries no
  information about its grade. Drawing relevant documents first keeps them represented: with 10
  random documents of an MSLR query many slates would have none, and NDCG of such a slate is
  constant;
- the sampled queries are permuted and the first round(train_fraction * n) are the training set;
- everything is drawn from `numpy.random.default_rng(seed)`, so a seed fixes data and split.

Normalisation is fitted on the training documents only and applied to both splits. The default
`log1p_zscore` maps x -> sign(x) * log1p(|x|) then standardises each feature (mean 0, std 1; a
constant feature becomes 0): MSLR's features span many orders of magnitude (counts, BM25,
PageRank), and the symmetric log followed by a z-score is the transform Qin et al. (ICLR 2021,
"Are neural rankers still outperformed by GBDTs?") found neural rankers need on these data.
`zscore`, `minmax` (to [0, 1] on the training range) and `none` are also available.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptde.files import atomic_write

MAX_RELEVANCE = 4
CACHE_VERSION = 1
_CHUNK_LINES = 20_000
NORMALIZATIONS = ("log1p_zscore", "zscore", "minmax", "none")


# --------------------------------------------------------------------------- parsed files
@dataclass
class LetorData:
    """The rows of one LETOR file, in file order (arrays may be read-only memory maps)."""

    features: np.ndarray  # [N, F] float32; features absent from a line are 0
    relevance: np.ndarray  # [N] int8, 0..4
    qids: np.ndarray  # [N] int64
    path: Path

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return int(self.relevance.shape[0])

    def query_rows(self) -> list[np.ndarray]:
        """Row indices of each query, queries in order of first appearance in the file."""
        if len(self) == 0:
            return []
        _, first, inverse, counts = np.unique(
            np.asarray(self.qids), return_index=True, return_inverse=True, return_counts=True
        )
        rank = np.empty_like(first)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)  # qid -> appearance order
        order = np.argsort(rank[inverse], kind="stable")  # rows grouped by query, file order inside
        return np.split(order, np.cumsum(counts[np.argsort(first, kind="stable")])[:-1])


class _Malformed(ValueError):
    """A parse error at a known line; turned into a ValueError naming the file."""

    def __init__(self, lineno: int, reason: str, line: str) -> None:
        super().__init__(reason)
        self.lineno, self.reason, self.line = lineno, reason, line


def _raise_malformed(path: Path, err: _Malformed) -> None:
    text = err.line.strip()
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise ValueError(f"{path}:{err.lineno}: malformed LETOR line ({err.reason}): {shown!r}") from None


def _parse_line_slow(lineno: int, line: str) -> tuple[int, int, list[int], list[float]]:
    """Parse one line token by token; any deviation from the format raises `_Malformed`."""
    toks = line.partition("#")[0].split()
    if len(toks) < 2:
        raise _Malformed(lineno, "expected '<relevance> qid:<id> <index>:<value> ...'", line)
    try:
        rel = int(toks[0])
    except ValueError:
        raise _Malformed(lineno, f"relevance {toks[0]!r} is not an integer", line) from None
    if not 0 <= rel <= MAX_RELEVANCE:
        raise _Malformed(lineno, f"relevance {rel} outside 0..{MAX_RELEVANCE}", line)
    if not toks[1].startswith("qid:"):
        raise _Malformed(lineno, f"second token {toks[1]!r} is not 'qid:<id>'", line)
    try:
        qid = int(toks[1][4:])
    except ValueError:
        raise _Malformed(lineno, f"query id {toks[1][4:]!r} is not an integer", line) from None
    cols: list[int] = []
    vals: list[float] = []
    for tok in toks[2:]:
        idx, sep, val = tok.partition(":")
        try:
            if not sep:
                raise ValueError
            col, value = int(idx), float(val)
        except ValueError:
            raise _Malformed(lineno, f"feature {tok!r} is not '<index>:<value>'", line) from None
        if col < 1:
            raise _Malformed(lineno, f"feature index {col} < 1", line)
        if cols and col <= cols[-1]:
            raise _Malformed(lineno, f"feature index {col} not increasing", line)
        cols.append(col)
        vals.append(value)
    return rel, qid, cols, vals


def _parse_dense(lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Fast path for a chunk in MSLR's dense layout (every line has features 1..F in order).

    The chunk goes through numpy's C text reader in one call after ':' becomes a separator; the
    checks afterwards (qid token, one ':' per token, indices exactly 1..F, integer grades 0..4)
    make sure nothing malformed gets through. Returns None when the chunk is not dense and valid.
    """
    bodies = [line.partition("#")[0] for _, line in lines]
    for body in bodies:
        toks = body.split(None, 2)
        if len(toks) < 2 or not toks[1].startswith("qid:"):
            return None
    text = "\n".join(body.replace("qid:", " ", 1).replace(":", " ") for body in bodies)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError:  # ragged or unparsable: let the line-by-line parser find out
        return None
    if arr.shape[0] != len(lines) or arr.shape[1] < 2 or arr.shape[1] % 2:
        return None
    rel, qid, cols = arr[:, 0], arr[:, 1], arr[:, 2::2]
    width = cols.shape[1]
    if not (
        all(body.count(":") == width + 1 for body in bodies)
        and np.array_equal(cols, np.broadcast_to(np.arange(1, width + 1, dtype=np.float64), cols.shape))
        and np.all(rel == np.round(rel))
        and np.all((rel >= 0) & (rel <= MAX_RELEVANCE))
        and np.all(qid == np.round(qid))
        and np.all(np.abs(qid) < 2**53)
    ):
        return None
    return arr[:, 3::2].astype(np.float32), rel.astype(np.int8), qid.astype(np.int64)


def _parse_chunk(lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a chunk of (line number, line); returns features [n, width], relevance, qids.

    Dense chunks take `_parse_dense`; anything else (sparse lines, errors) is parsed line by line,
    which also finds the first bad line for the error message.
    """
    dense = _parse_dense(lines)
    if dense is not None:
        return dense
    n = len(lines)
    rels = np.empty(n, np.int8)
    qids = np.empty(n, np.int64)
    row_cols: list[list[int]] = []
    row_vals: list[list[float]] = []
    for i, (lineno, line) in enumerate(lines):
        rels[i], qids[i], c, v = _parse_line_slow(lineno, line)
        row_cols.append(c)
        row_vals.append(v)
    width = max((c[-1] for c in row_cols if c), default=0)
    feats = np.zeros((n, width), np.float32)
    for i, (c, v) in enumerate(zip(row_cols, row_vals, strict=True)):
        feats[i, np.asarray(c, np.int64) - 1] = v
    return feats, rels, qids


def parse_letor(path: str | os.PathLike) -> LetorData:
    """Parse a LETOR text file, streaming it in chunks of lines (no cache; see `load_letor`).

    Blank lines and lines starting with '#' are skipped. Raises FileNotFoundError for a missing
    file and ValueError naming the file and line number for a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LETOR data file not found: {path}")
    feats: list[np.ndarray] = []
    rels: list[np.ndarray] = []
    qids: list[np.ndarray] = []
    chunk: list[tuple[int, str]] = []

    def flush() -> None:
        try:
            f, r, q = _parse_chunk(chunk)
        except _Malformed as err:
            _raise_malformed(path, err)
        feats.append(f)
        rels.append(r)
        qids.append(q)
        chunk.clear()

    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            chunk.append((lineno, stripped))
            if len(chunk) >= _CHUNK_LINES:
                flush()
    if chunk:
        flush()
    width = max((f.shape[1] for f in feats), default=0)
    features = np.zeros((sum(f.shape[0] for f in feats), width), np.float32)  # [N, F]
    row = 0
    while feats:  # pop as we copy so the peak memory stays about one copy of the data
        f = feats.pop(0)
        features[row : row + f.shape[0], : f.shape[1]] = f
        row += f.shape[0]
    relevance = np.concatenate(rels) if rels else np.zeros(0, np.int8)
    qid = np.concatenate(qids) if qids else np.zeros(0, np.int64)
    return LetorData(features=features, relevance=relevance, qids=qid, path=path)


# --------------------------------------------------------------------------- cache
def cache_dir(path: str | os.PathLike) -> Path:
    """Folder of the parsed arrays of `path` (beside it)."""
    path = Path(path)
    return path.with_name(path.name + ".ptde-cache")


def _source_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"version": CACHE_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_cache(path: Path, key: dict[str, int]) -> LetorData | None:
    folder = cache_dir(path)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if {k: meta.get(k) for k in key} != key:
            return None
        return LetorData(
            features=np.load(folder / "features.npy", mmap_mode="r"),
            relevance=np.load(folder / "relevance.npy"),
            qids=np.load(folder / "qids.npy"),
            path=path,
        )
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(data: LetorData, key: dict[str, int]) -> None:
    """Write the arrays into a private folder, then rename it into place (atomic for readers)."""
    folder = cache_dir(data.path)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "features.npy", data.features)
        np.save(tmp / "relevance.npy", data.relevance)
        np.save(tmp / "qids.npy", data.qids)
        meta = dict(key, n_rows=len(data), n_features=data.n_features, source=data.path.name)
        (tmp / "meta.json").write_text(json.dumps(meta))  # written last: marks a complete cache
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError as err:  # read-only data folder, or another process renamed first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "meta.json").exists():
            warnings.warn(f"could not cache parsed {data.path} in {folder}: {err}", stacklevel=3)


def load_letor(path: str | os.PathLike, use_cache: bool = True) -> LetorData:
    """Load a LETOR file, parsing it only when its cache is missing or stale (size or mtime changed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LETOR data file not found: {path}")
    key = _source_key(path)
    if use_cache:
        cached = _read_cache(path, key)
        if cached is not None:
            return cached
    data = parse_letor(path)
    if use_cache and _source_key(path) == key:  # don't cache a file that changed while we read it
        _write_cache(data, key)
    return data


# --------------------------------------------------------------------------- subsampling
@dataclass
class QuerySet:
    """Fixed-size slates: `n` queries of `d` documents each."""

    features: np.ndarray  # [n, d, F] float32
    relevance: np.ndarray  # [n, d] int64
    qids: np.ndarray  # [n] int64

    def __len__(self) -> int:
        return int(self.qids.shape[0])

    def subset(self, index: np.ndarray) -> QuerySet:
        return QuerySet(self.features[index], self.relevance[index], self.qids[index])


def subsample_queries(
    sources: LetorData | Sequence[LetorData],
    n_queries: int,
    docs_per_query: int = 10,
    max_relevant: int | None = None,
    seed: int = 0,
) -> QuerySet:
    """Draw `n_queries` eligible queries and a slate of `docs_per_query` documents of each.

    See the module docstring for the rules. Queries are never merged across files. Fewer eligible
    queries than asked for gives all of them, with a warning.
    """
    if isinstance(sources, LetorData):
        sources = [sources]
    if docs_per_query < 1:
        raise ValueError(f"docs_per_query must be >= 1, got {docs_per_query}")
    max_relevant = docs_per_query // 2 if max_relevant is None else max_relevant
    widths = {s.n_features for s in sources}
    n_features = max(widths, default=0)
    eligible = [(i, rows) for i, s in enumerate(sources) for rows in s.query_rows() if rows.size >= docs_per_query]
    if not eligible:
        names = ", ".join(str(s.path) for s in sources)
        raise ValueError(f"no query with >= {docs_per_query} documents in {names}")
    if n_queries > len(eligible):
        warnings.warn(
            f"asked for {n_queries} queries but only {len(eligible)} have >= {docs_per_query} documents; "
            "using all of them",
            stacklevel=2,
        )
        n_queries = len(eligible)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(eligible), size=n_queries, replace=False)
    features = np.zeros((n_queries, docs_per_query, n_features), np.float32)  # [n, d, F]
    relevance = np.zeros((n_queries, docs_per_query), np.int64)  # [n, d]
    qids = np.zeros(n_queries, np.int64)
    for q, c in enumerate(chosen):
        src_i, rows = eligible[c]
        src = sources[src_i]
        rel = np.asarray(src.relevance[rows])
        relevant = rows[rel > 0]
        n_rel = min(relevant.size, max_relevant)
        picked = rng.choice(relevant, size=n_rel, replace=False) if n_rel else relevant[:0]
        rest = np.setdiff1d(rows, picked, assume_unique=True)
        fill = rng.choice(rest, size=docs_per_query - n_rel, replace=False)
        slate = np.concatenate([picked, fill])
        rng.shuffle(slate)
        read = np.sort(slate)  # memory maps read fastest in order
        feats = np.asarray(src.features[read])
        features[q, :, : feats.shape[1]] = feats[np.searchsorted(read, slate)]
        relevance[q] = src.relevance[slate]
        qids[q] = src.qids[slate[0]]
    return QuerySet(features, relevance, qids)


def split_queries(queries: QuerySet, train_fraction: float = 0.7, seed: int = 0) -> tuple[QuerySet, QuerySet]:
    """Seeded random split into (train, test); train gets round(train_fraction * n) queries."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n = len(queries)
    perm = np.random.default_rng([seed, 1]).permutation(n)
    n_train = int(round(train_fraction * n))
    return queries.subset(np.sort(perm[:n_train])), queries.subset(np.sort(perm[n_train:]))


# --------------------------------------------------------------------------- normalisation
class FeatureNormalizer:
    """Per-feature normalisation fitted on training documents (see the module docstring)."""

    def __init__(self, method: str = "log1p_zscore") -> None:
        if method not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {method!r}; valid: {', '.join(NORMALIZATIONS)}")
        self.method = method
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _pre(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.sign(x) * np.log1p(np.abs(x)) if self.method == "log1p_zscore" else x

    def fit(self, features: np.ndarray) -> FeatureNormalizer:
        x = self._pre(features).reshape(-1, features.shape[-1])  # [N, F]
        if self.method == "minmax":
            self.shift, spread = x.min(0), x.max(0) - x.min(0)
        elif self.method == "none":
            self.shift, spread = np.zeros(x.shape[1]), np.ones(x.shape[1])
        else:
            self.shift, spread = x.mean(0), x.std(0)
        self.scale = np.where(spread > 1e-12, spread, 1.0)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        if self.shift is None or self.scale is None:
            raise RuntimeError("call fit() before transform()")
        return ((self._pre(features) - self.shift) / self.scale).astype(np.float32)


# --------------------------------------------------------------------------- synthetic data
# MSLR-WEB30K's grade distribution (approximately): 0: 52 %, 1: 32 %, 2: 13 %, 3: 2 %, 4: 1 %.
_GRADE_CDF = (0.52, 0.84, 0.97, 0.99)


def write_synthetic_letor(
    path: str | os.PathLike,
    n_queries: int,
    docs_per_query: int | tuple[int, int],
    n_features: int = 136,
    seed: int = 0,
) -> Path:
    """Write MSLR-shaped synthetic data in the LETOR text format; returns the path.

    Each query q has a latent vector u_q shared by its documents; document latents are
    z = u_q + e, e ~ N(0, I). The hidden relevance score is linear in 16 latents plus a sine, a
    product and a squared hinge term plus N(0, 0.5^2) noise; grades 0-4 quantise it at MSLR's
    grade frequencies, so a ranker can learn most of the order and some queries have no relevant
    document. Observed features are monotone transforms of z chosen by index mod 4 (raw, a
    heavy-tailed count round(3 e^z), a [0, 1] ratio, a 1000 e^z scale), like MSLR's mix of
    counts, ratios and BM25/PageRank values. `docs_per_query` is a count or an inclusive range.
    Lines carry a `# docid = ...` comment as LETOR 4.0's do. Written to a temporary name and then
    renamed, so concurrent readers never see a partial file.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    if isinstance(docs_per_query, int):
        counts = np.full(n_queries, docs_per_query)
    else:
        lo, hi = docs_per_query
        counts = rng.integers(lo, hi + 1, size=n_queries)
    qidx = np.repeat(np.arange(n_queries), counts)
    u = rng.standard_normal((n_queries, n_features)) * 0.7
    z = u[qidx] + rng.standard_normal((qidx.size, n_features))  # [N, F]
    n_inf = min(16, n_features)
    w = rng.standard_normal(n_inf) / np.sqrt(n_inf)
    score = z[:, :n_inf] @ w
    if n_features >= 4:
        a, b, c, d = rng.choice(n_features, size=4, replace=False)
        score += 0.6 * np.sin(1.5 * z[:, a]) + 0.4 * z[:, b] * z[:, c] + 0.3 * np.maximum(z[:, d], 0.0) ** 2
    score += rng.normal(0.0, 0.5, size=score.shape)
    grades = np.searchsorted(np.quantile(score, _GRADE_CDF), score, side="right")  # [N] 0..4
    kind = np.arange(n_features) % 4
    x = np.where(kind == 0, z, 0.0)
    x = np.where(kind == 1, np.round(3.0 * np.exp(z)), x)
    x = np.where(kind == 2, 1.0 / (1.0 + np.exp(-z)), x)
    x = np.where(kind == 3, 1000.0 * np.exp(z), x)
    fmt = " ".join(f"{j + 1}:%.6g" for j in range(n_features))
    doc_in_query = np.arange(qidx.size) - np.repeat(np.cumsum(counts) - counts, counts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, unique=True) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for i in range(qidx.size):
            q = int(qidx[i]) + 1
            fh.write(f"{grades[i]} qid:{q} {fmt % tuple(x[i])} # docid = synth-{q}-{doc_in_query[i]}\n")
    return path
