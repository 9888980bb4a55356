"""The API's request and response bodies (pydantic; FastAPI publishes them in the OpenAPI schema at ``/docs``).

Requests are strict: an unknown field or a value of the wrong type (``"top_k": "5"``) is refused with a 422 that
names the field, instead of being guessed at. The limits that depend on the server's settings (the question's
length) are checked by the app, with the same kind of error.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The largest ``top_k`` a request may ask for; ``reader_top_k`` and ``n_best`` have their own.
MAX_TOP_K = 1000
MAX_READER_TOP_K = 100
MAX_N_BEST = 100


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(description="The question, in any language; leading and trailing spaces are ignored.")
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, description="Passages retrieved (default: the pipeline's).")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        text = " ".join(value.split())
        if not text:
            raise ValueError("the question is empty")
        return text


class RetrieveRequest(_Request):
    """One question to retrieve passages for."""


class AskRequest(_Request):
    """One question to answer."""

    reader_top_k: int | None = Field(
        None, ge=1, le=MAX_READER_TOP_K, description="Passages read: the best of top_k (default: the pipeline's)."
    )
    n_best: int | None = Field(None, ge=1, le=MAX_N_BEST, description="Answers kept (default: the pipeline's).")


class AskBatchRequest(BaseModel):
    """Several questions at once, each with its own settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    questions: list[AskRequest] = Field(min_length=1)


class Answer(BaseModel):
    """One candidate answer, as ``nbest_predictions.json`` gives it."""

    text: str
    score: float
    probability: float
    doc_id: str | None
    start: int | None = Field(description="The answer's character offset in its passage (null when unknown).")


class Passage(BaseModel):
    doc_id: str
    title: str
    text: str
    score: float


class Timings(BaseModel):
    """Milliseconds: retrieve and read are those of the batch the question was answered in (micro-batching answers
    concurrent questions together); total is the request's own, from arrival to answer, waiting included."""

    retrieve: float
    read: float
    total: float


class AskResponse(BaseModel):
    question: str
    answer: str | None = Field(description="The best answer ('' when none was found; null without a reader).")
    score: float | None
    nbest: list[Answer]
    passages: list[Passage] = Field(description="The passages the reader read (without a reader: those retrieved).")
    timings_ms: Timings


class AskBatchResponse(BaseModel):
    answers: list[AskResponse]


class RetrieveResponse(BaseModel):
    question: str
    passages: list[Passage]
    timings_ms: Timings


class Error(BaseModel):
    """Every error: one line, and for a request the validation refused, its errors field by field."""

    error: str
    detail: list[dict] | None = None
