"""Reader outputs: the string writers of ``predictions.json`` / ``nbest_predictions.json`` (``odqa_core._runs``)
against the ``json.dumps(..., indent=1)`` of per-prediction dicts they replaced (issue 17, item 1).

Question answered: "how long does ``odqa run`` spend writing its two answer files, before and after?" On
KorQuAD-dev's size without a model: ``--questions`` synthetic questions (default 5,774) × ``--n-best`` (default 5)
predictions with Korean answers of 1–12 syllables, passage ids ``doc-N#0`` of 4,286 passages, character offsets and
normal scores (seeded). Each writer formats both files and writes them atomically under ``--out``, alternately,
median of ``--reps``; the files are compared byte for byte.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, command_line, median, source_state, utc_now  # noqa: E402


def dict_write(out: Path, questions: Sequence[Any], nbest: Sequence[Sequence[Any]]) -> None:
    """The writer before the string writers: ``run_pipeline``'s ``json.dumps`` of the per-prediction dicts of
    :func:`~odqa_core._runs.nbest_entries` (unchanged; ``odqa ask`` still uses it)."""
    from odqa_core._runs import nbest_entries
    from odqa_core.outputs import atomic_write_text

    predictions = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
    atomic_write_text(out / "predictions.json", json.dumps(predictions, ensure_ascii=False, indent=1))
    nbest_json = {q.id: nbest_entries(preds) for q, preds in zip(questions, nbest)}
    atomic_write_text(out / "nbest_predictions.json", json.dumps(nbest_json, ensure_ascii=False, indent=1))


def string_write(out: Path, questions: Sequence[Any], nbest: Sequence[Sequence[Any]]) -> None:
    """What ``run_pipeline`` writes now."""
    from odqa_core._runs import nbest_predictions_json_text, predictions_json_text
    from odqa_core.outputs import atomic_write_text

    atomic_write_text(out / "predictions.json", predictions_json_text(questions, nbest))
    atomic_write_text(out / "nbest_predictions.json", nbest_predictions_json_text(questions, nbest))


def synthetic_answers(n_questions: int, n_best: int, seed: int = 0) -> tuple[list[Any], list[list[Any]]]:
    from odqa_core.types import Prediction, Question

    rng = random.Random(seed)
    syllables = [chr(code) for code in range(0xAC00, 0xAC00 + 400)]
    questions = [Question(id=f"{i}-{rng.randrange(10**6)}", text="?") for i in range(n_questions)]
    nbest = []
    for question in questions:
        predictions = [
            Prediction(
                question.id,
                "".join(rng.choices(syllables, k=rng.randint(1, 12))),
                rng.gauss(5, 3),
                f"doc-{rng.randrange(4286)}#0",
                rng.randrange(2000),
            )
            for _ in range(n_best)
        ]
        nbest.append(sorted(predictions, key=lambda p: -p.score))
    return questions, nbest


def main() -> None:
    parser = benchmark_parser(__doc__, out="predictions_writer")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--questions", type=int, default=5774)
    parser.add_argument("--n-best", type=int, default=5)
    args = parser.parse_args()
    print(f"{command_line()}\n{utc_now()}; {source_state('odqa_core/_runs.py')}\n")
    questions, nbest = synthetic_answers(args.questions, args.n_best)
    times: dict[str, list[float]] = {"dicts": [], "strings": []}
    sizes = {}
    for _ in range(args.reps):
        for name, writer in (("dicts", dict_write), ("strings", string_write)):
            out = Path(args.out) / name
            out.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            writer(out, questions, nbest)
            times[name].append(time.perf_counter() - start)
    print(f"{len(questions):,} questions × n-best {args.n_best}\n")
    print("| both files | json.dumps of dicts (s) | string writers (s) | speed-up | same bytes | MB |")
    print("|---|---|---|---|---|---|")
    before, after = median(times["dicts"]), median(times["strings"])
    same = all(
        (Path(args.out) / "dicts" / name).read_bytes() == (Path(args.out) / "strings" / name).read_bytes()
        for name in ("predictions.json", "nbest_predictions.json")
    )
    for name in ("predictions.json", "nbest_predictions.json"):
        sizes[name] = (Path(args.out) / "strings" / name).stat().st_size / 1e6
    size = " + ".join(f"{v:.2f}" for v in sizes.values())
    row = f"{before:.3f} | {after:.3f} | {before / after:.1f}× | {same} | {size}"
    print(f"| predictions + nbest_predictions | {row} |")


if __name__ == "__main__":
    main()
