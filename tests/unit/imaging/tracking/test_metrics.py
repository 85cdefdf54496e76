"""Tracking scores: what a swapped identity, a miss or a stray detection costs."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.imaging.tracking import track
from pixelmill.imaging.tracking.metrics import Detections, score_tracking

from .synthetic import Disc, render


def _dets(rows: list[tuple[int, int, float, float]]) -> Detections:
    """From (track, frame, row, col) rows."""
    return Detections.points(np.array(rows, np.float64))


def _two_walkers(frames: int = 6) -> list[tuple[int, int, float, float]]:
    return [(1, t, 10.0, 10.0 + 3 * t) for t in range(frames)] + [
        (2, t, 40.0, 10.0 + 3 * t) for t in range(frames)
    ]


def test_a_perfect_tracking_scores_one_everywhere():
    truth = _two_walkers()
    pred = [(k + 10, t, r + 1, c - 1) for k, t, r, c in truth]

    s = score_tracking(_dets(pred), _dets(truth), max_distance=5)

    assert (s["mota"], s["idf1"], s["detection_f1"]) == (1.0, 1.0, 1.0)
    assert s["id_switches"] == 0 and s["fragmentations"] == 0
    assert s["motp_px"] == pytest.approx(np.sqrt(2))
    assert s["mostly_tracked"] == 2


def test_swapped_identities_count_two_switches_and_halve_idf1():
    truth = _two_walkers()
    pred = [(k if t < 3 else 3 - k, t, r, c) for k, t, r, c in truth]

    s = score_tracking(_dets(pred), _dets(truth), max_distance=5)

    assert s["id_switches"] == 2 and s["id_switches_per_100"] == 100.0
    assert s["mota"] == pytest.approx(1 - 2 / 12)
    assert s["idf1"] == pytest.approx(0.5)
    assert s["detection_f1"] == 1.0


def test_a_miss_is_a_fragmentation_and_a_stray_detection_a_false_positive():
    truth = [(1, t, 10.0, 10.0 + 3 * t) for t in range(6)]
    pred = [(5, t, r, c) for k, t, r, c in truth if t != 2] + [(9, 4, 60.0, 60.0)]

    s = score_tracking(_dets(pred), _dets(truth), max_distance=5)

    assert (s["tp"], s["fn"], s["fp"]) == (5, 1, 1)
    assert s["fragmentations"] == 1 and s["id_switches"] == 0
    assert s["mota"] == pytest.approx(1 - 2 / 6)


def test_a_detection_of_an_annotated_but_untracked_object_is_ignored():
    truth = [(1, t, 10.0, 10.0) for t in range(3)]
    pred = [(1, t, 10.0, 10.0) for t in range(3)] + [(2, 1, 50.0, 50.0)]

    plain = score_tracking(_dets(pred), _dets(truth), max_distance=5)
    ignoring = score_tracking(
        _dets(pred), _dets(truth), max_distance=5, ignore=np.array([[1, 51.0, 49.0]])
    )

    assert plain["fp"] == 1
    assert ignoring["fp"] == 0 and ignoring["ignored_detections"] == 1
    assert ignoring["mota"] == 1.0 and ignoring["idf1"] == 1.0


def test_a_point_inside_a_large_object_pairs_with_it_even_far_from_its_centroid():
    labels = np.zeros((1, 40, 80), np.uint16)
    labels[0, 10:20, 5:75] = 4  # a long object, centroid at (14.5, 39.5)
    pred = Detections(
        frame=np.array([0]),
        track=np.array([1]),
        row=np.array([14.5]),
        col=np.array([39.5]),
        label=np.array([4]),
    )
    truth = _dets([(1, 0, 12.0, 70.0)])

    by_distance = score_tracking(pred, truth, max_distance=5)
    by_inside = score_tracking(pred, truth, max_distance=5, labels=labels)

    assert by_distance["tp"] == 0 and by_inside["tp"] == 1


def test_tracking_synthetic_nuclei_scores_perfectly_against_their_true_paths():
    discs = [
        Disc("a", (20, 10), (0, 3)),
        Disc("b", (50, 80), (0.5, -2.5), missing={4}),
        Disc("c", (80, 20), (-2, 2)),
    ]
    labels, _ = render(discs, frames=10)
    truth = _dets(
        [(k, t, *d.at(t)) for k, d in enumerate(discs) for t in range(10) if t not in d.missing]
    )

    s = score_tracking(Detections.of(track(labels)), truth, max_distance=5, labels=labels)

    assert (s["mota"], s["idf1"], s["id_switches"]) == (1.0, 1.0, 0)


def test_found_divisions_pair_with_true_ones_and_the_rest_count_as_errors():
    from pixelmill.imaging.tracking.metrics import Division, divisions_of, score_divisions

    mother = Disc("mother", (48, 20), (0, 2), radius=8, end=5)
    up = Disc("up", (41, 32), (-1.5, 2), radius=5.5, start=6)
    down = Disc("down", (55, 32), (1.5, 2), radius=5.5, start=6)
    labels, _ = render([mother, up, down], frames=10)
    true = Division(frame=6, mother=mother.at(5), daughters=(down.at(6), up.at(6)))
    elsewhere = Division(frame=3, mother=(10.0, 10.0), daughters=((5.0, 10.0), (15.0, 10.0)))

    found = divisions_of(track(labels))
    both = score_divisions(found, [true, elsewhere], max_distance=5)
    none = score_divisions([], [true], max_distance=5)

    assert len(found) == 1 and found[0].frame == 6
    assert (both["tp"], both["fp"], both["fn"]) == (1, 0, 1)
    assert both["precision"] == 1.0 and both["recall"] == 0.5
    assert (none["fn"], none["f1"]) == (1, 0.0)
