"""What one training step sees: its texts (columns) and, for distillation, the teacher's labels.

- `mnrl`: sentence-transformers' MultipleNegativesRankingLoss over (query, positive[, hard negative])
  examples: every other product of the batch is a negative. Today's recipe, kept for comparison.
- `margin_mse`: MarginMSELoss (GPL): per query the teacher's best candidate and `list_size - 1` others;
  the student's cosine margins are regressed on the teacher's log-odds margins scaled by the ratio of
  the two temperatures (a cosine margin of 0.05 stands for a log-odds margin of 1 at the defaults).
- `listwise`: DistillKLDivLoss: the same lists, the student's softmax over its cosine scores (student
  temperature) matched to the teacher's softmax over its log-odds (teacher temperature).

Both distillation losses add `contrastive_weight` x MultipleNegativesRankingLoss over (query, the teacher's
best candidate) with the other queries of the batch as negatives (Tamber et al. 2025: listwise + 0.1 x
InfoNCE). A list holds only products the base model already retrieves for the query, so the divergence
alone can reorder them while the query drifts from the rest of the catalog; the in-batch term keeps the
query near its best product relative to other queries' products. The query's own other candidates are not
its negatives there: many are relevant. Weight 1 (the default) was chosen on the dev split over 0 and 0.1.

Where --labels graded a pair, its human grade replaces the teacher's score as the target.

Every step is fixed by the seed and the step number (which queries, which candidates), so a resumed run
sees the same steps; `ensure` sizes (not content) decide the number of steps, so refreshing the
candidate lists mid-run changes what later steps sample but not how many there are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.lab.retriever.data import Example
from services.lab.retriever.lists import CandidateList
from services.lab.retriever.teacher import logit

LOSSES = ("mnrl", "margin_mse", "listwise")


@dataclass(frozen=True)
class Step:
    columns: list[list[str]]  # query texts first, then one column per candidate slot
    labels: np.ndarray | None  # (batch, slots) teacher log-odds, None for mnrl


class Objective(ABC):
    name: str

    @property
    @abstractmethod
    def steps(self) -> int: ...

    @abstractmethod
    def step(self, index: int) -> Step: ...

    @abstractmethod
    def loss(self, model: Any, config: Any) -> Any:
        """The sentence-transformers loss module for this objective."""


class Contrastive(Objective):
    """MultipleNegativesRankingLoss on precomputed no-duplicate batches."""

    name = "mnrl"

    def __init__(self, examples: list[Example], batches: list[list[int]]) -> None:
        self.examples = examples
        self.batches = batches

    @property
    def steps(self) -> int:
        return len(self.batches)

    def step(self, index: int) -> Step:
        chunk = [self.examples[i] for i in self.batches[index]]
        columns = [[e.query for e in chunk], [e.positive for e in chunk]]
        if chunk[0].negative:
            columns.append([e.negative for e in chunk])
        return Step(columns, None)

    def loss(self, model: Any, config: Any) -> Any:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        return MultipleNegativesRankingLoss(model, gather_across_devices=config.distributed)


class Distillation(Objective):
    """margin_mse or listwise over the teacher-scored candidate lists."""

    def __init__(
        self,
        name: str,
        lists: list[CandidateList],
        list_size: int,
        batch_size: int,
        epochs: int,
        seed: int,
        label_scale: float = 1.0,
    ) -> None:
        self.name = name
        self.label_scale = label_scale  # margin_mse: student temperature / teacher temperature
        self.lists = lists
        self.list_size = list_size
        self.seed = seed
        self.ranked = [lst.ranked() for lst in lists]
        usable = [i for i, ranked in enumerate(self.ranked) if len(ranked) >= list_size]
        self.order: list[list[int]] = []
        for epoch in range(epochs):
            shuffled = np.random.default_rng([seed, epoch]).permutation(usable)
            self.order += [
                [int(i) for i in shuffled[s : s + batch_size]] for s in range(0, len(shuffled), batch_size)
            ]

    @property
    def usable(self) -> int:
        return sum(len(ranked) >= self.list_size for ranked in self.ranked)

    @property
    def steps(self) -> int:
        return len(self.order)

    def refreshed(self) -> None:
        """Re-rank the lists after candidates were added (refresh)."""
        self.ranked = [lst.ranked() for lst in self.lists]

    def step(self, index: int) -> Step:
        rng = np.random.default_rng([self.seed, 1_000_003, index])
        queries, picks = [], []
        for i in self.order[index]:
            ranked = self.ranked[i]
            others = rng.choice(np.arange(1, len(ranked)), size=self.list_size - 1, replace=False)
            picks.append([ranked[0], *(ranked[int(j)] for j in sorted(others))])
            queries.append(self.lists[i].query)
        columns = [queries] + [[chosen[slot].text for chosen in picks] for slot in range(self.list_size)]
        scores = np.array([[c.target for c in chosen] for chosen in picks], dtype=np.float32)
        labels = logit(scores)
        return Step(columns, labels * self.label_scale if self.name == "margin_mse" else labels)

    def loss(self, model: Any, config: Any) -> Any:
        from sentence_transformers.sentence_transformer.losses import (
            DistillKLDivLoss,
            MarginMSELoss,
            MultipleNegativesRankingLoss,
        )

        if self.name == "margin_mse":
            distil, scale = MarginMSELoss(model), 1.0
        else:
            distil = DistillKLDivLoss(
                model,
                student_temperature=config.student_temperature,
                teacher_temperature=config.teacher_temperature,
            )
            # The KL divergence itself: DistillKLDivLoss multiplies it by the student temperature squared
            # (Hinton's scaling for temperatures >= 1), which at 0.05 would shrink every gradient 400-fold.
            scale = 1 / config.student_temperature**2
        contrastive = None
        if config.contrastive_weight:
            contrastive = MultipleNegativesRankingLoss(
                model, scale=1 / config.student_temperature, gather_across_devices=config.distributed
            )
        return _combined(model, distil, scale, contrastive, config.contrastive_weight)


def _combined(model: Any, distil: Any, scale: float, contrastive: Any, weight: float) -> Any:
    """scale x the distillation loss + weight x the in-batch contrastive loss, on one encoding of the
    step's texts."""
    import torch
    from sentence_transformers.base.losses.merged_forward import embed_columns

    class Combined(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.distil = distil
            self.contrastive = contrastive

        def forward(self, features: Any, labels: Any) -> Any:
            embeddings = embed_columns(self.model, features)
            loss = self.distil.compute_loss_from_embeddings(embeddings, labels) * scale
            if self.contrastive is not None:
                loss = loss + weight * self.contrastive.compute_loss_from_embeddings(embeddings[:2], None)
            return loss

    return Combined()
