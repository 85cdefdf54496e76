"""Linking label stacks into tracks: moving, missed and dividing nuclei."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.tracking import track

from .synthetic import Disc, named_tracks, render


def test_moving_nuclei_keep_one_track_each_whatever_their_labels():
    discs = [
        Disc("a", (20, 10), (0, 3)),
        Disc("b", (50, 80), (0.5, -2.5)),
        Disc("c", (80, 20), (-2, 2)),
    ]
    labels, truth = render(discs, frames=12)

    tracks = track(labels)

    got = named_tracks(tracks, truth)
    assert all(len(ids) == 1 for ids in got.values()), got
    assert len({next(iter(ids)) for ids in got.values()}) == 3
    assert tracks.parent == {}


def test_a_nucleus_missed_for_one_frame_keeps_its_track():
    discs = [Disc("a", (30, 10), (0, 3), missing={5}), Disc("b", (70, 60), (0, -2))]
    labels, truth = render(discs, frames=10)

    closed = named_tracks(track(labels), truth)
    not_closed = named_tracks(track(labels, max_gap=0), truth)

    assert len(closed["a"]) == 1
    assert len(not_closed["a"]) == 2


def test_a_division_gives_two_daughter_tracks_under_their_mother():
    mother = Disc("mother", (48, 20), (0, 2), radius=8, end=5)
    up = Disc("up", (41, 32), (-1.5, 2), radius=5.5, start=6)
    down = Disc("down", (55, 32), (1.5, 2), radius=5.5, start=6)
    other = Disc("other", (10, 80), (1, 0))
    labels, truth = render([mother, up, down, other], frames=14)

    tracks = track(labels)

    got = {name: ids.pop() for name, ids in named_tracks(tracks, truth).items()}
    assert tracks.parent == {got["up"]: got["mother"], got["down"]: got["mother"]}
    assert tracks.children() == {got["mother"]: sorted([got["up"], got["down"]])}
    assert got["other"] not in tracks.parent


def test_a_nucleus_appearing_beside_another_is_not_taken_for_a_daughter():
    # the newcomer is as big as its neighbour: their areas add up to twice the neighbour's
    stays = Disc("stays", (48, 20), (0, 2), radius=7)
    newcomer = Disc("newcomer", (48, 46), (0, 2), radius=7, start=5)
    labels, truth = render([stays, newcomer], frames=10)

    tracks = track(labels, max_distance=20)

    assert tracks.parent == {}
    assert len(named_tracks(tracks, truth)["stays"]) == 1


def test_a_one_frame_oversegmentation_is_not_a_division():
    whole = Disc("whole", (48, 20), (0, 2), radius=8, missing={6})
    left = Disc("half", (48, 27), (0, 0), radius=5, start=6, end=6)
    right = Disc("half2", (48, 37), (0, 0), radius=5, start=6, end=6)
    labels, _truth = render([whole, left, right], frames=12)

    tracks = track(labels)

    assert tracks.parent == {}


def test_no_objects_no_tracks():
    tracks = track(np.zeros((3, 8, 8), np.uint8))
    assert tracks.n_tracks == 0


@pytest.mark.parametrize(
    "stack",
    [np.zeros((8, 8), np.uint16), np.zeros((2, 8, 8), np.float32), np.zeros((0, 8, 8), np.uint8)],
)
def test_anything_but_a_stack_of_label_images_is_refused(stack):
    with pytest.raises(InvalidParameter):
        track(stack)


def test_intensity_frames_of_another_size_are_refused():
    with pytest.raises(InvalidParameter, match="do not match"):
        track(np.zeros((2, 8, 8), np.uint16), intensity=np.zeros((2, 8, 9), np.uint8))


def test_huge_label_ids_track_like_small_ones():
    discs = [Disc("a", (20, 10), (0, 3)), Disc("b", (60, 70), (1, -2))]
    labels, _ = render(discs, frames=5)
    huge = labels.astype(np.uint32)
    huge[huge > 0] += 3_000_000_000

    small, large = track(labels), track(huge)

    assert (small.track == large.track).all()
    assert (large.objects.label > 3_000_000_000).all()


@given(
    st.lists(
        st.tuples(st.floats(10, 86), st.floats(10, 86), st.floats(-4, 4), st.floats(-4, 4)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 3),
)
@settings(max_examples=25, deadline=None)
def test_every_object_is_in_one_track_that_holds_one_object_a_frame(paths, seed):
    discs = [Disc(str(i), (r, c), (dr, dc), radius=4) for i, (r, c, dr, dc) in enumerate(paths)]
    labels, _ = render(discs, frames=5, seed=seed)

    tracks = track(labels)

    assert (tracks.track >= 1).all() and len(tracks.track) == len(tracks.objects)
    pairs = set(zip(tracks.track.tolist(), tracks.objects.frame.tolist(), strict=True))
    assert len(pairs) == len(tracks.track)  # no track twice in a frame
    for child, mother in tracks.parent.items():
        starts = tracks.objects.frame[tracks.track == child].min()
        assert tracks.objects.frame[tracks.track == mother].max() == starts - 1
