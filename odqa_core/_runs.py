"""Run files: the ranked hits of a batch of questions, written atomically.

``jsonl`` (default), one line per question, best hit first::

    {"id": "q-001", "question": "...", "hits": [{"doc_id": "doc-3#0", "score": 12.3, "source_ids": ["doc-3"]}]}

``source_ids`` is written only when it differs from ``[doc_id]`` (passages, deduplicated documents).
``trec`` is the six-column TREC run format Pyserini and trec_eval use: ``qid Q0 docid rank score tag``.

``npz`` is the run as arrays, for fusers and evaluation at large k: one ``np.savez`` archive (no pickle: every array
is numeric or unicode) holding ``header`` (UTF-8 JSON as uint8: format name, version, k, tag, sizes),
``question_ids``, ``doc_ids`` (each document the run refers to, once), ``indices`` (Q×k rows of ``doc_ids``),
``scores`` (Q×k float32, exact) and each document's ``source_ids`` (flattened, ``source_offsets`` D+1 bounds).
The zip format checks each array's CRC-32 as it is read, so a damaged file is a one-line :class:`DataError`.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _encode_json_string  # json's C escaper (ensure_ascii=False)
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core.data import json_problem
from odqa_core.errors import DataError, UsageError
from odqa_core.evaluation import Hit
from odqa_core.outputs import STDOUT, atomic_write_bytes, atomic_write_lines
from odqa_core.types import Document, Prediction, Question, RankedResults

RUN_FORMATS = ("jsonl", "trec", "npz")
#: ``format`` and ``version`` of the header of an ``npz`` run; a reader refuses other versions.
NPZ_RUN_FORMAT = "odqa-run"
NPZ_RUN_VERSION = 1
#: What every zip archive (and so every ``.npz``) starts with: a local file header, or the end record of an empty one.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def write_run(
    path: str | Path, questions: Sequence[Question], results: RankedResults, fmt: str = "jsonl", tag: str = "odqa"
) -> None:
    """Write the run file atomically (:func:`~odqa_core.outputs.atomic_write_lines`); ``path`` ``"-"`` writes it to
    standard output, and a device or FIFO (``/dev/null``, a pipe) is written in place, never replaced.

    Lines are formatted a block of questions at a time from pieces resolved once per document (its JSON id and
    ``source_ids``) and scores formatted as arrays (:func:`score_strings`): the same bytes as ``json.dumps`` of each
    line, at a fraction of its cost (benchmarks/run_writer.py). ``npz`` is one ``np.savez`` of the arrays (see the
    module's docstring), through :func:`~odqa_core.outputs.atomic_write_bytes`; never to standard output.
    """
    check_run_output(path, fmt)
    check_finite_scores(questions, results)
    if len(questions) > len(results):
        raise ValueError(f"{len(questions)} questions but ranked results for {len(results)}")
    positions, documents = _retrieved_documents(results, len(questions))
    if fmt == "npz":
        _write_npz_run(path, questions, positions, results.scores[: len(questions)], documents, tag)
        return
    trec = fmt == "trec"
    pieces = _trec_pieces(documents, tag) if trec else _jsonl_pieces(documents)
    rows_per_block = max(1, _BLOCK_HITS // max(results.k, 1))
    with atomic_write_lines(path) as fh:
        for start in range(0, len(questions), rows_per_block):
            block = slice(start, start + rows_per_block)
            scores = score_strings(results.scores[block], "trec" if trec else "json")
            format_block = _trec_block if trec else _jsonl_block
            fh.write(format_block(questions[block], positions[block], scores, pieces))


def check_run_output(path: str | Path, fmt: str) -> None:
    """Refuse, before any work, a run format that cannot go where it is asked to: an unknown one, or ``npz`` (binary)
    to standard output."""
    if fmt not in RUN_FORMATS:
        raise UsageError(f"unknown run format {fmt!r}; choose one of {', '.join(RUN_FORMATS)}")
    if fmt == "npz" and isinstance(path, str) and path == STDOUT:
        raise UsageError("the npz run format is binary and is not written to standard output; give --output a file")


def _write_npz_run(
    path: str | Path,
    questions: Sequence[Question],
    positions: np.ndarray,
    scores: np.ndarray,
    documents: list[Document],
    tag: str,
) -> None:
    source_ids = [doc.source_ids for doc in documents]
    offsets = np.zeros(len(documents) + 1, np.int64)
    np.cumsum([len(sources) for sources in source_ids], out=offsets[1:])
    index_dtype = np.int32 if len(documents) < 2**31 else np.int64
    header = {
        "format": NPZ_RUN_FORMAT,
        "version": NPZ_RUN_VERSION,
        "k": int(positions.shape[1]),
        "tag": tag,
        "n_questions": len(questions),
        "n_documents": len(documents),
    }
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8),
        "question_ids": _unicode_array([q.id for q in questions]),
        "doc_ids": _unicode_array([doc.id for doc in documents]),
        "indices": positions.astype(index_dtype, copy=False),
        "scores": np.asarray(scores, np.float32),
        "source_offsets": offsets,
        "source_ids": _unicode_array([s for sources in source_ids for s in sources]),
    }
    with atomic_write_bytes(path) as fh:
        np.savez(fh, **arrays)


def _unicode_array(strings: list[str]) -> np.ndarray:
    """A fixed-width unicode array (never an object array, which only pickle could store). numpy drops a string's
    trailing NULs, so such an id would not come back as it was: refused."""
    array = np.array(strings, dtype=str) if strings else np.zeros(0, "<U1")
    if any(s.endswith("\0") for s in strings):
        raise DataError("an id ends with a NUL character; the npz run format cannot store it (use jsonl)")
    return array


@dataclass(frozen=True)
class NpzRun:
    """An ``npz`` run as its arrays: ``doc_ids[indices[q, r]]`` is the document at rank ``r + 1`` of question
    ``question_ids[q]``, scored ``scores[q, r]``; its source ids are ``source_ids[source_offsets[d]:
    source_offsets[d + 1]]``."""

    header: dict
    question_ids: np.ndarray
    doc_ids: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    source_offsets: np.ndarray
    source_ids: np.ndarray

    def sources(self, document: int) -> tuple[str, ...]:
        start, end = self.source_offsets[document], self.source_offsets[document + 1]
        return tuple(self.source_ids[start:end].tolist())


_NPZ_ARRAYS = ("header", "question_ids", "doc_ids", "indices", "scores", "source_offsets", "source_ids")


def read_npz_run(path: str | Path) -> NpzRun:
    """The arrays of an ``npz`` run written by :func:`write_run`, checked; anything else (another archive, another
    version, a damaged or truncated file, an object array) is a one-line :class:`DataError`."""
    path = Path(path)
    where = f"{path}: not an npz run file written by 'odqa retrieve --format npz'"
    if not _is_zip(path):  # else np.load would try a .npy or a pickle
        raise DataError(f"{where} (not a zip archive)")
    try:
        # our own handle: np.load leaks the one it opens when the archive is unreadable
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
            missing = [name for name in _NPZ_ARRAYS if name not in archive.files]
            if missing:
                raise DataError(f"{where} (no {missing[0]!r} array)")
            header = _npz_header(path, where, archive["header"])
            arrays = {name: archive[name] for name in _NPZ_ARRAYS[1:]}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        reason = "it holds an object array, which only pickle can read" if "allow_pickle" in str(exc) else exc
        raise DataError(f"{where} ({_one_line(reason)})") from None
    run = NpzRun(header, **arrays)
    _check_npz_run(where, run)
    return run


def _one_line(reason: object) -> str:
    return " ".join(str(reason).split()) or type(reason).__name__


def _npz_header(path: Path, where: str, raw: np.ndarray) -> dict:
    try:
        header = json.loads(raw.astype(np.uint8, copy=False).tobytes().decode("utf-8")) if raw.ndim == 1 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != NPZ_RUN_FORMAT:
        raise DataError(f"{where} (its header is not an odqa run header)")
    if header.get("version") != NPZ_RUN_VERSION:
        raise DataError(
            f"{path}: npz run format version {header.get('version')!r}; this odqa reads version "
            f"{NPZ_RUN_VERSION} (write the run again, or use a matching odqa)"
        )
    return header


def _check_npz_run(where: str, run: NpzRun) -> None:
    n_questions, n_documents = len(run.question_ids), len(run.doc_ids)
    problems = [
        (run.question_ids.ndim != 1 or run.question_ids.dtype.kind != "U", "question_ids is not a 1-d unicode array"),
        (run.doc_ids.ndim != 1 or run.doc_ids.dtype.kind != "U", "doc_ids is not a 1-d unicode array"),
        (run.source_ids.ndim != 1 or run.source_ids.dtype.kind != "U", "source_ids is not a 1-d unicode array"),
        (run.indices.dtype.kind not in "iu", "indices are not integers"),
        (run.scores.dtype.kind != "f", "scores are not floats"),
        (
            run.indices.shape != (n_questions, run.header.get("k")) or run.scores.shape != run.indices.shape,
            f"indices {run.indices.shape} and scores {run.scores.shape} are not (questions, k) = "
            f"({n_questions}, {run.header.get('k')})",
        ),
    ]
    for failed, problem in problems:
        if failed:
            raise DataError(f"{where} ({problem})")
    offsets = run.source_offsets
    if (
        offsets.dtype.kind not in "iu"
        or offsets.shape != (n_documents + 1,)
        or offsets[0] != 0
        or offsets[-1] != len(run.source_ids)
        or (np.diff(offsets) < 0).any()
    ):
        raise DataError(f"{where} (source_offsets do not bound source_ids per document)")
    if run.indices.size and (run.indices.min() < 0 or run.indices.max() >= n_documents):
        raise DataError(f"{where} (an index outside doc_ids' {n_documents} documents)")
    if not np.isfinite(run.scores).all():
        raise DataError(f"{where} (non-finite scores)")


#: Hits formatted per block: large enough that numpy's per-call cost vanishes, small enough to bound the memory of
#: the pieces (a few MB).
_BLOCK_HITS = 1 << 16
#: Below this magnitude a score rounded to 6 decimals has at most 15 significant digits, so ``repr`` of the rounded
#: float prints exactly those digits and the fast path below is exact.
_FAST_SCORE_LIMIT = 1e9
_MICROS = 1_000_000
_SCORE_WIDTH = 1 + 9 + 1 + 6  # sign, integer digits, point, decimals


def score_strings(scores: np.ndarray, style: str = "json") -> np.ndarray:
    """The scores as the run files print them, an object array of ``str`` of the same shape: ``"json"`` is
    ``repr(round(score, 6))`` (what ``json.dumps`` writes for the rounded float), ``"trec"`` is ``f"{score:.6f}"``.

    float32 and float16 scores (what retrievers return) are formatted as arrays: times 10**6 they are exact in
    float64 (24 + 20 bits < 53), so ``rint`` rounds them half to even exactly as ``round`` and ``%.6f`` do, and
    the digits come from integer arithmetic. Other dtypes, scores beyond ``_FAST_SCORE_LIMIT`` and, for JSON, the
    nonzero scores under 0.0001 (which ``repr`` writes as ``1e-05``) are formatted by Python, one by one.
    """
    scores = np.asarray(scores)
    flat = scores.reshape(-1)
    python_format = _json_score if style == "json" else _trec_score
    if flat.dtype not in (np.float32, np.float16):
        return np.array([python_format(float(v)) for v in flat.tolist()], dtype=object).reshape(scores.shape)
    values = flat.astype(np.float64)
    in_range = np.abs(values) < _FAST_SCORE_LIMIT
    micros = np.rint(np.where(in_range, values, 0.0) * _MICROS)
    negative = np.signbit(micros)  # -0.0 and -4e-7 print "-0.0": the sign survives rounding to zero
    whole, decimals = np.divmod(np.abs(micros).astype(np.int64), _MICROS)
    n_whole = 1 + sum((whole >= 10**p).astype(np.int64) for p in range(1, 9))
    if style == "json":
        trailing_zeros = sum((decimals % 10**p == 0).astype(np.int64) for p in range(1, 7))
        n_decimals = np.maximum(6 - trailing_zeros, 1)  # 12.5 -> "12.5", 12.0 -> "12.0"
        slow = ~in_range | ((whole == 0) & (decimals > 0) & (decimals < 100))
    else:
        n_decimals = np.full(len(flat), 6, np.int64)
        slow = ~in_range
    # Scores with the same sign and number of integer digits have every character in the same column: each such
    # group is one array of code points, left-aligned and NUL-padded (numpy's str dtype drops trailing NULs).
    text = np.empty(len(flat), dtype=object)
    group = np.where(negative, 16, 0) + n_whole
    for key in np.flatnonzero(np.bincount(group, minlength=32)).tolist():
        members = np.flatnonzero(group == key)
        sign, digits = divmod(key, 16)
        member_whole, member_decimals = whole[members], decimals[members]
        chars = np.zeros((len(members), _SCORE_WIDTH), np.uint32)
        if sign:
            chars[:, 0] = ord("-")
        for column, place in enumerate(range(digits - 1, -1, -1), start=sign):  # integer digits, highest first
            chars[:, column] = ord("0") + (member_whole // 10**place) % 10
        point = sign + digits
        chars[:, point] = ord(".")
        member_n_decimals = n_decimals[members]
        for place in range(6):  # decimals, tenths first; JSON's trailing zeros left NUL
            digit = ord("0") + (member_decimals // 10 ** (5 - place)) % 10
            chars[:, point + 1 + place] = np.where(place < member_n_decimals, digit, 0)
        text[members] = chars.view(f"<U{_SCORE_WIDTH}").reshape(-1).astype(object)
    for i in np.flatnonzero(slow).tolist():
        text[i] = python_format(float(flat[i]))
    return text.reshape(scores.shape)


def _json_score(score: float) -> str:
    return repr(round(score, 6))


def _trec_score(score: float) -> str:
    return f"{score:.6f}"


def _retrieved_documents(results: RankedResults, n_rows: int) -> tuple[np.ndarray, list[Document]]:
    """``(positions, documents)``: ``documents[positions[row, rank]]`` is the document of each hit. The whole table
    when it is no longer than the hits, else only the retrieved rows (the table may be millions long)."""
    indices = results.indices[:n_rows]
    table = results.documents
    if len(table) <= indices.size:
        return indices, list(table)
    rows, positions = np.unique(indices, return_inverse=True)
    return positions.reshape(indices.shape), [table[i] for i in rows.tolist()]


def _jsonl_pieces(documents: list[Document]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: the text before its score, and after it followed by the next hit or by the line's end."""
    heads, tails = [], []
    for doc in documents:
        heads.append(f'{{"doc_id": {json.dumps(doc.id, ensure_ascii=False)}, "score": ')
        source_ids = doc.source_ids
        # as the hit dict {"doc_id", "score", "source_ids"} serialises; source_ids only when not just the id
        sources = (
            "" if source_ids == (doc.id,) else f', "source_ids": {json.dumps(list(source_ids), ensure_ascii=False)}'
        )
        tails.append(sources + "}")
    return (
        np.array(heads, dtype=object),
        np.array([t + ", " for t in tails], dtype=object),
        np.array([t + "]}\n" for t in tails], dtype=object),
    )


def _jsonl_block(
    questions: Sequence[Question], positions: np.ndarray, scores: np.ndarray, pieces: tuple[np.ndarray, ...]
) -> str:
    heads, next_hit, line_end = pieces
    openings = [
        f'{{"id": {json.dumps(q.id, ensure_ascii=False)}, "question": {json.dumps(q.text, ensure_ascii=False)}, '
        '"hits": ['
        for q in questions
    ]
    n_rows, k = positions.shape
    if k == 0:
        return "".join(opening + "]}\n" for opening in openings)
    parts = np.empty((n_rows, 1 + 3 * k), dtype=object)
    parts[:, 0] = openings
    parts[:, 1::3] = heads[positions]
    parts[:, 2::3] = scores
    parts[:, 3::3] = next_hit[positions]
    parts[:, -1] = line_end[positions[:, -1]]
    return "".join(parts.reshape(-1).tolist())


def _trec_pieces(documents: list[Document], tag: str) -> tuple[np.ndarray, str]:
    return np.array([f" Q0 {doc.id} " for doc in documents], dtype=object), f" {tag}\n"


def _trec_block(
    questions: Sequence[Question], positions: np.ndarray, scores: np.ndarray, pieces: tuple[np.ndarray, str]
) -> str:
    """``qid Q0 docid rank score tag`` per hit."""
    documents, line_end = pieces
    n_rows, k = positions.shape
    parts = np.empty((n_rows, k, 5), dtype=object)
    parts[:, :, 0] = np.array([f"{q.id}" for q in questions], dtype=object)[:, None]
    parts[:, :, 1] = documents[positions]
    parts[:, :, 2] = np.array([f"{rank} " for rank in range(1, k + 1)], dtype=object)
    parts[:, :, 3] = scores
    parts[:, :, 4] = line_end
    return "".join(parts.reshape(-1).tolist())


def check_finite_scores(questions: Sequence[Question], results: RankedResults) -> None:
    """Refuse results holding a NaN or infinite score: JSON has no such numbers (a run file with ``NaN`` is
    invalid JSON) and no ranking can be trusted with them. They come from options like ``k1=Infinity``."""
    finite = np.isfinite(results.scores)
    if finite.all():
        return
    row, rank = (int(i) for i in np.argwhere(~finite)[0])
    qid = questions[row].id if row < len(questions) else str(row)
    raise DataError(
        f"question {qid!r} got a score of {float(results.scores[row, rank])} at rank {rank + 1} "
        f"({int((~finite).sum())} non-finite scores in all); not writing a run with them: check the components' "
        "numeric options"
    )


def read_run(path: str | Path, documents: Sequence[Document] | None = None) -> dict[str, list[Hit]]:
    """``{question_id: [Hit, ...]}`` from a jsonl, TREC or npz run (told apart by their first bytes); passage texts
    are attached when ``documents`` given.

    Every problem with the file is a one-line :class:`DataError` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such run file")
    by_id = {d.id: d for d in documents} if documents is not None else {}
    if _is_zip(path) or path.suffix.lower() == ".npz":
        return _npz_hits(path, read_npz_run(path), by_id)
    runs: dict[str, list[Hit]] = {}
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; binary so that a bad byte gets its line number
    except OSError as exc:
        raise DataError(f"{path}: cannot read the run file ({exc.strerror or exc})") from None
    with fh:
        for number, raw in enumerate(fh, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path} line {number}: not UTF-8 text (bad byte at column {exc.start + 1}); "
                    "is it a run file written by 'odqa retrieve'?"
                ) from None
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                qid, parsed = _jsonl_run_line(path, number, line)
                runs[qid] = [_hit(doc_id, sources, by_id) for doc_id, sources in parsed]
            else:
                parts = line.split()
                if len(parts) != 6:
                    raise DataError(f"{path} line {number}: expected a jsonl or 6-column TREC run line")
                runs.setdefault(parts[0], []).append(_hit(parts[2], None, by_id))
    if not runs:
        raise DataError(f"{path}: the run file is empty")
    return runs


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _ZIP_MAGIC
    except OSError as exc:
        raise DataError(f"{path}: cannot read the run file ({exc.strerror or exc})") from None


def _npz_hits(path: Path, run: NpzRun, by_id: dict[str, Document]) -> dict[str, list[Hit]]:
    """One :class:`Hit` per document of the run, shared by every ranking that holds it."""
    if not len(run.question_ids):
        raise DataError(f"{path}: the run file is empty")
    doc_ids = run.doc_ids.tolist()
    offsets = run.source_offsets.tolist()
    source_ids = run.source_ids.tolist()
    table = [_hit(doc_id, tuple(source_ids[offsets[d] : offsets[d + 1]]), by_id) for d, doc_id in enumerate(doc_ids)]
    return {qid: [table[i] for i in row] for qid, row in zip(run.question_ids.tolist(), run.indices.tolist())}


def _jsonl_run_line(path: Path, number: int, line: str) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The question id and ``(doc_id, source_ids)`` hits of one jsonl run line."""
    where = f"{path} line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: malformed JSON ({json_problem(exc)} at column {exc.colno})") from None
    if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("hits"), list):
        raise DataError(f'{where}: not a run line (expected an object with "id" and a "hits" list)')
    parsed = []
    for rank, hit in enumerate(row["hits"], 1):
        doc_id = hit.get("doc_id") if isinstance(hit, dict) else None
        sources = hit.get("source_ids") if isinstance(hit, dict) else None
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise DataError(f'{where}: hit {rank} has no "doc_id" (a string)')
        if sources is not None and not (
            isinstance(sources, list) and all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in sources)
        ):
            raise DataError(f'{where}: hit {rank}: "source_ids" must be a list of document ids, got {sources!r}')
        parsed.append((str(doc_id), tuple(str(s) for s in sources or (doc_id,))))
    return str(row["id"]), parsed


def _hit(doc_id: str, sources: tuple[str, ...] | None, by_id: dict[str, Document]) -> Hit:
    doc = by_id.get(doc_id)
    if doc is not None:
        return Hit(doc_id, doc.source_ids, doc.text)
    return Hit(doc_id, sources or (doc_id,), None)


# --- reader outputs: predictions.json and nbest_predictions.json ---------------------------------------------------
#
# ``json.dumps(..., indent=1)`` runs the pure-Python encoder (the C one serves only ``indent=None``), so an n-best
# file of 5,774 questions × 5 answers took ~0.2 s. These writers format the same text from strings: the C string
# escaper json uses, ``float.__repr__``/``int.__repr__`` as json does, the softmax of every n-best list of one length
# in one numpy pass, each passage id escaped once. The output is byte-identical to the json.dumps texts
# (tests/test_answer_files.py); a value these writers do not format (a non-str key or answer, a float32 score...)
# sends the whole file through json.dumps, which formats it or raises exactly as before.


def predictions_json_text(questions: Sequence[Question], nbest: Sequence[Sequence[Prediction]]) -> str:
    """``predictions.json``: ``{question_id: best answer}``, ``""`` where the n-best list is empty."""
    answers = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
    try:
        return _json_object_text({key: _json_string(answer) for key, answer in answers.items()})
    except TypeError:
        return json.dumps(answers, ensure_ascii=False, indent=1)


def nbest_predictions_json_text(questions: Sequence[Question], nbest: Sequence[Sequence[Prediction]]) -> str:
    """``nbest_predictions.json``: ``{question_id: nbest_entries(predictions)}``, as ``json.dumps(indent=1)``."""
    nbest = [list(preds) for preds in nbest]
    try:
        return _nbest_text(questions, nbest)
    except TypeError:
        entries = {q.id: nbest_entries(preds) for q, preds in zip(questions, nbest)}
        return json.dumps(entries, ensure_ascii=False, indent=1)


def _nbest_text(questions: Sequence[Question], nbest: list[list[Prediction]]) -> str:
    """Every field of every entry formatted as a column (one C-level ``map`` where the types allow), then each entry
    from its five pieces and each question's list from its run of entries."""
    flat = [prediction for predictions in nbest for prediction in predictions]
    answers = _column([p.answer for p in flat], _encode_json_string, _json_string)
    scores = [p.score for p in flat]
    finite = bool(np.isfinite(np.array(scores, np.float64)).all()) if scores else True
    score_texts = _column(scores, _float_repr if finite else _json_scalar, _json_scalar)
    quoted_doc_ids: dict[object, str] = {}
    for doc_id in {p.doc_id for p in flat}:
        quoted_doc_ids[doc_id] = _json_scalar(doc_id)
    doc_ids = [quoted_doc_ids[p.doc_id] for p in flat]
    starts = [_int_repr(start) if type(start) is int else _json_scalar(start) for start in (p.start for p in flat)]
    probabilities = [text for row in _softmax_texts(nbest) for text in row]
    entries = [
        f'  {{\n   "text": {text},\n   "probability": {probability},\n   "score": {score},\n'
        f'   "doc_id": {doc_id},\n   "start": {start}\n  }}'
        for text, probability, score, doc_id, start in zip(answers, probabilities, score_texts, doc_ids, starts)
    ]
    items: dict[str, str] = {}
    end = 0
    for question, predictions in zip(questions, nbest):
        begin, end = end, end + len(predictions)
        items[question.id] = "[\n" + ",\n".join(entries[begin:end]) + "\n ]" if predictions else "[]"
    return _json_object_text(items)


def _softmax_texts(nbest: list[list[Prediction]]) -> list[list[str]]:
    """Each list's softmax as ``nbest_entries`` computes it (float64, max subtracted), as JSON numbers. Lists of one
    length are stacked into one matrix: the same elementwise operations and row reductions, so the same floats."""
    rows_by_length: dict[int, list[int]] = {}
    for row, predictions in enumerate(nbest):
        rows_by_length.setdefault(len(predictions), []).append(row)
    texts: list[list[str]] = [[] for _ in nbest]
    for length, rows in rows_by_length.items():
        if length == 0:
            continue
        scores = np.array([[p.score for p in nbest[row]] for row in rows], np.float64)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        probabilities = weights / weights.sum(axis=1, keepdims=True)
        to_text = _float_repr if np.isfinite(probabilities).all() else _json_scalar
        for row, values in zip(rows, probabilities.tolist()):
            texts[row] = list(map(to_text, values))
    return texts


def _column(values: list, fast: Callable[[Any], str], general: Callable[[Any], str]) -> list[str]:
    """``values`` formatted by ``fast`` (a C function refusing other types with TypeError), else by ``general``."""
    try:
        return list(map(fast, values))
    except TypeError:
        return list(map(general, values))


def _json_object_text(items: dict[str, str]) -> str:
    """A JSON object of already formatted values, laid out as ``json.dumps(indent=1)`` does."""
    if not items:
        return "{}"
    return "{\n" + ",\n".join(f" {_json_string(key)}: {value}" for key, value in items.items()) + "\n}"


def _json_string(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")  # the caller falls back to json.dumps
    return _encode_json_string(value)


def _json_scalar(value: object) -> str:
    """``value`` as json.dumps writes it (floats as ``float.__repr__``, NaN/Infinity as json spells them)."""
    if isinstance(value, str):
        return _encode_json_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (_INFINITY, -_INFINITY):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    raise TypeError(f"not a JSON scalar: {value!r}")  # the caller falls back to json.dumps


_INFINITY = float("inf")
_float_repr, _int_repr = float.__repr__, int.__repr__


def nbest_entries(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """One question's n-best list as HuggingFace's ``nbest_predictions.json`` writes it (text, probability:
    softmax over the list's scores) plus the score, passage id and character offset."""
    scores = np.array([p.score for p in predictions], np.float64)
    probs = np.exp(scores - scores.max()) if len(scores) else scores
    probs = probs / probs.sum() if len(scores) else probs
    return [
        {"text": p.answer, "probability": float(prob), "score": p.score, "doc_id": p.doc_id, "start": p.start}
        for p, prob in zip(predictions, probs.tolist())
    ]
