"""Model references, alias rules, rollback targets and metric comparison (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelmill.errors import Conflict, InvalidParameter
from pixelmill.ml.registry_rules import (
    MAX_VERSION,
    ModelRef,
    check_rollback_to,
    compare,
    parse_ref,
    rollback_target,
)

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
        "nuclei:99999999999999999999999",  # past any version: was a 500 (OverflowError)
        f"nuclei:{MAX_VERSION + 1}",
        "nuclei:" + "9" * 5000,  # past int()'s digit limit
        "nuclei:\u0661",  # a digit, but not an ASCII one
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


def test_the_highest_version_is_still_a_reference() -> None:
    assert parse_ref(f"nuclei:{MAX_VERSION}").version == MAX_VERSION == 2**31 - 1


def test_a_rollback_to_a_version_goes_only_where_the_alias_has_been() -> None:
    audit = [
        Entry("register", None, None, 1),
        Entry("register", None, None, 2),
        Entry("promote", "production", None, 1),
        Entry("promote", "staging", None, 2),
    ]
    # production never held 2 (staging did): going there is a promotion, not a rollback
    with pytest.raises(Conflict, match="promote it instead") as refused:
        check_rollback_to(audit, "nuclei", "production", 2)
    assert refused.value.extra == {"alias": "production", "version": 2}
    assert check_rollback_to(audit, "nuclei", "staging", 2) == 2
    audit += [Entry("promote", "production", 1, 3), Entry("unalias", "production", 3, None)]
    assert check_rollback_to(audit, "nuclei", "production", 1) == 1
    assert check_rollback_to(audit, "nuclei", "production", 3) == 3


def test_compare_picks_best_per_metric() -> None:
    table = compare([(1, {"dice": 0.8, "val_loss": 0.3}), (2, {"dice": 0.9, "val_loss": 0.4})])
    assert table["best"] == {"dice": 2, "val_loss": 1}
    assert table["metrics"]["dice"] == {"1": 0.8, "2": 0.9}
