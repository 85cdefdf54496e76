"""deploy/Dockerfile: hadolint-clean, multi-stage, pinned, non-root, one image for every
role with torch only in the trainer target, and a healthcheck on /livez."""

from __future__ import annotations

import re

from tests.unit.deploy.conftest import DEPLOY, run, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def stages() -> dict[str, str]:
    """Each ``FROM ... AS name`` stage's instructions (comments left out), by name."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    parts = re.split(r"^(?=FROM )", "\n".join(lines), flags=re.M)
    named = {}
    for part in parts[1:]:
        name = re.match(r"FROM \S+ AS (\S+)", part)
        assert name, f"an unnamed stage: {part.splitlines()[0]}"
        named[name.group(1)] = part
    return named


def test_hadolint_finds_nothing() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bases_are_pinned_to_exact_versions() -> None:
    args = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", DOCKERFILE.read_text(), flags=re.M))
    assert set(args) == {"PYTHON_IMAGE", "NODE_IMAGE"}
    for image in args.values():
        # name:MAJOR.MINOR.PATCH[-variant], or a digest
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image), image
    assert all(re.match(r"FROM (\$\{\w+_IMAGE\}|\w[\w-]*) AS", s) for s in stages().values())


def test_the_default_image_is_the_slim_runtime_and_runs_as_a_user() -> None:
    named = stages()
    assert list(named)[-1] == "runtime", "`docker build` without --target must give the runtime"
    assert "npm run build" in named["web"], "the web UI is built in a node stage"
    for final in ("runtime", "trainer"):
        assert re.search(r"^USER 10001:10001$", named[final], flags=re.M), final
        assert "FROM base AS" in named[final]
    assert re.search(r"HEALTHCHECK .*\n?.*/livez", named["base"])


def test_torch_is_only_in_the_trainer_target() -> None:
    named = stages()
    with_torch = {name for name, text in named.items() if "torch" in text or "[train]" in text}
    assert with_torch == {"build-trainer"}
    assert "--from=build-trainer" in named["trainer"]
    assert "--from=build-trainer" not in named["runtime"]
