"""bench/recommend_eval.py end to end on a small synthetic CSV in the Amazon layout."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "recommend"
TRAIN = DATA / "synthetic_access_train.csv"
TEST = DATA / "synthetic_access_test.csv"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location(
        "recommend_eval", ROOT / "bench" / "recommend_eval.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_a_prediction_per_test_row_by_id_and_reports_figures(harness, tmp_path, capsys):
    out, results = tmp_path / "p.csv", tmp_path / "r.json"
    code = harness.main(
        [
            "--train",
            str(TRAIN),
            "--test",
            str(TEST),
            "--predictions",
            str(out),
            "--results",
            str(results),
            "--holdout",
            "0.25",
        ]
    )
    assert code == 0
    with out.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "probability"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, 61)]
    assert all(0.0 <= float(p) <= 1.0 for _, p in rows[1:])
    figures = json.loads(results.read_text())
    assert figures["rows"] == 400 and figures["predict"]["rows"] == 60
    assert figures["cv"]["folds"] == 5
    assert figures["cv"]["auc"] > 0.85  # the resource (and one resource-department pair) decides
    assert figures["cv"]["precision_at_threshold"] >= 0.99 or figures["cv"]["threshold"] is None
    assert figures["holdout"]["splits"][0]["held_rows"] == 100
    assert figures["holdout"]["auc"] == figures["holdout"]["splits"][0]["auc"]
    assert "ROLE_CODE" not in figures["columns"]
    assert figures["meets_targets"]["judged_on"] == "holdout"
    assert figures["meets_targets"]["auc"] is (figures["holdout"]["auc"] >= 0.86)
    printed = capsys.readouterr().out
    assert "cross-validated AUC" in printed and "auto-approvable at >= 99% precision" in printed


def test_without_id_column_rows_are_numbered_and_a_labelled_test_is_scored(harness, tmp_path):
    out, results = tmp_path / "p.csv", tmp_path / "r.json"
    code = harness.main(
        [
            "--train",
            str(TRAIN),
            "--test",
            str(TRAIN),
            "--predictions",
            str(out),
            "--results",
            str(results),
            "--no-triples",
        ]
    )
    assert code == 0
    with out.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["row", "probability"] and len(rows) == 401
    assert rows[-1][0] == "400"
    figures = json.loads(results.read_text())
    assert figures["predict"]["auc"] > 0.9
    assert "in-sample" in figures["predict"]["note"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("RESOURCE,MGR_ID\n1,2\n", "no ACTION column"),
        ("ACTION,RESOURCE\n1,5\n2,6\n", "line 3: ACTION must be 0 or 1, got '2'"),
        ("ACTION,RESOURCE\n1,5\n0\n", "line 3: expected 2 fields"),
        ("ACTION,RESOURCE\n1,5\n1,6\n", "needs both approved (1) and denied (0) rows"),
        ("", "empty file"),
    ],
)
def test_bad_training_file_is_named_and_nothing_is_written(
    harness, tmp_path, capsys, content, message
):
    train = tmp_path / "train.csv"
    train.write_text(content)
    out, results = tmp_path / "p.csv", tmp_path / "r.json"
    code = harness.main(
        [
            "--train",
            str(train),
            "--test",
            str(TEST),
            "--predictions",
            str(out),
            "--results",
            str(results),
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not results.exists()


def test_test_file_missing_a_column_is_refused(harness, tmp_path, capsys):
    test = tmp_path / "test.csv"
    test.write_text("id,RESOURCE\n1,1000\n")
    out = tmp_path / "p.csv"
    code = harness.main(
        [
            "--train",
            str(TRAIN),
            "--test",
            str(test),
            "--predictions",
            str(out),
            "--results",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 2
    assert "missing column(s) MGR_ID" in capsys.readouterr().err
    assert not out.exists()
