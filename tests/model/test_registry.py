"""The handler registry: the event types the model needs are derived from its handlers."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from asterisk_cti.events.catalogue import ARI_EVENT_TYPES, parse_event
from asterisk_cti.model import MODEL_EVENT_TYPES, CallModel
from asterisk_cti.model.registry import handler_table, handles

from .helpers import chan, ev, new_model


class _Base:
    @handles("ChannelCreated")
    def _on_created(self, raw: Mapping[str, Any]) -> None:
        pass

    def _helper(self) -> None:
        pass


class _Mixin:
    @handles("Dial", "ChannelHold")
    def _on_two(self, raw: Mapping[str, Any]) -> None:
        pass


class _Toy(_Base, _Mixin):
    pass


def test_table_collects_the_marked_methods_through_the_mro() -> None:
    assert handler_table(_Toy) == {
        "ChannelCreated": "_on_created", "Dial": "_on_two", "ChannelHold": "_on_two",
    }


def test_two_methods_claiming_one_type_is_an_error() -> None:
    class Clash(_Toy):
        @handles("Dial")
        def _on_dial_again(self, raw: Mapping[str, Any]) -> None:
            pass

    with pytest.raises(TypeError, match="Dial"):
        handler_table(Clash)


def test_an_unmarked_override_drops_the_registration() -> None:
    class Override(_Toy):
        def _on_created(self, raw: Mapping[str, Any]) -> None:  # not marked again
            pass

    assert "ChannelCreated" not in handler_table(Override)


def test_handles_needs_a_type() -> None:
    with pytest.raises(TypeError):
        handles()
    with pytest.raises(TypeError):
        handles("")


def test_model_event_types_are_real_ari_event_types() -> None:
    # a misspelt @handles("...") would silently never run, and the filter would not ask for it
    assert MODEL_EVENT_TYPES
    assert set(MODEL_EVENT_TYPES) <= set(ARI_EVENT_TYPES)


def test_model_event_types_are_what_apply_dispatches() -> None:
    assert set(MODEL_EVENT_TYPES) == set(handler_table(CallModel))
    model = new_model()
    frame = ev("ChannelCreated", channel=chan("9.1", "1000", "Ring"))
    assert "ChannelCreated" in MODEL_EVENT_TYPES
    assert model.apply(parse_event(frame)), "a registered handler runs"
    unknown = dict(frame, type="ChannelUserevent")
    assert "ChannelUserevent" not in MODEL_EVENT_TYPES
    assert model.apply(parse_event(unknown)) == []
