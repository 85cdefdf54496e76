"""Object-level evaluation scores against small examples worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.ml.scores import ObjectTally, beats, matched_ious, truth_instances


def three_truths_two_found() -> tuple[np.ndarray, np.ndarray]:
    """Truth: A (2x5 = 10 px), B (10 px), C (2x2 = 4 px). Prediction: 8 px of A
    (IoU 0.8), 6 px of B (IoU 0.6), a 2 px object where nothing is (FP); C is missed."""
    truth = np.zeros((10, 10), np.int32)
    truth[0:2, 0:5], truth[4:6, 0:5], truth[8:10, 8:10] = 1, 2, 3
    pred = np.zeros((10, 10), np.int32)
    pred[0:2, 0:4], pred[4:6, 0:3], pred[8, 0:2] = 1, 2, 3
    return pred, truth


def test_precision_recall_f1_ap_at_two_thresholds() -> None:
    # given two matches (IoU 0.8 and 0.6), one false positive and one miss
    tally = ObjectTally()
    tally.add(*three_truths_two_found())
    # then at 0.5 both matches count: TP 2, FP 1, FN 1
    at50 = tally.at(0.5)
    assert (at50["tp"], at50["fp"], at50["fn"]) == (2, 1, 1)
    assert at50["precision"] == pytest.approx(2 / 3)
    assert at50["recall"] == pytest.approx(2 / 3)
    assert at50["f1"] == pytest.approx(2 / 3)
    assert at50["ap"] == pytest.approx(2 / 4)  # TP / (TP + FP + FN)
    # and at 0.75 only the IoU 0.8 match does: TP 1, FP 2, FN 2
    at75 = tally.at(0.75)
    assert at75["f1"] == pytest.approx(1 / 3)
    assert at75["ap"] == pytest.approx(1 / 5)


def test_mean_ap_panoptic_quality_dice_and_counts() -> None:
    tally = ObjectTally()
    tally.add(*three_truths_two_found())
    s = tally.scores()
    # AP is 0.5 at 0.50-0.60 (3 thresholds), 0.2 at 0.65-0.80 (4), 0 at 0.85-0.90 (2)
    assert s["map"] == pytest.approx((3 * 0.5 + 4 * 0.2) / 9)
    assert s["ap"]["0.60"] == pytest.approx(0.5) and s["ap"]["0.85"] == 0.0
    # SQ: mean matched IoU (0.8 + 0.6) / 2; RQ: 2 / (2 + 1/2 + 1/2)
    assert s["sq"] == pytest.approx(0.7)
    assert s["rq"] == pytest.approx(2 / 3)
    assert s["pq"] == pytest.approx(0.7 * 2 / 3)
    # pixels: 16 predicted, 24 true, 14 shared
    assert s["dice"] == pytest.approx(28 / 40)
    assert (s["objects_pred"], s["objects_true"], s["count_error"]) == (3, 3, 0.0)
    assert s["f1@0.5"] == pytest.approx(2 / 3) and s["recall@0.75"] == pytest.approx(1 / 3)


def test_two_halves_of_one_object_match_it_once() -> None:
    # given one true object and two predictions covering half of it each (IoU 0.5 each)
    truth = np.ones((1, 4), np.int32)
    pred = np.array([[1, 1, 2, 2]], np.int32)
    # then only one of them is a match: the other is a false positive
    assert matched_ious(pred, truth).tolist() == [0.5]
    tally = ObjectTally()
    tally.add(pred, truth)
    assert tally.at(0.5)["precision"] == 0.5 and tally.at(0.5)["recall"] == 1.0
    # and PQ counts matches at IoU strictly above 0.5 only
    assert tally.panoptic()["pq"] == 0.0


def test_counts_and_scores_are_pooled_over_images() -> None:
    tally = ObjectTally()
    tally.add(*three_truths_two_found())
    tally.add(np.zeros((4, 4), np.int32), np.pad(np.ones((2, 2), np.int32), 1))  # 1 missed
    s = tally.scores()
    assert (s["objects_pred"], s["objects_true"]) == (3, 4)
    assert s["count_error"] == pytest.approx(-1 / 4)
    assert s["count_abs_error"] == pytest.approx((0 + 1) / 2)
    assert s["recall@0.5"] == pytest.approx(2 / 4)


def test_nothing_to_find_and_nothing_found_scores_perfect() -> None:
    tally = ObjectTally()
    tally.add(np.zeros((5, 5), np.int32), np.zeros((5, 5), np.int32))
    s = tally.scores()
    assert s["f1@0.5"] == s["map"] == s["pq"] == s["dice"] == 1.0


def test_truth_from_binary_masks_and_label_images() -> None:
    # a binary mask: objects are its 8-connected parts (a background line separates)
    binary = np.array([[255, 255, 0, 255], [0, 255, 0, 255]], np.uint8)
    assert truth_instances(binary).max() == 2
    # a label image: touching objects stay apart, renumbered 1..N
    labels = np.array([[7, 7, 9, 9], [0, 0, 9, 4]], np.uint16)
    out = truth_instances(labels)
    assert out.max() == 3 and out[0, 0] != out[0, 2] != out[1, 3]


def test_gate_comparison_knows_which_way_is_better() -> None:
    assert beats({"f1@0.5": 0.8}, {"f1@0.5": 0.7}, "f1@0.5")
    assert not beats({"f1@0.5": 0.7}, {"f1@0.5": 0.7}, "f1@0.5")  # a tie does not win
    assert beats({"count_abs_error": 0.05}, {"count_abs_error": 0.2}, "count_abs_error")


def test_prediction_and_truth_must_have_one_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        ObjectTally().add(np.zeros((2, 2), np.int32), np.zeros((3, 3), np.int32))
