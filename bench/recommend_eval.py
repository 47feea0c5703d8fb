"""Evaluation harness of approval recommendations (P5): the figures that chose the model.

Trains the product's learner (``recommend.model``, the same code the app runs) on a CSV in the
Amazon Employee Access format — ``ACTION`` (1 approved, 0 denied) plus integer-coded attribute
columns — and writes a probability of approval for every row of a test CSV. On the training file
it reports the k-fold cross-validated AUC and the share of rows auto-approvable at >= 99%
precision, the threshold being chosen on out-of-fold predictions. With ``--holdout F`` it also
keeps a stratified fraction F of the training file aside, chooses the threshold by
cross-validation on the rest, and reports the AUC and the precision/share at that threshold on
the held-out rows (the honest figure: nothing about those rows was seen).

    .venv/bin/python bench/recommend_eval.py --train ../shared/data/access-decisions/amazon_train_80.csv \\
        --test ../shared/data/access-decisions/amazon_train_80.csv --predictions /tmp/p.csv [--holdout 0.2]

Predictions: ``id,probability`` when the test file has an ``id`` column, else
``row,probability`` with the 1-based data row number. A test file with an ``ACTION`` column is
scored too. Figures are printed and written to bench/results/recommend.json (``--results``).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from recommend.model import ApprovalModel, FeatureSpec, cross_validate  # noqa: E402

TARGET = "ACTION"
ID = "id"
# ROLE_CODE is ROLE_TITLE under another name in the Amazon data (one-to-one): left out.
REDUNDANT = ("ROLE_CODE",)
TARGET_AUC = 0.86
TARGET_SHARE = 0.40
DEFAULT_C = 0.5
DEFAULT_MIN_COUNT = 2


class InputError(Exception):
    pass


def read_csv(path: Path, *, need_target: bool) -> tuple[list[str], list[dict], list[int] | None]:
    """(attribute columns, rows, targets or None). Raises InputError naming row and field."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if not header:
            raise InputError(f"{path}: empty file (no header)")
        if need_target and TARGET not in header:
            raise InputError(f"{path}: no {TARGET} column (header: {','.join(header)})")
        columns = [c for c in header if c not in (TARGET, ID)]
        if not columns:
            raise InputError(f"{path}: no attribute columns besides {TARGET}/{ID}")
        rows, targets = [], [] if TARGET in header else None
        for n, raw in enumerate(reader, start=2):
            if None in raw or any(raw[c] is None for c in header):
                raise InputError(f"{path}: line {n}: expected {len(header)} fields")
            if targets is not None:
                value = raw.pop(TARGET).strip()
                if value not in ("0", "1"):
                    raise InputError(f"{path}: line {n}: {TARGET} must be 0 or 1, got {value!r}")
                targets.append(int(value))
            rows.append(raw)
    if not rows:
        raise InputError(f"{path}: no data rows")
    return columns, rows, targets


def make_spec(columns: list[str], *, C: float, min_count: int, triples: bool) -> FeatureSpec:
    used = [c for c in columns if c not in REDUNDANT]
    return FeatureSpec.with_all_pairs(used, triples=triples, C=C, min_count=min_count)


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float | None) -> dict:
    if threshold is None:
        return {"share": 0.0, "precision": None, "count": 0}
    picked = p >= threshold
    count = int(picked.sum())
    return {
        "share": round(count / len(y), 4),
        "precision": round(float(y[picked].mean()), 4) if count else None,
        "count": count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-precision", type=float, default=0.99)
    parser.add_argument("--C", type=float, default=DEFAULT_C, help="inverse L2 strength")
    parser.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT)
    parser.add_argument("--no-triples", action="store_true", help="one-hot + pairs only")
    parser.add_argument("--holdout", type=float, default=0.0, help="fraction held out (0 = none)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="holdout splits (seeds seed, seed+1, ...)"
    )
    parser.add_argument(
        "--results", type=Path, default=ROOT / "bench" / "results" / "recommend.json"
    )
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if not (0 <= args.holdout < 1):
        parser.error("--holdout must be in [0, 1)")
    if not (0 < args.target_precision <= 1):
        parser.error("--target-precision must be in (0, 1]")
    try:
        columns, rows, y_list = read_csv(args.train, need_target=True)
        test_columns, test_rows, test_y = read_csv(args.test, need_target=False)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [c for c in columns if c not in test_columns]
    if missing:
        print(f"error: {args.test}: missing column(s) {', '.join(missing)}", file=sys.stderr)
        return 2
    y = np.asarray(y_list, dtype=np.int64)
    if len(set(y_list)) < 2:
        print(f"error: {args.train}: needs both approved (1) and denied (0) rows", file=sys.stderr)
        return 2
    spec = make_spec(columns, C=args.C, min_count=args.min_count, triples=not args.no_triples)

    started = time.perf_counter()
    ev = cross_validate(
        rows, y, spec, folds=args.folds, seed=args.seed, target_precision=args.target_precision
    )
    cv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = ApprovalModel(spec, seed=args.seed).fit(rows, y)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    probabilities = model.predict_proba(test_rows)
    predict_seconds = time.perf_counter() - started

    has_id = ID in test_columns or (test_rows and ID in test_rows[0])
    args.predictions.parent.mkdir(parents=True, exist_ok=True)
    with args.predictions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([ID if has_id else "row", "probability"])
        for n, (row, p) in enumerate(zip(test_rows, probabilities, strict=True), start=1):
            writer.writerow([row[ID] if has_id else n, f"{p:.6f}"])

    threshold = ev.threshold
    figures: dict = {
        "train": str(args.train),
        "rows": ev.rows,
        "denied": ev.rows - ev.approved,
        "model": "L2 logistic regression (liblinear) over one-hot values, all pairs"
        + ("" if args.no_triples else " and triples")
        + f" of {len(spec.categorical)} columns; values seen < {spec.min_count}x share a rare bucket",
        "columns": list(spec.categorical),
        "C": spec.C,
        "min_count": spec.min_count,
        "features": model.featurizer.n_features,
        "cv": {
            "folds": ev.folds,
            "auc": round(ev.auc, 4),
            "target_precision": args.target_precision,
            "threshold": None if threshold.threshold is None else round(threshold.threshold, 6),
            "auto_share": round(threshold.share, 4),
            "precision_at_threshold": round(threshold.precision, 4),
            "seconds": round(cv_seconds, 1),
        },
        "fit_seconds": round(fit_seconds, 1),
        "predict": {
            "test": str(args.test),
            "rows": len(test_rows),
            "written_to": str(args.predictions),
            "seconds": round(predict_seconds, 2),
        },
        "targets": {"auc": TARGET_AUC, "auto_share": TARGET_SHARE},
    }
    if test_y is not None and len(set(test_y)) == 2:
        ty = np.asarray(test_y)
        figures["predict"]["auc"] = round(float(roc_auc_score(ty, probabilities)), 4)
        figures["predict"]["at_cv_threshold"] = at_threshold(ty, probabilities, threshold.threshold)
        if args.test.resolve() == args.train.resolve():
            figures["predict"]["note"] = (
                "test file = train file: an in-sample figure, not an estimate"
            )
    if args.holdout:
        splits = [holdout(rows, y, spec, args, seed=args.seed + k) for k in range(args.repeats)]
        figures["holdout"] = {
            "fraction": args.holdout,
            "splits": splits,
            **{
                key: round(float(np.mean([s[key] or 0.0 for s in splits])), 4)
                for key in ("auc", "auto_share", "precision_at_threshold")
            },
        }
    checked = figures.get("holdout") or figures["cv"]
    # Judged on the held-out rows when there are some, else on the out-of-fold predictions.
    figures["meets_targets"] = {
        "judged_on": "holdout" if args.holdout else "cv",
        "auc": bool(checked["auc"] >= TARGET_AUC),
        "auto_share": bool(checked["auto_share"] >= TARGET_SHARE),
        "precision": bool((checked["precision_at_threshold"] or 0) >= args.target_precision),
    }
    figures["machine"] = {"python": platform.python_version(), "cpus": _cpus()}

    print(
        f"cross-validated AUC {ev.auc:.4f} ({ev.folds} folds, {cv_seconds:.0f} s); "
        f"auto-approvable at >= {args.target_precision:.0%} precision: {threshold.share:.1%} "
        f"of rows (p >= {threshold.threshold})"
    )
    if args.holdout:
        h = figures["holdout"]
        print(
            f"held-out {args.holdout:.0%} (mean of {len(h['splits'])} split(s)): AUC {h['auc']:.4f}; "
            f"at the CV threshold {h['auto_share']:.1%} auto-approved with precision {h['precision_at_threshold']}"
        )
    print(f"predictions for {len(test_rows)} rows written to {args.predictions}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"written to {args.results}")
    return 0


def holdout(rows: list[dict], y: np.ndarray, spec: FeatureSpec, args, *, seed: int) -> dict:
    """Threshold by CV on the fit part; AUC, share and precision on rows never seen."""
    idx = np.arange(len(y))
    fit_idx, held_idx = train_test_split(idx, test_size=args.holdout, stratify=y, random_state=seed)
    fit_rows = [rows[i] for i in fit_idx]
    ev = cross_validate(
        fit_rows,
        y[fit_idx],
        spec,
        folds=args.folds,
        seed=seed,
        target_precision=args.target_precision,
    )
    model = ApprovalModel(spec, seed=seed).fit(fit_rows, y[fit_idx])
    p = model.predict_proba([rows[i] for i in held_idx])
    held_y = y[held_idx]
    at = at_threshold(held_y, p, ev.threshold.threshold)
    return {
        "seed": seed,
        "fit_rows": len(fit_idx),
        "held_rows": len(held_idx),
        "cv_auc_on_fit_part": round(ev.auc, 4),
        "threshold": ev.threshold.threshold,
        "auc": round(float(roc_auc_score(held_y, p)), 4),
        "auto_share": at["share"],
        "precision_at_threshold": at["precision"],
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
