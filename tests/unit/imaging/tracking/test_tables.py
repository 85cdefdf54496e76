"""The per-object and per-track tables a user downloads after tracking."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.imaging.analysis.export import to_csv
from pixelmill.imaging.tracking import (
    OBJECT_COLUMNS,
    TRACK_COLUMNS,
    object_table,
    track,
    track_table,
)

from .synthetic import Disc, render


def _by_track(table):
    return {row["track_id"]: row for row in table.to_pylist()}


def test_a_straight_mover_has_its_speed_in_px_and_um_per_minute():
    labels, _ = render([Disc("a", (40, 10), (0, 3))], frames=9)

    tracks = track(labels)
    row = track_table(tracks, pixel_size_um=0.5, frame_interval_s=30).to_pylist()[0]

    assert row["start_frame"] == 0 and row["end_frame"] == 8 and row["frames"] == 9
    assert row["mean_speed_px_per_frame"] == pytest.approx(3.0, abs=0.05)
    # 3 px/frame x 0.5 um/px / 0.5 min/frame
    assert row["mean_speed_um_per_min"] == pytest.approx(3.0, abs=0.05)
    assert row["net_displacement_px"] == pytest.approx(24.0, abs=0.1)
    assert row["straightness"] == pytest.approx(1.0, abs=1e-6)
    assert row["fate"] == "last_frame"


def test_without_pixel_size_and_interval_the_um_columns_are_null_not_guessed():
    labels, _ = render([Disc("a", (40, 10), (0, 3))], frames=4)

    tracks = track(labels)
    per_track = track_table(tracks).to_pylist()[0]
    per_object = object_table(tracks).to_pylist()

    assert per_track["mean_speed_um_per_min"] is None
    assert all(r["area_um2"] is None for r in per_object)
    assert all(r["mean_intensity"] is None for r in per_object)


def test_a_division_shows_as_parent_children_and_fate():
    mother = Disc("mother", (48, 20), (0, 2), radius=8, end=5)
    up = Disc("up", (41, 32), (-1.5, 2), radius=5.5, start=6)
    down = Disc("down", (55, 32), (1.5, 2), radius=5.5, start=6)
    labels, _ = render([mother, up, down], frames=10)

    tracks = track(labels)
    rows = _by_track(track_table(tracks))

    assert rows[1]["fate"] == "divided" and rows[1]["children"] == "2 3"
    assert rows[1]["generation"] == 0
    assert [rows[k]["parent_track_id"] for k in (2, 3)] == [1, 1]
    assert [rows[k]["generation"] for k in (2, 3)] == [1, 1]
    assert rows[2]["start_frame"] == 6 and rows[2]["area_start_px"] < rows[1]["area_end_px"]
    daughters = [r for r in object_table(tracks).to_pylist() if r["track_id"] == 3]
    assert {r["parent_track_id"] for r in daughters} == {1}


def test_a_closed_gap_is_counted_and_a_lost_track_says_so():
    discs = [Disc("a", (30, 10), (0, 3), missing={4}), Disc("b", (70, 60), (0, -2), end=3)]
    labels, _ = render(discs, frames=8)

    rows = track_table(track(labels)).to_pylist()

    a = next(r for r in rows if r["end_frame"] == 7)
    b = next(r for r in rows if r["end_frame"] == 3)
    assert a["missing_frames"] == 1 and a["frames"] == 7
    assert b["fate"] == "lost"


def test_area_and_mean_intensity_over_time_come_from_the_frames():
    labels, _ = render([Disc("a", (40, 40), (0, 0), radius=5)], frames=3)
    labels[2] = 0
    labels[2, 30:50, 30:50] = 1  # the nucleus grows to a 20 x 20 square
    intensity = np.where(labels > 0, 200, 10).astype(np.uint8)
    intensity[1][labels[1] > 0] = 100

    tracks = track(labels, intensity=intensity, max_distance=10)
    objects = object_table(tracks, pixel_size_um=2.0).to_pylist()

    assert [r["mean_intensity"] for r in objects] == [200.0, 100.0, 200.0]
    assert objects[2]["area_px"] == 400 and objects[2]["area_um2"] == 1600.0
    row = track_table(tracks).to_pylist()[0]
    assert row["area_change"] == pytest.approx(400 / objects[0]["area_px"] - 1)


def test_the_tables_have_their_documented_columns_and_export_as_csv():
    labels, _ = render([Disc("a", (40, 10), (0, 3))], frames=3)
    tracks = track(labels)

    objects, per_track = object_table(tracks), track_table(tracks)

    assert tuple(objects.column_names) == OBJECT_COLUMNS
    assert tuple(per_track.column_names) == TRACK_COLUMNS
    lines = to_csv(per_track).decode().splitlines()
    assert lines[0].startswith('"track_id","parent_track_id","children"')
    assert len(lines) == 2
