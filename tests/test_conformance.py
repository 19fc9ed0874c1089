from __future__ import annotations

import pytest

from agentsim.core.check import ConformanceError, check_world
from agentsim.core.registry import UnknownFamilyError, families, get_family, register
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS


@pytest.mark.parametrize("name", ["neutral", "invasion", "cyberattack"])
def test_wargame_passes_the_conformance_check(name: str) -> None:
    check_world(load_scenario(SCENARIOS / "wargame" / f"{name}.yaml"), steps=4)


def test_conformance_catches_a_nondeterministic_family() -> None:
    import itertools
    from dataclasses import replace

    sc = load_scenario(SCENARIOS / "wargame" / "neutral.yaml")
    counter = itertools.count()
    fam = sc.family

    def leaky(data, rng):  # depends on hidden global state, not on the seed it is given
        import numpy as np

        return fam.scripted_policy(data, np.random.default_rng(next(counter)))

    broken = replace(sc, family=replace(fam, scripted_policy=leaky))
    with pytest.raises(ConformanceError, match="determinism"):
        check_world(broken, steps=3)


def test_registry_lookup_and_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsim.core import registry

    registry.families()  # discover the installed families first, so the restored registry still has them
    monkeypatch.setattr(registry, "_entry_points", dict(registry._entry_points))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    assert "wargame" in families()
    with pytest.raises(UnknownFamilyError, match="did you mean 'wargame'"):
        get_family("wargam")
    register("wargame-alias", "agentsim.scenarios.wargame:FAMILY")
    assert get_family("wargame-alias") is get_family("wargame")
