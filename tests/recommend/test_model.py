"""The shared learning code (recommend.model): featurizer, training, thresholds, pickling."""

from __future__ import annotations

import random

import numpy as np
import pytest

from recommend.model import (
    RARE,
    ApprovalModel,
    Feature,
    FeatureSpec,
    Featurizer,
    cross_validate,
    threshold_for_precision,
)

pytestmark = pytest.mark.sqlite


def _rows(n: int, seed: int = 1) -> tuple[list[dict], list[int]]:
    """``key`` decides the outcome (k0..k2 approved, k3 denied); ``noise`` carries nothing."""
    rng = random.Random(seed)
    rows, y = [], []
    for _ in range(n):
        key = rng.choice(["k0", "k1", "k2", "k3"])
        rows.append({"key": key, "noise": rng.choice("abcdef"), "share": rng.random()})
        y.append(0 if key == "k3" else 1)
    return rows, y


def test_featurizer_one_hot_pairs_and_rare_bucket():
    spec = FeatureSpec(categorical=("a", "b"), pairs=(("a", "b"),), min_count=2)
    rows = [{"a": "x", "b": 1}, {"a": "x", "b": 1}, {"a": "y", "b": 2}]
    f = Featurizer(spec)
    matrix = f.fit_transform(rows, [1, 1, 0])
    # a: rare + x (y seen once → rare); b: rare + "1"; (a,b): rare + (x,1)
    assert matrix.shape == (3, 6)
    assert [f.feature(c) for c in range(6)] == [
        Feature(("a",), (RARE,)),
        Feature(("a",), ("x",)),
        Feature(("b",), (RARE,)),
        Feature(("b",), ("1",)),
        Feature(("a", "b"), (RARE,)),
        Feature(("a", "b"), ("x", "1")),
    ]
    assert matrix.toarray().tolist() == [
        [0, 1, 0, 1, 0, 1],
        [0, 1, 0, 1, 0, 1],
        [1, 0, 1, 0, 1, 0],
    ]
    assert f.seen.tolist() == [1, 2, 1, 2, 1, 2]
    assert f.approved.tolist() == [0, 2, 0, 2, 0, 2]
    # A value never seen in training lands in its group's rare bucket.
    assert f.transform([{"a": "zzz", "b": 1}]).toarray().tolist() == [[1, 0, 0, 1, 1, 0]]


def test_featurizer_numeric_columns_and_missing_input_named():
    spec = FeatureSpec(categorical=("a",), numeric=("share",))
    f = Featurizer(spec)
    matrix = f.fit_transform([{"a": "x", "share": 0.25}, {"a": "y", "share": 1}], [1, 0])
    assert matrix.toarray()[:, -1].tolist() == [0.25, 1.0]
    assert f.feature(matrix.shape[1] - 1) == Feature(("share",), None)
    with pytest.raises(ValueError, match="row 1: missing column 'a'"):
        f.transform([{"a": "x", "share": 0}, {"share": 0}])
    with pytest.raises(ValueError, match="numeric column 'share'"):
        f.transform([{"a": "x", "share": "lots"}])


def test_a_perfect_feature_gives_a_perfect_auc_and_is_the_reason():
    rows, y = _rows(300)
    spec = FeatureSpec(categorical=("key", "noise"), pairs=(("key", "noise"),), C=1.0)
    ev = cross_validate(rows, y, spec, folds=5)
    assert ev.auc > 0.99
    assert ev.folds == 5 and ev.rows == 300 and len(ev.oof) == 300
    # Every approved row scores above every denied one, so the threshold keeps all approvals.
    assert ev.threshold.threshold is not None
    assert ev.threshold.precision >= 0.99
    assert ev.threshold.share == pytest.approx(sum(y) / len(y), abs=0.02)
    model = ApprovalModel(spec).fit(rows, y)
    denied = model.predict_proba([{"key": "k3", "noise": "a"}])[0]
    approved = model.predict_proba([{"key": "k0", "noise": "a"}])[0]
    assert denied < 0.2 < 0.8 < approved
    top = model.explain({"key": "k3", "noise": "a"}, top=1)[0]
    assert top.feature.group[0] == "key" and top.weight < 0
    assert top.seen > 0 and top.approved == 0


def test_no_signal_gives_chance_auc():
    rng = random.Random(3)
    rows = [{"noise": rng.choice("abcdef")} for _ in range(400)]
    y = [int(rng.random() < 0.7) for _ in rows]
    ev = cross_validate(rows, y, FeatureSpec(categorical=("noise",)), folds=4)
    assert 0.35 < ev.auc < 0.65


def test_training_needs_both_outcomes():
    with pytest.raises(ValueError, match="both approved"):
        ApprovalModel(FeatureSpec(categorical=("a",))).fit([{"a": 1}, {"a": 2}], [1, 1])
    with pytest.raises(ValueError, match="at least 2 approved and 2 denied"):
        cross_validate([{"a": 1}] * 5, [1, 1, 1, 1, 0], FeatureSpec(categorical=("a",)))


def test_threshold_is_the_largest_set_at_the_target_precision():
    p = [0.99, 0.98, 0.97, 0.96, 0.95, 0.5]
    y = [1, 1, 1, 0, 1, 0]
    t = threshold_for_precision(y, p, target=0.75)
    # Top 5 have precision 4/5 = 0.8 ≥ 0.75; all 6 would be 4/6.
    assert (t.threshold, t.count, t.precision, t.share) == (0.95, 5, 0.8, 5 / 6)
    t = threshold_for_precision(y, p, target=1.0)
    assert (t.threshold, t.count) == (0.97, 3)


def test_threshold_never_cuts_between_equal_scores():
    # The top two tie: taking only one of them is not a threshold anyone can apply.
    t = threshold_for_precision([1, 0, 1], [0.9, 0.9, 0.1], target=0.99)
    assert (t.threshold, t.count, t.share) == (None, 0, 0.0)


def test_model_round_trips_through_its_blob():
    rows, y = _rows(120)
    model = ApprovalModel(FeatureSpec(categorical=("key",), numeric=("share",))).fit(rows, y)
    again = ApprovalModel.loads(model.dumps())
    np.testing.assert_allclose(again.predict_proba(rows), model.predict_proba(rows))
    with pytest.raises(ValueError, match="unknown format"):
        import pickle

        ApprovalModel.loads(pickle.dumps({"not": "a model"}))
