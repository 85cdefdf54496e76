"""Model references, alias rules, rollback targets and metric comparison (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelmill.errors import Conflict, InvalidParameter
from pixelmill.ml.registry_rules import ModelRef, compare, parse_ref, rollback_target

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
aliases = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True).filter(lambda a: a != "latest")


@given(name=names, alias=aliases)
def test_alias_refs_round_trip(name: str, alias: str) -> None:
    ref = parse_ref(f"{name}@{alias}")
    assert ref == ModelRef(name, alias=alias)
    assert parse_ref(str(ref)) == ref


@given(name=names, version=st.integers(1, 10**6))
def test_version_refs_round_trip(name: str, version: int) -> None:
    ref = parse_ref(f"{name}:{version}")
    assert ref.version == version
    assert parse_ref(str(ref)) == ref


def test_bare_name_and_latest() -> None:
    assert parse_ref("nuclei") == ModelRef("nuclei")
    assert parse_ref("nuclei:latest").latest


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Nuclei",
        "nuclei@",
        "nuclei@Prod",
        "nuclei:0",
        "nuclei:-1",
        "nuclei:x",
        "../etc",
        "a@latest",
    ],
)
def test_bad_refs_are_422(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_ref(text)


@dataclass
class Entry:
    action: str
    alias: str | None
    from_version: int | None
    to_version: int | None


def test_rollback_walks_back_through_promotions() -> None:
    audit = [
        Entry("register", None, None, 1),
        Entry("promote", "production", None, 1),
        Entry("promote", "production", 1, 2),
        Entry("promote", "staging", None, 3),
        Entry("promote", "production", 2, 3),
    ]
    assert rollback_target(audit, "production", 3) == 2
    audit.append(Entry("rollback", "production", 3, 2))
    assert rollback_target(audit, "production", 2) == 1
    audit.append(Entry("rollback", "production", 2, 1))
    with pytest.raises(Conflict):
        rollback_target(audit, "production", 1)
    with pytest.raises(Conflict):
        rollback_target(audit, "staging", 3)


def test_compare_picks_best_per_metric() -> None:
    table = compare([(1, {"dice": 0.8, "val_loss": 0.3}), (2, {"dice": 0.9, "val_loss": 0.4})])
    assert table["best"] == {"dice": 2, "val_loss": 1}
    assert table["metrics"]["dice"] == {"1": 0.8, "2": 0.9}
