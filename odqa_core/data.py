"""Corpora and questions from the formats ODQA data comes in, plus deduplication and passage splitting.

Formats (see :func:`detect_format`):

``squad``
    SQuAD / KorQuAD v1 JSON. One file is both a corpus (its distinct paragraph contexts, titled with their article
    title) and a question set (each question's gold document is its own context). Context ids are derived from the
    text (``ctx-`` + 12 hex digits of its SHA-1), so identical contexts share an id and re-runs give the same ids.
``klue-wiki``
    The KLUE MRC competition corpus ``wikipedia_documents.json``: ``{"0": {"text", "title", "document_id"}, ...}``.
``hf-dataset``
    A directory written by ``datasets.save_to_disk`` (KLUE MRC questions). Pass ``dir`` or ``dir:split``; the
    default split is ``validation`` when there is one, else the only one. Needs the optional ``datasets`` package.
``jsonl`` / ``json-records``
    One JSON object per line (``.jsonl``), or a ``.json`` file holding a list of such objects. Corpus records are
    ``{"id", "text", "title"?, "metadata"?}``; question records are ``{"id", "question", "answers"?, "doc_ids"?}``
    where answers are strings, ``{"text", "answer_start"}`` objects, or ``{"text": [...], "answer_start": [...]}``.

Every problem with the input is a :class:`DataError` whose one-line message names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core.errors import DataError, UsageError
from odqa_core.types import Document, Question, RankedResults

SQUAD = "squad"
KLUE_WIKI = "klue-wiki"
HF_DATASET = "hf-dataset"
JSONL = "jsonl"
JSON_RECORDS = "json-records"
FORMATS = (SQUAD, KLUE_WIKI, HF_DATASET, JSONL, JSON_RECORDS)

_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_EXPECTED = "expected SQuAD/KorQuAD JSON, KLUE wikipedia_documents.json, JSONL, a JSON list or a datasets directory"


def context_id(text: str) -> str:
    """The stable id of a SQuAD-style context: equal texts get equal ids, on every run and machine."""
    return "ctx-" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------- detection


@dataclass
class _Source:
    label: str  # the path as the user gave it, for messages
    path: Path
    format: str
    split: str | None = None
    payload: Any = None  # the parsed JSON of a whole-file JSON format


def _one_line(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_saved_dataset(path: Path) -> bool:
    return any((path / name).is_file() for name in ("dataset_dict.json", "state.json", "dataset_info.json"))


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong in a JSON text, without the position (messages give it their own way).

    Some of the json module's messages end in a dangling "at" (``Unterminated string starting at``) that its own
    ``str()`` completes with the position; dropped here, so that a message never reads "... at at column 7".
    """
    return exc.msg.removesuffix(" at").removesuffix(" starting")


def _locate(path: str | Path) -> tuple[str, Path, str | None]:
    """``(label, path, split)`` of an input that exists and can be opened, without reading it."""
    label = str(path)
    p = Path(path)
    split = None
    if not p.exists():
        base, sep, tail = label.rpartition(":")
        if sep and base and tail and "/" not in tail and Path(base).is_dir():
            p, split = Path(base), tail
        else:
            raise DataError(f"{label}: no such file or directory")
    if p.is_dir():
        if _is_saved_dataset(p):
            return label, p, split
        raise DataError(f"{label}: is a directory, not a data file or a dataset saved with datasets.save_to_disk")
    if not p.is_file():
        raise DataError(f"{label}: not a regular file")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise DataError(f"{label}: cannot read ({_one_line(exc.strerror or exc)})") from None
    return label, p, None


def check_input(path: str | Path) -> None:
    """Fail now, with the one-line :class:`DataError` that loading would give, when ``path`` (a corpus or
    questions file, or a ``dir[:split]`` dataset) does not exist or cannot be opened.

    The CLI calls it on every input before a slow step (loading an index or a model, indexing), so that a
    mistyped path is reported at once rather than after minutes of work. It reads nothing.
    """
    _locate(path)


def _open(path: str | Path) -> _Source:
    label, p, split = _locate(path)
    if p.is_dir():
        return _Source(label, p, HF_DATASET, split)
    if p.suffix.lower() in _JSONL_SUFFIXES:
        return _Source(label, p, JSONL)
    raw = _read_bytes(label, p)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and _first_line_is_object(text):
            return _Source(label, p, JSONL)
        problem = json_problem(exc)
        raise DataError(f"{label} line {exc.lineno} column {exc.colno}: malformed JSON ({problem})") from None
    return _Source(label, p, _classify(label, payload), payload=payload)


def _read_bytes(label: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{label}: cannot read ({_one_line(exc.strerror or exc)})") from None


def _first_line_is_object(text: str) -> bool:
    for line in text.splitlines():
        if line.strip():
            try:
                return isinstance(json.loads(line), dict)
            except json.JSONDecodeError:
                return False
    return False


def _classify(label: str, payload: Any) -> str:
    if isinstance(payload, list):
        return JSON_RECORDS
    if isinstance(payload, dict):
        if "data" in payload:
            if not isinstance(payload["data"], list):
                raise DataError(f'{label}: "data" must be a list of articles (SQuAD layout)')
            return SQUAD
        if payload and all(isinstance(v, dict) and "text" in v for v in payload.values()):
            return KLUE_WIKI
    raise DataError(f"{label}: not a recognised format ({_EXPECTED})")


def detect_format(path: str | Path) -> str:
    """The format of ``path``: one of :data:`FORMATS`. A ``dir:split`` path names a split of a saved dataset."""
    return _open(path).format


# --------------------------------------------------------------------------------------------------- records


def _jsonl_records(src: _Source) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(location, object)`` for each non-blank line of a JSONL file."""
    try:
        fh = open(src.path, "rb")  # noqa: SIM115 - closed below; binary so a bad byte gets its line number
    except OSError as exc:
        raise DataError(f"{src.label}: cannot read ({_one_line(exc.strerror or exc)})") from None
    with fh:
        for number, raw in enumerate(fh, 1):
            where = f"{src.label} line {number}"
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not UTF-8 text (bad byte at column {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: malformed JSON ({json_problem(exc)} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record


def _list_records(src: _Source) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, record in enumerate(src.payload):
        where = f"{src.label} item {number}"
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield where, record


def _records(src: _Source) -> Iterator[tuple[str, dict[str, Any]]]:
    return _jsonl_records(src) if src.format == JSONL else _list_records(src)


#: A record kind's field, what a file of them holds and what to pass such a file as.
_RECORD_KINDS = {
    "document": ("text", "corpus documents", "the corpus"),
    "question": ("question", "questions", "the questions file"),
}


def _records_of_kind(src: _Source, kind: str, other_kind: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(where, record, id)`` of each record, checked to be of ``kind``: a file whose first record is of
    ``other_kind`` was passed in the wrong place; every record has the kind's field."""
    field, holds, _ = _RECORD_KINDS[kind]
    other_field, other_holds, pass_other_as = _RECORD_KINDS[other_kind]
    for n, (where, record) in enumerate(_records(src)):
        if n == 0 and other_field in record and field not in record:
            raise DataError(
                f'{src.label}: holds {other_holds} (records with "{other_field}"), not {holds} '
                f'(records with "{field}"); pass it as {pass_other_as}'
            )
        record_id = _record_id(where, record, kind)
        if field not in record:
            raise DataError(f'{where}: {kind} {record_id!r} has no "{field}" field')
        yield where, record, record_id


def _record_id(where: str, record: Mapping[str, Any], what: str) -> str:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value):
        raise DataError(f'{where}: {what} needs an "id" (a non-empty string or an integer), got {value!r}')
    return str(value)


def _metadata(where: str, record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise DataError(f'{where}: "metadata" must be an object, got {type(meta).__name__}')
    if "source_ids" in meta:
        meta = {**meta, "source_ids": tuple(str(s) for s in meta["source_ids"])}
    return meta


# --------------------------------------------------------------------------------------------------- corpus


class _CorpusBuilder:
    """Collects documents, merging exact repeats of an id and refusing an id reused for a different text."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.documents: list[Document] = []
        self._seen: dict[str, tuple[int, str]] = {}

    def add(self, where: str, doc_id: str, text: Any, title: Any, metadata: Mapping[str, Any] | None = None) -> None:
        if not isinstance(text, str):
            raise DataError(f'{where}: document {doc_id!r} has no text ("text" must be a string)')
        if not text.strip():
            raise DataError(f"{where}: document {doc_id!r} has empty text")
        if title is not None and not isinstance(title, str):
            raise DataError(f"{where}: document {doc_id!r} has a non-string title")
        seen = self._seen.get(doc_id)
        if seen is not None:
            if self.documents[seen[0]].text != text:
                raise DataError(
                    f"{where}: duplicate document id {doc_id!r} with a different text (first at {seen[1]})"
                )
            return
        self._seen[doc_id] = (len(self.documents), where.removeprefix(self.label + " ") or "start")
        self.documents.append(Document(id=doc_id, text=text, title=title or "", metadata=metadata or {}))


def _squad_articles(src: _Source) -> Iterator[tuple[int, str, int, Mapping[str, Any]]]:
    """``(article index, title, paragraph index, paragraph)`` of a SQuAD payload, checking the layout."""
    for i, article in enumerate(src.payload["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(f'{src.label}: data[{i}] has no "paragraphs" list (SQuAD layout)')
        title = article.get("title") or ""
        if not isinstance(title, str):
            title = str(title)
        for j, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise DataError(f'{src.label}: data[{i}].paragraphs[{j}] has no "context" string')
            yield i, title, j, paragraph


def _squad_corpus(src: _Source) -> list[Document]:
    corpus = _CorpusBuilder(src.label)
    for i, title, j, paragraph in _squad_articles(src):
        context = paragraph["context"]
        corpus.add(f"{src.label} data[{i}].paragraphs[{j}]", context_id(context), context, title)
    return corpus.documents


def _klue_wiki_corpus(src: _Source) -> list[Document]:
    corpus = _CorpusBuilder(src.label)
    for key, record in src.payload.items():
        doc_id = record.get("document_id", key)
        doc_id = str(doc_id) if doc_id is not None else str(key)
        meta = {"corpus_source": record["corpus_source"]} if record.get("corpus_source") is not None else {}
        corpus.add(f"{src.label} key {key!r}", doc_id, record.get("text"), record.get("title"), meta)
    return corpus.documents


def _records_corpus(src: _Source) -> list[Document]:
    corpus = _CorpusBuilder(src.label)
    for where, record, doc_id in _records_of_kind(src, "document", other_kind="question"):
        corpus.add(where, doc_id, record["text"], record.get("title"), _metadata(where, record))
    return corpus.documents


def _hf_corpus(src: _Source) -> list[Document]:
    columns = _hf_columns(src)
    if "context" not in columns:
        raise DataError(
            f'{src.label}: the dataset has no "context" column to build a corpus from '
            f"(columns: {', '.join(columns)}); the KLUE corpus is wikipedia_documents.json"
        )
    corpus = _CorpusBuilder(src.label)
    contexts = columns["context"]
    ids = columns.get("document_id") or [None] * len(contexts)
    titles = columns.get("title") or [""] * len(contexts)
    for row, (context, doc_id, title) in enumerate(zip(contexts, ids, titles)):
        if not isinstance(context, str):
            raise DataError(f'{src.label} row {row}: "context" must be a string')
        doc_id = context_id(context) if doc_id is None else str(doc_id)
        corpus.add(f"{src.label} row {row}", doc_id, context, title)
    return corpus.documents


def load_corpus(
    path: str | Path, *, split_words: int | None = None, stride: int | None = None, dedupe: bool = True
) -> list[Document]:
    """The documents of a corpus file in any supported format.

    ``dedupe`` collapses identical texts (see :func:`deduplicate`); ``split_words`` then cuts each document into
    passages of that many words, ``stride`` words apart (see :func:`split_passages`).
    """
    if split_words is not None:
        _window(split_words, stride)  # fail before reading a large file
    elif stride is not None:
        raise UsageError(f"stride={stride} needs split_words (the passage length in words)")
    src = _open(path)
    if src.format == SQUAD:
        documents = _squad_corpus(src)
    elif src.format == KLUE_WIKI:
        documents = _klue_wiki_corpus(src)
    elif src.format == HF_DATASET:
        documents = _hf_corpus(src)
    else:
        documents = _records_corpus(src)
    if not documents:
        raise DataError(f"{src.label}: no documents")
    if dedupe:
        documents = deduplicate(documents)
    if split_words is not None:
        documents = split_passages(documents, split_words, stride)
    return documents


# --------------------------------------------------------------------------------------------------- questions


def _answers(where: str, qid: str, value: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Answers and their starts (all of them, or none) from the answer layouts the formats use."""
    if value is None:
        return (), ()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
        if not isinstance(texts, list) or (starts is not None and not isinstance(starts, list)):
            raise DataError(f'{where}: question {qid!r}: "answers" needs a "text" list (and "answer_start")')
        if starts is not None and len(starts) != len(texts):
            raise DataError(f"{where}: question {qid!r}: {len(texts)} answer texts but {len(starts)} answer_start")
        value = [{"text": t, "answer_start": s} for t, s in zip(texts, starts or [None] * len(texts))]
    if not isinstance(value, list):
        raise DataError(f'{where}: question {qid!r}: "answers" must be a list, got {type(value).__name__}')
    answers: list[str] = []
    starts_out: list[int | None] = []
    for item in value:
        text, start = (item, None) if isinstance(item, str) else (None, None)
        if isinstance(item, dict):
            text, start = item.get("text"), item.get("answer_start")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: question {qid!r} has an empty or non-string answer ({_one_line(item, 60)})")
        if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
            raise DataError(f"{where}: question {qid!r}: answer_start must be a non-negative integer, got {start!r}")
        answers.append(text)
        starts_out.append(start)
    if any(s is None for s in starts_out):
        return tuple(answers), ()
    return tuple(answers), tuple(s for s in starts_out if s is not None)


class _QuestionsBuilder:
    def __init__(self, label: str) -> None:
        self.label = label
        self.questions: list[Question] = []
        self._seen: set[str] = set()

    def add(
        self,
        where: str,
        qid: str,
        text: Any,
        answers: Any,
        doc_ids: Sequence[str],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: question {qid!r} has empty text")
        if qid in self._seen:
            raise DataError(f"{where}: duplicate question id {qid!r}")
        self._seen.add(qid)
        texts, starts = _answers(where, qid, answers)
        self.questions.append(Question(qid, text, texts, starts, tuple(doc_ids), metadata or {}))


def _squad_questions(src: _Source) -> list[Question]:
    questions = _QuestionsBuilder(src.label)
    for i, title, j, paragraph in _squad_articles(src):
        doc_id = context_id(paragraph["context"])
        qas = paragraph.get("qas") or []
        if not isinstance(qas, list):
            raise DataError(f"{src.label}: data[{i}].paragraphs[{j}].qas must be a list")
        for k, qa in enumerate(qas):
            where = f"{src.label} data[{i}].paragraphs[{j}].qas[{k}]"
            if not isinstance(qa, dict):
                raise DataError(f"{where}: expected an object")
            qid = _record_id(where, qa, "question")
            meta = {"title": title, "article": i}
            questions.add(where, qid, qa.get("question"), qa.get("answers"), (doc_id,), meta)
    return questions.questions


def _doc_ids(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return tuple(str(v) for v in value)
    raise DataError(f'{where}: "doc_ids" must be a list of ids, got {_one_line(value, 60)}')


def _records_questions(src: _Source) -> list[Question]:
    questions = _QuestionsBuilder(src.label)
    for where, record, qid in _records_of_kind(src, "question", other_kind="document"):
        doc_ids = _doc_ids(where, record.get("doc_ids", record.get("doc_id")))
        questions.add(where, qid, record["question"], record.get("answers"), doc_ids, _metadata(where, record))
    return questions.questions


def _hf_questions(src: _Source) -> list[Question]:
    columns = _hf_columns(src)
    for needed in ("id", "question"):
        if needed not in columns:
            raise DataError(f'{src.label}: the dataset has no "{needed}" column (columns: {", ".join(columns)})')
    questions = _QuestionsBuilder(src.label)
    n = len(columns["id"])
    answers = columns.get("answers") or [None] * n
    doc_ids = columns.get("document_id") or [None] * n
    contexts = columns.get("context") or [None] * n
    titles = columns.get("title") or [None] * n
    for row in range(n):
        where = f"{src.label} row {row}"
        if doc_ids[row] is not None:
            gold: tuple[str, ...] = (str(doc_ids[row]),)
        elif isinstance(contexts[row], str):
            gold = (context_id(contexts[row]),)
        else:
            gold = ()
        meta = {"title": titles[row]} if titles[row] else {}
        questions.add(where, str(columns["id"][row]), columns["question"][row], answers[row], gold, meta)
    return questions.questions


def load_questions(path: str | Path) -> list[Question]:
    """The questions of a file in any supported format, with their gold answers and document ids when known."""
    src = _open(path)
    if src.format == SQUAD:
        questions = _squad_questions(src)
    elif src.format == KLUE_WIKI:
        raise DataError(f"{src.label}: is a KLUE wikipedia_documents.json corpus, not a questions file")
    elif src.format == HF_DATASET:
        questions = _hf_questions(src)
    else:
        questions = _records_questions(src)
    if not questions:
        raise DataError(f"{src.label}: no questions")
    return questions


# --------------------------------------------------------------------------------------------------- datasets


def _hf_columns(src: _Source) -> dict[str, list[Any]]:
    """The columns of the chosen split of a ``save_to_disk`` directory, as Python lists."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"reading {src.label} needs the 'datasets' package: pip install 'odqa[klue]'") from None
    try:
        loaded = datasets.load_from_disk(str(src.path))
    except Exception as exc:  # the library raises many types for a damaged directory; all mean the same here
        raise DataError(
            f"{src.label}: cannot read the saved dataset ({type(exc).__name__}: {_one_line(exc)})"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if src.split is not None:
            if src.split not in loaded:
                raise DataError(f"{src.label}: no split {src.split!r} (splits: {', '.join(splits)})")
            split = src.split
        elif "validation" in loaded:
            split = "validation"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise DataError(
                f"{src.label}: several splits and no 'validation'; choose one as {src.label}:SPLIT "
                f"(splits: {', '.join(splits)})"
            )
        loaded = loaded[split]
    elif src.split is not None:
        raise DataError(f"{src.label}: a single dataset without splits; drop the ':{src.split}'")
    return loaded.to_dict()


# --------------------------------------------------------------------------------------------------- transforms


def deduplicate(documents: Iterable[Document]) -> list[Document]:
    """Collapse documents with identical (stripped) texts into the first of them, in order.

    The kept document's ``metadata["source_ids"]`` lists the source ids of every document merged into it, its own
    first, so gold document ids of questions still map to it. Documents without duplicates are returned as they are.
    """
    slot_of: dict[str, int] = {}
    groups: list[list[Document]] = []
    for doc in documents:
        key = doc.text.strip()
        slot = slot_of.get(key)
        if slot is None:
            slot_of[key] = len(groups)
            groups.append([doc])
        else:
            groups[slot].append(doc)
    out = []
    for group in groups:
        kept = group[0]
        if len(group) > 1:
            ids = tuple(dict.fromkeys(source for doc in group for source in doc.source_ids))
            kept = Document(kept.id, kept.text, kept.title, {**kept.metadata, "source_ids": ids})
        out.append(kept)
    return out


# Characters ``str.split()`` splits on; none lies above U+3000 (tests check this against str.isspace).
_SPACE_LIMIT = 0x3001
_IS_SPACE = np.array([chr(c).isspace() for c in range(_SPACE_LIMIT)])
_CHUNK_CHARS = 1 << 23


def _word_spans(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whitespace-word boundaries of many texts at once.

    Returns ``(starts, ends, first, count)``: character start and end of every word, as offsets into its own
    text, and for each text the index of its first word in those arrays and its number of words.
    """
    lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    base = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])  # texts are joined with one "\n"
    joined = "\n".join(texts) + "\n"
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
    # Only characters up to U+0020 or in U+0085..U+3000 can be spaces; looking up just those is much faster.
    maybe_space = np.flatnonzero((codes <= 0x20) | ((codes >= 0x85) & (codes < _SPACE_LIMIT)))
    word = np.ones(len(codes) + 1, bool)
    word[0] = False
    word[maybe_space + 1] = ~_IS_SPACE[codes[maybe_space]]
    # Word starts and ends alternate; the joined text ends with a space, so every start has its end.
    changes = np.flatnonzero(word[1:] != word[:-1])
    starts, ends = changes[0::2], changes[1::2]
    first = np.searchsorted(starts, base)
    count = np.searchsorted(starts, base + lengths) - first
    owner = np.repeat(np.arange(len(texts)), count)
    return starts - base[owner], ends - base[owner], first, count


def _window(words: Any, stride: Any) -> tuple[int, int]:
    """Checked passage length and stride (the stride defaults to the length: consecutive windows)."""
    if isinstance(words, bool) or not isinstance(words, (int, np.integer)) or words < 1:
        raise UsageError(f"passage length must be an integer of at least 1 word, got {words!r}")
    if stride is None:
        stride = words
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 1 <= stride <= words:
        raise UsageError(
            f"stride must be an integer from 1 to the passage length {words} (a larger one would skip text), "
            f"got {stride!r}"
        )
    return int(words), int(stride)


def split_passages(documents: Sequence[Document], words: int, stride: int | None = None) -> list[Document]:
    """Cut documents into DPR-style passages of ``words`` whitespace-separated words, ``stride`` words apart.

    ``stride`` defaults to ``words`` (consecutive windows); a smaller stride makes windows overlap. Windows stop at
    the first one reaching the end of the document, so the last may be shorter; a document of at most ``words``
    words stays one passage, and one without any word gives none. A passage's text is the exact slice of its
    document from its first word to its last (inner whitespace kept), so ``metadata["offset"]`` (where the slice
    starts in the document) maps character positions back. Passage ids are ``f"{doc.id}#{i}"``; the title is kept
    and ``metadata["source_ids"]`` is the document's ``source_ids``.
    """
    words, stride = _window(words, stride)
    documents = list(documents)
    passages: list[Document] = []
    begin = 0
    while begin < len(documents):
        end, chars = begin, 0
        while end < len(documents) and (end == begin or chars < _CHUNK_CHARS):
            chars += len(documents[end].text) + 1
            end += 1
        passages.extend(_split_chunk(documents[begin:end], words, stride))
        begin = end
    return passages


def _split_chunk(documents: Sequence[Document], words: int, stride: int) -> Iterator[Document]:
    starts, ends, first, count = _word_spans([d.text for d in documents])
    windows = np.where(count > 0, 1 + -(-np.maximum(count - words, 0) // stride), 0)
    doc = np.repeat(np.arange(len(documents)), windows)
    index = np.arange(len(doc)) - np.repeat(np.cumsum(windows) - windows, windows)
    first_word = first[doc] + index * stride
    last_word = np.minimum(first_word + words, first[doc] + count[doc]) - 1
    char_start = starts[first_word].tolist()
    char_end = ends[last_word].tolist()
    sources = [d.source_ids for d in documents]
    for d, i, a, b in zip(doc.tolist(), index.tolist(), char_start, char_end):
        parent = documents[d]
        yield Document(f"{parent.id}#{i}", parent.text[a:b], parent.title, {"source_ids": sources[d], "offset": a})


# --------------------------------------------------------------------------------------------------- sample


def sample_corpus_path() -> Path:
    """The bundled sample corpus (about 60 short Korean and English documents), the default data of ``odqa run``."""
    return Path(str(resources.files("odqa_core") / "sample" / "corpus.jsonl"))


def sample_questions_path() -> Path:
    """The bundled sample questions (about 100, with answers and gold document ids for the sample corpus)."""
    return Path(str(resources.files("odqa_core") / "sample" / "questions.jsonl"))


def sample_train_questions_path() -> Path:
    """The bundled sample's training questions (about 180, disjoint from sample_questions_path()'s) that the demo
    models are trained on."""
    return Path(str(resources.files("odqa_core") / "sample" / "train_questions.jsonl"))


def sample_tuning_split(questions: Sequence[Question]) -> tuple[list[Question], list[Question]]:
    """``(fit, tune)``: the sample's training questions split so that every third (about one per passage) is held
    out of a demo model's training, and a setting chosen on the training questions (the ``cross``
    fuser's demo λ) is chosen on questions the model did not learn — as the evaluation questions are new
    questions about the same passages."""
    return [q for i, q in enumerate(questions) if i % 3 != 2], [q for i, q in enumerate(questions) if i % 3 == 2]


#: Words that name the bundled sample's question sets wherever a command reads questions (``--questions sample``);
#: an existing file or directory of that name is read instead.
SAMPLE_QUESTION_SETS = {"sample": sample_questions_path, "sample-train": sample_train_questions_path}


def questions_source(value: str | Path) -> str | Path:
    """``value`` with the words of :data:`SAMPLE_QUESTION_SETS` replaced by the bundled files' paths."""
    if str(value) in SAMPLE_QUESTION_SETS and not Path(value).exists():
        return SAMPLE_QUESTION_SETS[str(value)]()
    return value


_sample_texts_cache: dict[str, str] = {}


def is_sample_corpus(documents: Iterable[Document]) -> bool:
    """Whether every document is one of the bundled sample's, or a passage cut from one (``split_words``): what the
    sample's demo models were trained on and may be used with."""
    if not _sample_texts_cache:
        for doc in load_corpus(sample_corpus_path(), dedupe=False):
            _sample_texts_cache[doc.id] = doc.text
    return all(any(doc.text in _sample_texts_cache.get(s, "\0") for s in doc.source_ids) for doc in documents)


def gold_results(questions: Sequence[Question], documents: Sequence[Document]) -> RankedResults:
    """A one-passage "retrieval" of each question's gold passage: reading given the gold passage.

    The gold passage is the first document whose ``source_ids`` meet the question's ``doc_ids`` and whose text
    contains one of its answers (the first gold document when none does). Questions without one get row -1.
    """
    by_source: dict[str, list[int]] = {}
    for row, doc in enumerate(documents):
        for source in doc.source_ids:
            by_source.setdefault(source, []).append(row)
    indices = np.full((len(questions), 1), -1, np.int64)
    for i, q in enumerate(questions):
        rows = [r for d in q.doc_ids for r in by_source.get(d, ())]
        holding = [r for r in rows if any(a and a in documents[r].text for a in q.answers)]
        if holding or rows:
            indices[i, 0] = (holding or rows)[0]
    missing = int((indices < 0).sum())
    if missing:
        raise DataError(
            f"{missing} of {len(questions)} questions have no gold passage in the corpus (no doc_ids, or ids not "
            "in it); reading given the gold passage needs one for every question"
        )
    return RankedResults(indices, np.zeros(indices.shape, np.float32), documents)
