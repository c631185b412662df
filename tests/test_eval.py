"""Tests of tracker.eval and tools/evaluate.py: published reference values on TUD and small synthetic cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TUD, needs_tud

from models.structures import InputError
from tracker.eval import COMBINED, evaluate_sequence, evaluate_sequences, load_mot_file, parse_frame_range
from tracker.eval.sequence import box_iou_xywh

TUD_SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")

# motmetrics column name -> phalanx metric name (motmetrics' motp is mean 1 - IoU, our MOTP_dist).
MOTMETRICS_NAMES = {
    "idf1": "IDF1",
    "idp": "IDP",
    "idr": "IDR",
    "recall": "Recall",
    "precision": "Precision",
    "num_unique_objects": "GT_IDs",
    "mostly_tracked": "MT",
    "partially_tracked": "PT",
    "mostly_lost": "ML",
    "num_false_positives": "FP",
    "num_misses": "FN",
    "num_switches": "IDSW",
    "num_fragmentations": "Frag",
    "mota": "MOTA",
    "motp": "MOTP_dist",
}
COUNTS = {"GT_IDs", "MT", "PT", "ML", "FP", "FN", "IDSW", "Frag"}


@pytest.fixture(scope="module")
def tud_results() -> dict[str, dict[str, float]]:
    pairs = [(name, TUD / name / "gt.txt", TUD / name / "test.txt") for name in TUD_SEQUENCES]
    return evaluate_sequences(pairs)


@pytest.fixture(scope="module")
def tud_expected() -> dict:
    return json.loads((TUD / "expected_metrics.json").read_text())


def assert_matches_reference(ours: dict[str, float], expected: dict[str, float], tolerance: float) -> None:
    for name, value in expected.items():
        if name in COUNTS:
            assert ours[name] == value, name
        else:
            assert ours[name] == pytest.approx(value, abs=tolerance), name


@needs_tud
@pytest.mark.parametrize("sequence", [*TUD_SEQUENCES, "OVERALL"])
def test_tud_matches_motmetrics_reference(tud_results, tud_expected, sequence):
    block = tud_expected["motmetrics"]
    expected = {MOTMETRICS_NAMES[column]: value for column, value in zip(block["columns"], block[sequence])}
    ours = tud_results[COMBINED if sequence == "OVERALL" else sequence]
    assert_matches_reference(ours, expected, tolerance=1e-5)  # published with 6 decimals


@needs_tud
@pytest.mark.parametrize("sequence", [*TUD_SEQUENCES, COMBINED])
def test_tud_matches_trackeval_reference(tud_results, tud_expected, sequence):
    assert_matches_reference(tud_results[sequence], tud_expected["trackeval"][sequence], tolerance=1e-4)


@needs_tud
def test_tud_single_sequence_equals_its_entry_in_multi_sequence_run(tud_results):
    single = evaluate_sequence(TUD / "TUD-Campus" / "gt.txt", TUD / "TUD-Campus" / "test.txt")
    assert single == tud_results["TUD-Campus"]


def write_mot(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join(",".join(str(value) for value in row) + "\n" for row in rows))
    return path


def walker_rows(track_id: int, frames: range, x0: float, with_conf: bool = True) -> list[tuple]:
    """One person walking right by 5 px per frame; a 40x100 box."""
    return [(f, track_id, x0 + 5 * f, 50, 40, 100, *((1,) if with_conf else (-1,)), -1, -1, -1) for f in frames]


@pytest.fixture
def two_walkers_gt(tmp_path: Path) -> Path:
    return write_mot(tmp_path / "gt.txt", walker_rows(1, range(1, 11), 0) + walker_rows(2, range(1, 11), 300))


def test_perfect_tracking_scores_one(tmp_path, two_walkers_gt):
    rows = walker_rows(7, range(1, 11), 0, False) + walker_rows(9, range(1, 11), 300, False)
    results = write_mot(tmp_path / "res.txt", rows)
    metrics = evaluate_sequence(two_walkers_gt, results)
    for name in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "Recall", "Precision"):
        assert metrics[name] == pytest.approx(1.0), name
    assert (metrics["TP"], metrics["FP"], metrics["FN"], metrics["IDSW"], metrics["MT"]) == (20, 0, 0, 0, 2)


def test_id_change_mid_sequence_counts_one_switch(tmp_path, two_walkers_gt):
    person_one = walker_rows(1, range(1, 6), 0, False) + walker_rows(3, range(6, 11), 0, False)
    results = write_mot(tmp_path / "res.txt", person_one + walker_rows(2, range(1, 11), 300, False))
    metrics = evaluate_sequence(two_walkers_gt, results)
    assert metrics["IDSW"] == 1
    assert metrics["Frag"] == 0
    assert metrics["MOTA"] == pytest.approx((20 - 0 - 1) / 20)
    assert metrics["IDF1"] == pytest.approx(15 / 20)  # person 1 keeps only one of its two predicted ids
    assert metrics["HOTA"] < 1.0 and metrics["DetA"] == pytest.approx(1.0)


def test_gap_in_tracking_counts_one_fragmentation(tmp_path, two_walkers_gt):
    frames = [*range(1, 4), *range(6, 11)]
    person_one = walker_rows(1, frames, 0, False) + walker_rows(1, range(4, 6), 600, False)
    results = write_mot(tmp_path / "res.txt", person_one + walker_rows(2, range(1, 11), 300, False))
    metrics = evaluate_sequence(two_walkers_gt, results)
    assert (metrics["Frag"], metrics["IDSW"], metrics["FN"], metrics["FP"]) == (1, 0, 2, 2)


def test_empty_tracker_misses_everything(tmp_path, two_walkers_gt):
    results = write_mot(tmp_path / "res.txt", [])
    metrics = evaluate_sequence(two_walkers_gt, results)
    assert metrics["MOTA"] == 0.0
    assert metrics["FN"] == 20 and metrics["FP"] == 0 and metrics["TP"] == 0
    assert metrics["HOTA"] == 0.0 and metrics["IDF1"] == 0.0
    assert metrics["ML"] == 2 and metrics["Pred_IDs"] == 0


def test_frame_range_restricts_gt_and_results(tmp_path, two_walkers_gt):
    good = walker_rows(1, range(1, 6), 0, False) + walker_rows(2, range(1, 6), 300, False)
    wrong_place = walker_rows(1, range(6, 11), 700, False) + walker_rows(2, range(6, 11), 900, False)
    results = write_mot(tmp_path / "res.txt", good + wrong_place)
    everything = evaluate_sequence(two_walkers_gt, results)
    first_half = evaluate_sequence(two_walkers_gt, results, frames=(1, 5))
    assert (everything["FN"], everything["FP"]) == (10, 10)
    assert (first_half["TP"], first_half["FN"], first_half["FP"]) == (10, 0, 0)
    assert first_half["MOTA"] == pytest.approx(1.0)
    loaded = load_mot_file(results, frames=(4, 6))
    assert sorted(set(loaded.frames.tolist())) == [4, 5, 6]


def test_gt_rows_with_zero_conf_are_ignored(tmp_path):
    gt_rows = walker_rows(1, range(1, 6), 0) + [(f, 2, 300, 50, 40, 100, 0, -1, -1, -1) for f in range(1, 6)]
    gt = write_mot(tmp_path / "gt.txt", gt_rows)
    results = write_mot(tmp_path / "res.txt", walker_rows(4, range(1, 6), 0, False))
    metrics = evaluate_sequence(gt, results)
    assert (metrics["FN"], metrics["GT_IDs"], metrics["MOTA"]) == (0, 1, 1.0)


def test_combined_sums_counts_across_sequences(tmp_path, two_walkers_gt):
    rows = walker_rows(1, range(1, 11), 0, False) + walker_rows(2, range(1, 11), 300, False)
    perfect = write_mot(tmp_path / "perfect.txt", rows)
    empty = write_mot(tmp_path / "empty.txt", [])
    results = evaluate_sequences([("a", two_walkers_gt, perfect), ("b", two_walkers_gt, empty)])
    assert results[COMBINED]["FN"] == results["a"]["FN"] + results["b"]["FN"] == 20
    assert results[COMBINED]["MOTA"] == pytest.approx(0.5)
    assert results[COMBINED]["DetA"] == pytest.approx(0.5)


def test_box_iou_on_continuous_boxes():
    ious = box_iou_xywh(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[0.0, 0.0, 10.0, 8.0], [10.0, 0.0, 5.0, 5.0]]))
    np.testing.assert_allclose(ious, [[0.8, 0.0]])


def test_motp_and_its_distance_form(tmp_path):
    gt = write_mot(tmp_path / "gt.txt", [(1, 1, 0, 0, 10, 10, 1)])
    results = write_mot(tmp_path / "res.txt", [(1, 5, 0, 0, 10, 8, -1)])
    metrics = evaluate_sequence(gt, results)
    assert metrics["MOTP"] == pytest.approx(0.8) and metrics["MOTP_dist"] == pytest.approx(0.2)


def test_malformed_row_names_file_and_line(tmp_path):
    path = write_mot(tmp_path / "res.txt", [(1, 1, 0, 0, 10, 10), (2, 1, "abc", 0, 10, 10)])
    with pytest.raises(InputError, match=r"res\.txt line 2"):
        load_mot_file(path)


def test_gt_without_conf_column_is_rejected(tmp_path):
    path = write_mot(tmp_path / "gt.txt", [(1, 1, 0, 0, 10, 10)])
    with pytest.raises(InputError, match=r"gt\.txt line 1.*conf"):
        load_mot_file(path, is_gt=True)


def test_repeated_id_in_a_frame_is_rejected(tmp_path):
    path = write_mot(tmp_path / "res.txt", [(3, 4, 0, 0, 10, 10), (3, 4, 50, 0, 10, 10)])
    with pytest.raises(InputError, match="id 4 more than once in frame 3"):
        load_mot_file(path)


def test_missing_file_and_empty_range_are_rejected(tmp_path, two_walkers_gt):
    with pytest.raises(InputError, match="does not exist"):
        evaluate_sequence(two_walkers_gt, tmp_path / "absent.txt")
    with pytest.raises(InputError, match="no boxes"):
        evaluate_sequence(two_walkers_gt, two_walkers_gt, frames=(50, 60))
    for text in ("400-1", "0-5", "1:400", "a-b"):
        with pytest.raises(InputError):
            parse_frame_range(text)
    assert parse_frame_range("1-400") == (1, 400)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/evaluate.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@needs_tud
def test_cli_prints_table_and_writes_json(tmp_path):
    json_path = tmp_path / "metrics.json"
    gts = [str(TUD / name / "gt.txt") for name in TUD_SEQUENCES]
    results = [str(TUD / name / "test.txt") for name in TUD_SEQUENCES]
    completed = run_cli("--gt", *gts, "--results", *results, "--json", str(json_path))
    assert completed.returncode == 0, completed.stderr
    header, *rows = completed.stdout.strip().splitlines()
    hota_column = header.split().index("HOTA")
    hota_by_row = {row.split()[0]: row.split()[hota_column] for row in rows}
    assert hota_by_row == {"TUD-Campus": "39.1", "TUD-Stadtmitte": "39.8", COMBINED: "40.0"}
    written = json.loads(json_path.read_text())
    assert written[COMBINED]["IDSW"] == 14


@pytest.mark.slow
def test_cli_resolves_sequence_and_run_folders(tmp_path):
    sequence = tmp_path / "SEQ-01"
    (sequence / "gt").mkdir(parents=True)
    write_mot(sequence / "gt" / "gt.txt", walker_rows(1, range(1, 11), 0))
    run = tmp_path / "run"
    run.mkdir()
    write_mot(run / "tracks.mot.txt", walker_rows(5, range(1, 11), 0, False))
    completed = run_cli("--gt", str(sequence), "--results", str(run), "--frames", "1-4")
    assert completed.returncode == 0, completed.stderr
    header, row = completed.stdout.strip().splitlines()
    values = dict(zip(header.split(), row.split()))
    assert (values["Sequence"], values["MOTA"], values["FN"]) == ("SEQ-01", "100.0", "0")


@pytest.mark.slow
def test_cli_missing_file_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "absent.txt"
    completed = run_cli("--gt", str(missing), "--results", str(missing))
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [f"Ground-truth file {missing} does not exist."]
