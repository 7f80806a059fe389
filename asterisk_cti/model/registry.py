"""Which ARI event type each handler of the call model handles.

A handler method of a :class:`~asterisk_cti.model.core.CallModel` mixin is marked with
:func:`handles`; :func:`handler_table` collects the marks of a class (through its MRO), so
that the table :meth:`CallModel.apply` dispatches on, and the list of event types the model
needs (:data:`~asterisk_cti.model.MODEL_EVENT_TYPES`), are derived from the handlers
themselves. Runs at import time (class creation); no thread, no I/O.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple, TypeVar

_Handler = TypeVar("_Handler", bound=Callable[..., None])

#: The attribute :func:`handles` sets on a handler function.
_MARK = "_handles_event_types"


def handles(*event_types: str) -> Callable[[_Handler], _Handler]:
    """Mark a method as the handler of ARI events ``event_types`` (``"ChannelCreated"``).

    The method takes the raw event dict. The function is returned unchanged.
    """
    if not event_types or not all(isinstance(t, str) and t for t in event_types):
        raise TypeError("handles() needs one or more event type names")

    def mark(handler: _Handler) -> _Handler:
        setattr(handler, _MARK, getattr(handler, _MARK, ()) + tuple(event_types))
        return handler

    return mark


def handler_table(cls: type) -> Dict[str, str]:
    """The handlers of ``cls``: ARI event type -> name of the method that handles it.

    A method overridden in a subclass counts as the subclass defines it.

    :raises TypeError: when two methods claim one event type.
    """
    table: Dict[str, str] = {}
    seen: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            seen[name] = value
    for name, value in seen.items():
        types: Tuple[str, ...] = getattr(value, _MARK, ())
        for event_type in types:
            other = table.get(event_type)
            if other is not None and other != name:
                raise TypeError(
                    f"{cls.__name__}: {event_type} is handled by both {other} and {name}"
                )
            table[event_type] = name
    return table
