"""An outside plugin: a title-matching retriever and an upper-casing postprocessor."""

from __future__ import annotations

import odqa_core
from odqa_core.testing import FakeRetriever


class TitleRetriever(FakeRetriever):
    """Scores documents by word overlap with their titles only."""

    name = "example-title"

    def index(self, documents):
        super().index(documents)
        self._matrix = self._vectors([d.title for d in documents])


class UpperPostprocessor(odqa_core.Postprocessor):
    name = "example-upper"

    def __init__(self) -> None:
        pass

    def process(self, question, predictions):
        return [
            odqa_core.Prediction(p.question_id, p.answer.upper(), p.score, p.doc_id, p.start) for p in predictions
        ]


@odqa_core.hookimpl
def register_retrievers(register):
    register(TitleRetriever)


@odqa_core.hookimpl
def register_postprocessors(register):
    register(UpperPostprocessor)
