"""``Settings``: every default in one place, overrides checked by name, values validated."""

import dataclasses

import pytest

from messages.settings import Settings


def test_lan_is_the_defaults() -> None:
    assert Settings.lan() == Settings()
    assert Settings.lan(down_after=4.0) == Settings(down_after=4.0)


def test_fast_test_is_faster_and_takes_overrides() -> None:
    fast = Settings.fast_test()
    assert fast.gossip_interval < Settings().gossip_interval
    assert fast.down_after < Settings().down_after
    assert Settings.fast_test(down_after=2.5) == dataclasses.replace(fast, down_after=2.5)


def test_replace_changes_only_what_it_names() -> None:
    settings = Settings(cluster_name="a")
    assert settings.replace() == settings
    changed = settings.replace(gossip_interval=0.5, cluster_name="b")
    assert (changed.gossip_interval, changed.cluster_name) == (0.5, "b")
    assert changed.heartbeat_interval == settings.heartbeat_interval
    assert settings.gossip_interval == Settings().gossip_interval  # frozen: a new value


def test_an_unknown_name_is_a_type_error_that_names_it_and_a_close_one() -> None:
    with pytest.raises(TypeError, match=r"'gosip_interval' \(did you mean 'gossip_interval'\?\)"):
        Settings().replace(gosip_interval=0.5)
    with pytest.raises(TypeError, match=r"unknown settings: 'nothing_like_it', 'zzz'$"):
        Settings.lan(zzz=1, nothing_like_it=2)


def test_a_replaced_value_is_validated_again() -> None:
    with pytest.raises(ValueError, match="gossip_interval must be positive"):
        Settings().replace(gossip_interval=0)
    with pytest.raises(ValueError, match="load_balancing must be one of"):
        Settings.fast_test(load_balancing="fastest")
