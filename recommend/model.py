"""The learning code of approval recommendations (P5), shared by the app and the harness.

No Django here: ``bench/recommend_eval.py`` imports this module on its own, and the app feeds it
rows built from Tollgate data (``recommend.features``). A row is a mapping from column name to
a value; categorical values are compared as strings, numeric ones are floats.

The model is deliberately small and explainable: one-hot indicators of every categorical value,
of chosen pairs (and triples) of values, plus a few numeric columns, fed to an L2-regularised
logistic regression. A prediction's reasons are the indicators with the largest contributions
(coefficient x value), each with how often it was approved in the training data.
"""

from __future__ import annotations

import io
import itertools
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # SciPy and scikit-learn load when a model is used, not at start-up
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

RARE = "__rare__"
FORMAT_VERSION = 1

Row = Mapping[str, object]


@dataclass(frozen=True)
class FeatureSpec:
    """Which indicators and numeric columns a model uses, and how strongly it is regularised."""

    categorical: tuple[str, ...]
    pairs: tuple[tuple[str, ...], ...] = ()
    triples: tuple[tuple[str, ...], ...] = ()
    numeric: tuple[str, ...] = ()
    # Values (or combinations) seen fewer times than this in training share one "rare" indicator
    # per group; values never seen in training land there too.
    min_count: int = 1
    C: float = 1.0

    @classmethod
    def with_all_pairs(cls, categorical: Sequence[str], *, triples: bool = False, **kw):
        cats = tuple(categorical)
        return cls(
            categorical=cats,
            pairs=tuple(itertools.combinations(cats, 2)),
            triples=tuple(itertools.combinations(cats, 3)) if triples else (),
            **kw,
        )

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        return tuple((c,) for c in self.categorical) + self.pairs + self.triples

    def to_dict(self) -> dict:
        return {
            "categorical": list(self.categorical),
            "pairs": [list(p) for p in self.pairs],
            "triples": [list(t) for t in self.triples],
            "numeric": list(self.numeric),
            "min_count": self.min_count,
            "C": self.C,
        }


@dataclass(frozen=True)
class Feature:
    """One column of the design matrix: an indicator (group, values) or a numeric column."""

    group: tuple[str, ...]
    values: tuple[str, ...] | None  # None for a numeric column; (RARE,) for the rare bucket

    @property
    def is_rare(self) -> bool:
        return self.values == (RARE,)


@dataclass
class Contribution:
    feature: Feature
    value: float  # 1.0 for an indicator, the number for a numeric column
    weight: float  # coefficient x value (log-odds)
    seen: int  # training rows with this indicator (numeric: rows)
    approved: int  # ... of which approved


class Featurizer:
    """Turns rows into a sparse design matrix; remembers per-column training counts.

    Vectorised: each categorical column is coded to integers (a value unseen in training gets
    its own code), a group's values are combined into one int64 key (mixed radix), and the kept
    keys of each group are a sorted array looked up with ``searchsorted``.
    """

    def __init__(self, spec: FeatureSpec):
        self.spec = spec
        self.vocab: dict[str, dict[str, int]] = {}  # column -> value -> code
        self.decode: dict[str, list[str]] = {}  # column -> code -> value
        self.keys: list[np.ndarray] = []  # per group: sorted kept keys
        self.offsets: list[int] = []  # per group: column of its rare bucket (kept keys follow)
        self.n_features = 0
        self.seen = np.zeros(0, dtype=np.int64)
        self.approved = np.zeros(0, dtype=np.int64)

    def _radix(self, column: str) -> int:
        return len(self.decode[column]) + 1  # + the "unseen" code

    def _codes(self, rows: Sequence[Row], *, learn: bool) -> dict[str, np.ndarray]:
        codes = {}
        for column in self.spec.categorical:
            try:
                raw = [str(row[column]) for row in rows]
            except KeyError:
                missing = next(n for n, row in enumerate(rows) if column not in row)
                raise ValueError(f"row {missing}: missing column {column!r}") from None
            if learn:
                values = sorted(set(raw))
                self.decode[column] = values
                self.vocab[column] = {v: i for i, v in enumerate(values)}
            vocab, unseen = self.vocab[column], len(self.decode[column])
            codes[column] = np.fromiter(
                (vocab.get(v, unseen) for v in raw), dtype=np.int64, count=len(raw)
            )
        return codes

    def _group_keys(self, group: tuple[str, ...], codes: dict[str, np.ndarray]) -> np.ndarray:
        key = np.zeros(len(codes[group[0]]), dtype=np.int64)
        span = 1
        for column in group:
            radix = self._radix(column)
            span *= radix
            if span >= 2**62:
                raise ValueError(f"too many distinct values to combine {group}")
            key = key * radix + codes[column]
        return key

    def fit_transform(self, rows: Sequence[Row], y: Sequence[int]) -> sparse.csr_matrix:
        codes = self._codes(rows, learn=True)
        self.keys, self.offsets = [], []
        column = 0
        for group in self.spec.groups:
            uniq, counts = np.unique(self._group_keys(group, codes), return_counts=True)
            self.offsets.append(column)
            kept = uniq[counts >= self.spec.min_count]
            self.keys.append(kept)
            column += 1 + len(kept)
        self.n_features = column + len(self.spec.numeric)
        matrix = self._transform(rows, codes)
        target = np.asarray(y, dtype=np.int64)
        indicator = matrix.copy()
        indicator.data = (indicator.data != 0).astype(np.float64)
        self.seen = np.asarray(indicator.sum(axis=0)).ravel().astype(np.int64)
        self.approved = np.asarray(indicator.T @ target).ravel().astype(np.int64)
        return matrix

    def transform(self, rows: Sequence[Row]) -> sparse.csr_matrix:
        return self._transform(rows, self._codes(rows, learn=False))

    def _transform(self, rows: Sequence[Row], codes: dict[str, np.ndarray]) -> sparse.csr_matrix:
        n = len(rows)
        numeric = self.spec.numeric
        groups = self.spec.groups
        width = len(groups) + len(numeric)
        indices = np.empty((n, width), dtype=np.int64)
        data = np.ones((n, width), dtype=np.float64)
        for g, group in enumerate(groups):
            key = self._group_keys(group, codes)
            kept = self.keys[g]
            if len(kept):
                pos = np.minimum(np.searchsorted(kept, key), len(kept) - 1)
                found = kept[pos] == key
            else:
                pos, found = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
            indices[:, g] = np.where(found, self.offsets[g] + 1 + pos, self.offsets[g])
        first_numeric = self.n_features - len(numeric)
        for j, name in enumerate(numeric):
            for r, row in enumerate(rows):
                try:
                    data[r, len(groups) + j] = float(row[name])
                except (KeyError, TypeError, ValueError):
                    raise ValueError(
                        f"row {r}: numeric column {name!r} is missing or not a number"
                    ) from None
            indices[:, len(groups) + j] = first_numeric + j
        indptr = np.arange(0, n * width + 1, width, dtype=np.int64)
        from scipy import sparse

        return sparse.csr_matrix(
            (data.ravel(), indices.ravel(), indptr), shape=(n, self.n_features)
        )

    def feature(self, column: int) -> Feature:
        """What a column of the design matrix stands for."""
        first_numeric = self.n_features - len(self.spec.numeric)
        if column >= first_numeric:
            return Feature((self.spec.numeric[column - first_numeric],), None)
        g = int(np.searchsorted(self.offsets, column, side="right")) - 1
        group = self.spec.groups[g]
        if column == self.offsets[g]:
            return Feature(group, (RARE,))
        key = int(self.keys[g][column - self.offsets[g] - 1])
        values = []
        for name in reversed(group):
            key, code = divmod(key, self._radix(name))
            values.append(self.decode[name][code])
        return Feature(group, tuple(reversed(values)))


class ApprovalModel:
    """Featurizer + logistic regression, with explanations. Pickled whole (``dumps``/``loads``)."""

    format_version = FORMAT_VERSION

    def __init__(self, spec: FeatureSpec, *, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.featurizer = Featurizer(spec)
        self.clf: LogisticRegression | None = None

    def fit(self, rows: Sequence[Row], y: Sequence[int]) -> ApprovalModel:
        target = np.asarray(y, dtype=np.int64)
        if len(set(target.tolist())) < 2:
            raise ValueError("training needs both approved (1) and denied (0) rows")
        matrix = self.featurizer.fit_transform(rows, target)
        from sklearn.linear_model import LogisticRegression

        self.clf = LogisticRegression(
            C=self.spec.C,
            solver="liblinear",
            dual=True,  # faster when features outnumber rows (one-hot pairs and triples)
            max_iter=1000,
            random_state=self.seed,
        )
        self.clf.fit(matrix, target)
        return self

    def predict_proba(self, rows: Sequence[Row]) -> np.ndarray:
        if self.clf is None:
            raise RuntimeError("the model is not trained")
        return self.clf.predict_proba(self.featurizer.transform(rows))[:, 1]

    def explain(self, row: Row, *, top: int = 3) -> list[Contribution]:
        """The columns that moved this row's log-odds most, strongest first."""
        if self.clf is None:
            raise RuntimeError("the model is not trained")
        x = self.featurizer.transform([row]).tocoo()
        coef = self.clf.coef_[0]
        items = []
        for col, value in zip(x.col, x.data, strict=True):
            weight = float(coef[col] * value)
            if weight == 0.0:
                continue
            items.append(
                Contribution(
                    feature=self.featurizer.feature(int(col)),
                    value=float(value),
                    weight=weight,
                    seen=int(self.featurizer.seen[col]),
                    approved=int(self.featurizer.approved[col]),
                )
            )
        items.sort(key=lambda c: abs(c.weight), reverse=True)
        return items[:top]

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def loads(blob: bytes) -> ApprovalModel:
        # Only ever called on blobs this code wrote into our own database (never user input).
        model = pickle.loads(blob)  # noqa: S301
        if not isinstance(model, ApprovalModel) or model.format_version != FORMAT_VERSION:
            raise ValueError("stored model has an unknown format")
        return model


@dataclass
class Threshold:
    """The lowest score at which auto-approving still reaches the target precision."""

    target: float
    threshold: float | None  # None: no score reaches the target
    share: float  # share of all rows at or above the threshold
    precision: float  # achieved precision at the threshold
    count: int


def threshold_for_precision(
    y: Sequence[int], p: Sequence[float], *, target: float = 0.99
) -> Threshold:
    """Largest auto-approved set (rows with p >= t) whose precision is still >= target."""
    y_arr = np.asarray(y, dtype=np.int64)
    p_arr = np.asarray(p, dtype=np.float64)
    if len(y_arr) == 0:
        return Threshold(target, None, 0.0, 0.0, 0)
    order = np.argsort(-p_arr, kind="mergesort")
    sp, sy = p_arr[order], y_arr[order]
    cum = np.cumsum(sy)
    k = np.arange(1, len(sy) + 1)
    # Only cut between distinct scores (every row with p >= t is auto-approved, ties included).
    boundary = np.append(sp[1:] < sp[:-1], True)
    ok = boundary & (cum / k >= target)
    if not ok.any():
        return Threshold(target, None, 0.0, 0.0, 0)
    last = int(np.nonzero(ok)[0].max())
    count = last + 1
    return Threshold(
        target=target,
        threshold=float(sp[last]),
        share=count / len(sy),
        precision=float(cum[last] / count),
        count=count,
    )


@dataclass
class Evaluation:
    auc: float
    folds: int
    rows: int
    approved: int
    threshold: Threshold
    oof: np.ndarray = field(repr=False)


def cross_validate(
    rows: Sequence[Row],
    y: Sequence[int],
    spec: FeatureSpec,
    *,
    folds: int = 5,
    seed: int = 0,
    target_precision: float = 0.99,
) -> Evaluation:
    """Stratified k-fold out-of-fold predictions, their AUC and the precision threshold."""
    target = np.asarray(y, dtype=np.int64)
    minority = int(min(target.sum(), len(target) - target.sum()))
    if minority < 2:
        raise ValueError("cross-validation needs at least 2 approved and 2 denied rows")
    folds = max(2, min(folds, minority))
    oof = np.zeros(len(target), dtype=np.float64)
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(target)), target):
        model = ApprovalModel(spec, seed=seed).fit([rows[i] for i in train_idx], target[train_idx])
        oof[test_idx] = model.predict_proba([rows[i] for i in test_idx])
    return Evaluation(
        auc=float(roc_auc_score(target, oof)),
        folds=folds,
        rows=len(target),
        approved=int(target.sum()),
        threshold=threshold_for_precision(target, oof, target=target_precision),
        oof=oof,
    )
