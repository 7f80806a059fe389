"""Flows: what the IVR does with a call. :class:`IvrFlow` is the base to subclass;
:class:`DefinitionFlow` runs a declarative :class:`~asterisk_cti.ivr.IvrDefinition`.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

from .call import IvrCall
from .definition import Action, IvrDefinition, Menu

logger = logging.getLogger(__name__)

__all__ = ["DefinitionFlow", "IvrFlow"]

#: Menus one call may go through (a guard against a definition that loops forever).
MAX_STEPS = 200


class IvrFlow:
    """The logic of an IVR for one call. Subclass it and override :meth:`run`::

        class Hours(IvrFlow):
            def run(self, call: IvrCall) -> None:
                if not open_now():
                    call.play("sound:/var/lib/asterisk/sounds/custom/closed")
                    call.hangup()
                    return
                account = call.ask("sound:vm-enter-num-to-call",
                                   rules=DigitRules(4, 8, "#", 5.0, 3.0))
                if account is None:
                    call.hangup()
                    return
                call.set_data(account=account, vip=str(crm.is_vip(account)).lower())
                call.route_to_queue("support")

    One instance serves every call: keep per-call state in locals (or on ``call``).
    """

    #: the call's prompts' language when the flow sets none (None: the channel's)
    language: Optional[str] = None

    def run(self, call: IvrCall) -> None:
        """Handle one call, blocking; the call's own thread (``asterisk-cti-ivr-N``) runs it.

        Return when done: a call not sent on (route, hang-up) goes back to the dialplan at
        the priority after its ``Stasis()``, with ``IVR_STATUS=DONE``. A
        :class:`~asterisk_cti.ivr.CallerHangupError` may escape: the engine handles it.
        """
        raise NotImplementedError


class DefinitionFlow(IvrFlow):
    """Runs an :class:`~asterisk_cti.ivr.IvrDefinition` (any thread may build it; ``run`` on
    the call's thread)."""

    def __init__(self, definition: IvrDefinition) -> None:
        self.definition = definition
        self.language = definition.language

    def run(self, call: IvrCall) -> None:
        """Play the menus from the start menu until an action sends the call on (call's
        thread)."""
        menus = self.definition.menus
        name: Optional[str] = self.definition.start
        steps = 0
        while name is not None:
            steps += 1
            if steps > MAX_STEPS:
                logger.warning("ivr: call %s went through %d menus; giving it to the dialplan",
                               call.channel_id, MAX_STEPS)
                return
            actions = self._menu(call, menus[name])
            name = self._actions(call, actions)

    def _menu(self, call: IvrCall, menu: Menu) -> Tuple[Action, ...]:
        call.path.append(f"menu {menu.name}")
        if menu.kind == "menu":
            choice = call.menu(*menu.prompts, options=menu.options,
                               timeout=menu.rules.first_timeout, retries=menu.retries,
                               invalid_prompts=menu.invalid_prompts,
                               timeout_prompts=menu.timeout_prompts,
                               overall_timeout=menu.rules.overall_timeout)
            if choice is None:
                call.path.append("failed")
                return menu.on_failure
            call.path.append(f"key {choice}")
            return menu.options[choice]
        digits = call.ask(*menu.prompts, rules=menu.rules, retries=menu.retries,
                          invalid_prompts=menu.invalid_prompts,
                          timeout_prompts=menu.timeout_prompts)
        if digits is None:
            call.path.append("failed")
            return menu.on_failure
        call.path.append(f"{len(digits)} digits")
        if menu.store:
            call.set_data({menu.store: digits})
        return menu.next

    @staticmethod
    def _actions(call: IvrCall, actions: Tuple[Action, ...]) -> Optional[str]:
        """Run an action list; returns the next menu's name (None: the call was sent on)."""
        for act in actions:
            if act.kind == "play":
                call.play(*act.media)
            elif act.kind == "set_data":
                call.set_data(act.data)
            elif act.kind == "menu":
                return act.menu
            elif act.kind == "extension":
                call.route_to_extension(act.extension, act.context, act.priority)
            elif act.kind == "queue":
                call.route_to_queue(act.queue)
            elif act.kind == "dialplan":
                call.continue_in_dialplan()
            elif act.kind == "hangup":
                call.hangup(act.reason)
        return None
