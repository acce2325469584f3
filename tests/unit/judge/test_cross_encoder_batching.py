"""The cross-encoder scores pairs in batches formed by length: each logit must still be its own pair's."""

from __future__ import annotations

import numpy as np

from services.core.assets import minilm_path
from services.judge.engines.cross_encoder import predict_logits


def test_length_ordered_batches_return_each_pairs_logit_in_the_callers_order() -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)  # the regression head is new: seeded so its logits differ between pairs
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    pairs = [
        (
            "cordless drill",
            "DEWALT 20-Volt MAX Lithium-Ion Cordless 1/2 in. Drill/Driver Kit with Two Batteries",
        ),
        ("rug", "Blue Rug"),
        ("deck screws for pressure treated lumber", "Deck Screws"),
        ("lamp", "Brass Floor Lamp with Linen Shade and Foot Switch, 3-Way Bulb Included"),
        ("hose", "Garden Hose 50 ft."),
    ]
    alone = np.array([predict_logits(model, tokenizer, [pair], 64, 1)[0] for pair in pairs])
    batched = predict_logits(model, tokenizer, pairs, 64, 2)
    assert np.ptp(alone) > 1e-3  # distinct logits, so a pair given another's would show
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    assert predict_logits(model, tokenizer, [], 64, 2).shape == (0,)
