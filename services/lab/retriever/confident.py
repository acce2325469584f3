"""The contrastive stage after distillation, the default of `synth train retriever`.

Distillation teaches the student the teacher's order inside each query's candidate list. This stage then
trains the distilled model the way the supervised reference trains on human labels: sentence-transformers'
MultipleNegativesRankingLoss over (query, positive) pairs, every other product of the batch a negative,
one epoch, batches of 64, peak learning rate 5e-5. Its positives are the candidates the teacher is
confident about (score >= min_score, at most per_query a query, the best first): pseudo-labels drawn from
every list, BM25's candidates included, so they name products base MiniLM does not retrieve. With
--labels, every relevant labelled pair joins them, and a labelled candidate is never a pseudo-label (its
human grade decides).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import InvalidInput
from services.core.text import normalize_query
from services.lab.retriever.data import Example, TrainingData
from services.lab.retriever.train import TrainConfig


@dataclass(frozen=True)
class ConfidentStage:
    min_score: float = 0.8  # the teacher's calibrated score a candidate needs to be a positive
    per_query: int = 8  # the teacher's most confident candidates kept per query
    learning_rate: float = 5e-5  # the supervised reference's
    batch_size: int = 64

    def check(self) -> None:
        if not 0 < self.min_score <= 1:
            raise InvalidInput("--confident-score must be in (0, 1]")
        if self.per_query < 1:
            raise InvalidInput("--confident-per-query must be at least 1")

    def config(self, distilled: TrainConfig) -> TrainConfig:
        """The stage's training parameters; seed and text length follow the distillation's."""
        return TrainConfig(
            loss="mnrl",
            seed=distilled.seed,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_length=distilled.max_length,
            hard_negatives=False,
            checkpoint_every=distilled.checkpoint_every,
        )

    def data(self, distilled: TrainingData) -> TrainingData:
        """The stage's examples: the teacher's confident candidates of every list, then the relevant
        labelled pairs, each query spelt as its list spells it (so a batch can tell repeats apart)."""
        spelling = {normalize_query(lst.query): lst.query for lst in distilled.lists}
        examples = []
        for lst in distilled.lists:
            confident = [
                c
                for c in lst.ranked()
                if c.label is None and c.score is not None and c.score >= self.min_score
            ]
            examples += [
                Example(lst.query, c.text, source="teacher", product_id=c.product_id)
                for c in confident[: self.per_query]
            ]
        # From the label set itself: a labelled pair the synthesis also accepted is a store example there.
        labelled: dict[tuple[str, str], Example] = {}
        for pair in distilled.labels.pairs if distilled.labels is not None else []:
            query = normalize_query(pair.query)
            if pair.relevant and pair.text:
                example = Example(
                    spelling.get(query, pair.query), pair.text, source="labels", product_id=pair.product
                )
                labelled.setdefault((query, pair.product), example)
        examples += labelled.values()
        if not examples:
            raise InvalidInput(
                f"no candidate reaches --confident-score {self.min_score} and no relevant labelled pair: "
                "nothing for the contrastive stage (lower the score, or --no-confident-stage)"
            )
        return TrainingData(distilled.stores, examples, labels=distilled.labels, texts=distilled.texts)
