"""The declarative form of an IVR: a JSON file or the same as a Python dict, validated into an
immutable :class:`IvrDefinition` (pure; any thread).

Format (every key other than ``menus`` optional; unknown keys are errors, so a typo is caught)::

    {
      "start": "account",                     # the first menu (default: the first listed)
      "language": "en",                       # the prompts' language (default: the channel's)
      "queues": {"support": {"context": "from-internal", "extension": "2000"}},
      "menus": {
        "account": {
          "type": "collect",                  # digits into a call-data key
          "prompts": ["sound:vm-enter-num-to-call"],
          "min_digits": 4, "max_digits": 8, "terminator": "#",
          "first_timeout": 5, "inter_digit_timeout": 3, "overall_timeout": 30,
          "retries": 2,
          "invalid_prompts": ["sound:pm-invalid-option"],
          "timeout_prompts": ["sound:please-try-again"],
          "store": "account",                 # call-data key (set on the caller's channel)
          "next": {"action": "menu", "menu": "main"},
          "on_failure": {"action": "hangup"}
        },
        "main": {
          "type": "menu",                     # one key chooses an option
          "prompts": ["sound:vm-press", "sound:digits/1", "sound:for", "sound:billing"],
          "timeout": 5, "retries": 2,
          "options": {
            "1": [{"action": "set_data", "data": {"choice": "billing"}},
                  {"action": "queue", "queue": "support"}],
            "2": {"action": "extension", "extension": "1002"}
          },
          "on_failure": {"action": "dialplan"}
        }
      }
    }

An *action list* is one action or a list; every action but the last is ``play`` or
``set_data``, the last one sends the call somewhere (or the flow ends there and the engine
continues the call in the dialplan): ``{"action": "play", "media": [...]}``,
``{"action": "set_data", "data": {"key": "value"}}``, ``{"action": "menu", "menu": NAME}``,
``{"action": "extension", "extension": X[, "context": C][, "priority": N]}``,
``{"action": "queue", "queue": NAME}``, ``{"action": "dialplan"}`` (the priority after
``Stasis()``), ``{"action": "hangup"[, "reason": "normal"]}``.

Media are ARI media URIs: ``sound:NAME`` (Asterisk's sounds, in the call's language),
``sound:/ABSOLUTE/PATH`` (your file, without extension), ``recording:NAME``, ``digits:``,
``number:``, ``characters:``, ``tone:``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..calldata import KEY_PATTERN, MAX_VALUE
from ..causes import HANGUP_REASONS
from .errors import IvrDefinitionError

__all__ = [
    "Action", "DigitRules", "IvrDefinition", "Menu", "QueueTarget", "load_definition",
    "parse_definition",
]

_SCHEMES = ("sound:", "recording:", "digits:", "number:", "characters:", "tone:")
_DIGIT_KEY = re.compile(r"[0-9*#A-D]\Z")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_DIALPLAN = re.compile(r"[A-Za-z0-9_.+*#-]{1,80}\Z")
_TERMINAL = ("menu", "extension", "queue", "dialplan", "hangup")
_ACTIONS = ("play", "set_data", *_TERMINAL)
_MAX_TIMEOUT = 300.0
_MAX_DIGITS = 64
_MAX_MEDIA = 32


@dataclass(frozen=True)
class Action:
    """One step of an action list (see the module docstring for the kinds)."""

    kind: str
    media: Tuple[str, ...] = ()
    data: Mapping[str, str] = field(default_factory=dict)
    menu: str = ""
    context: Optional[str] = None
    extension: str = ""
    priority: int = 1
    queue: str = ""
    reason: str = "normal"


@dataclass(frozen=True)
class DigitRules:
    """How digits are collected: at least ``min_digits``, at most ``max_digits`` (reaching it
    ends the input), ``terminator`` ends it early (not part of the digits; None: none),
    ``first_timeout`` seconds for the first digit after the prompts, ``inter_digit_timeout``
    between digits, ``overall_timeout`` for the whole input (None: no limit)."""

    min_digits: int = 1
    max_digits: int = 1
    terminator: Optional[str] = None
    first_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    overall_timeout: Optional[float] = None


@dataclass(frozen=True)
class Menu:
    """A menu (``kind`` ``"menu"``: one key picks one of ``options``) or a digit collection
    (``"collect"``: digits stored under ``store``, then ``next``). After ``retries`` failed
    attempts (nothing keyed: ``timeout_prompts`` play; an invalid input:
    ``invalid_prompts``), ``on_failure`` runs."""

    name: str
    kind: str
    prompts: Tuple[str, ...]
    rules: DigitRules
    retries: int = 2
    invalid_prompts: Tuple[str, ...] = ("sound:pm-invalid-option",)
    timeout_prompts: Tuple[str, ...] = ()
    options: Mapping[str, Tuple[Action, ...]] = field(default_factory=dict)
    store: Optional[str] = None
    next: Tuple[Action, ...] = ()
    on_failure: Tuple[Action, ...] = (Action("hangup"),)


@dataclass(frozen=True)
class QueueTarget:
    """Where a queue is reached in the dialplan (``Goto(context,extension,priority)``)."""

    context: str
    extension: str
    priority: int = 1


@dataclass(frozen=True)
class IvrDefinition:
    """A validated IVR definition (immutable; share it between threads)."""

    start: str
    menus: Mapping[str, Menu]
    queues: Mapping[str, QueueTarget] = field(default_factory=dict)
    language: Optional[str] = None


class _Checker:
    def __init__(self, text: Optional[str], source: Optional[str]) -> None:
        self._text = text
        self._source = source
        self._refs: List[Tuple[str, Action]] = []  # menu and queue actions, checked last

    def fail(self, key: str, message: str) -> IvrDefinitionError:
        return IvrDefinitionError(message, key, self._line_of(key), self._source)

    def _line_of(self, key: str) -> Optional[int]:
        """The line of the last key of ``key`` in the file, found by searching each key in
        turn after the previous one (best effort)."""
        if self._text is None or not key:
            return None
        pos = 0
        line: Optional[int] = None
        for part in re.split(r"\.|\[\d+\]", key):
            if not part:
                continue
            match = re.compile(re.escape(json.dumps(part)) + r"\s*:").search(self._text, pos)
            if match is None:
                break
            found = pos = match.start()
            line = self._text.count("\n", 0, found) + 1
        return line

    # -- typed fields -------------------------------------------------------------------------
    def obj(self, value: Any, key: str, allowed: Tuple[str, ...]) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be an object, not {_kind(value)}")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{key}.{k}" if key else str(k),
                                f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def text(self, value: Any, key: str, pattern: re.Pattern[str] = _NAME) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise self.fail(key, f"must be a string matching {pattern.pattern!r}, "
                                 f"not {value!r:.60}")
        return value

    def number(self, value: Any, key: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, not {_kind(value)}")
        if not low < value <= high:
            raise self.fail(key, f"must be more than {low:g} and at most {high:g}")
        return float(value)

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(key, f"must be {low} to {high}")
        return value

    def media(self, value: Any, key: str) -> Tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise self.fail(key, f"must be a media URI or a list of them, not {_kind(value)}")
        if len(items) > _MAX_MEDIA:
            raise self.fail(key, f"has {len(items)} media (at most {_MAX_MEDIA})")
        out: List[str] = []
        for i, item in enumerate(items):
            where = f"{key}[{i}]"
            if not isinstance(item, str) or not item.startswith(_SCHEMES):
                raise self.fail(where, f"must be a media URI starting with one of "
                                       f"{', '.join(_SCHEMES)}, not {item!r:.60}")
            if "," in item or len(item) > 256 or not item.isprintable() or item.endswith(":"):
                raise self.fail(where, "must be printable, without commas, at most 256 "
                                       "characters, with something after the scheme")
            out.append(item)
        return tuple(out)

    # -- actions ------------------------------------------------------------------------------
    def actions(self, value: Any, key: str) -> Tuple[Action, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(key, "must hold at least one action")
        out = [self.action(item, f"{key}[{i}]" if isinstance(value, list) else key)
               for i, item in enumerate(items)]
        for i, act in enumerate(out[:-1]):
            if act.kind in _TERMINAL:
                where = f"{key}[{i}]" if isinstance(value, list) else key
                raise self.fail(where, f"'{act.kind}' ends the list: only 'play' and "
                                       "'set_data' may come before the last action")
        return tuple(out)

    def action(self, value: Any, key: str) -> Action:
        if not isinstance(value, dict):
            raise self.fail(key, f"an action must be an object, not {_kind(value)}")
        kind = value.get("action")
        if kind not in _ACTIONS:
            raise self.fail(f"{key}.action", f"must be one of {', '.join(_ACTIONS)}, "
                                             f"not {kind!r:.40}")
        fields = {
            "play": ("media",), "set_data": ("data",), "menu": ("menu",),
            "extension": ("extension", "context", "priority"), "queue": ("queue",),
            "dialplan": (), "hangup": ("reason",),
        }[kind]
        self.obj(value, key, ("action", *fields))
        for required in fields[:1]:
            if required not in value and kind not in ("hangup",):
                raise self.fail(f"{key}.{required}", f"'{kind}' needs '{required}'")
        if kind == "play":
            return Action(kind, media=self.media(value["media"], f"{key}.media"))
        if kind == "set_data":
            return Action(kind, data=self.data(value["data"], f"{key}.data"))
        if kind == "menu":
            act = Action(kind, menu=self.text(value["menu"], f"{key}.menu"))
            self._refs.append((key, act))
            return act
        if kind == "extension":
            context = value.get("context")
            return Action(
                kind, extension=self.text(value["extension"], f"{key}.extension", _DIALPLAN),
                context=None if context is None else self.text(context, f"{key}.context",
                                                               _DIALPLAN),
                priority=self.integer(value.get("priority", 1), f"{key}.priority", 1, 10000))
        if kind == "queue":
            act = Action(kind, queue=self.text(value["queue"], f"{key}.queue"))
            self._refs.append((key, act))
            return act
        if kind == "hangup":
            reason = value.get("reason", "normal")
            if reason not in HANGUP_REASONS:
                raise self.fail(f"{key}.reason", f"unknown hangup reason {reason!r:.40}")
            return Action(kind, reason=reason)
        return Action(kind)

    def data(self, value: Any, key: str) -> Dict[str, str]:
        if not isinstance(value, dict) or not value:
            raise self.fail(key, "must be a non-empty object of strings")
        for k, v in value.items():
            if not isinstance(k, str) or not KEY_PATTERN.fullmatch(k):
                raise self.fail(f"{key}.{k}", "a call-data key is letters, digits, '_', '.', "
                                              "'-' (starting with a letter, at most 64)")
            if not isinstance(v, str) or len(v) > MAX_VALUE:
                raise self.fail(f"{key}.{k}", f"must be a string of at most {MAX_VALUE} "
                                              "characters")
        return dict(value)

    # -- menus --------------------------------------------------------------------------------
    def menu(self, name: str, value: Any, key: str) -> Menu:
        common = ("type", "prompts", "retries", "invalid_prompts", "timeout_prompts",
                  "on_failure", "overall_timeout")
        if not isinstance(value, dict):
            raise self.fail(key, f"a menu must be an object, not {_kind(value)}")
        kind = value.get("type")
        if kind == "menu":
            spec = self.obj(value, key, (*common, "timeout", "options"))
        elif kind == "collect":
            spec = self.obj(value, key, (*common, "min_digits", "max_digits", "terminator",
                                         "first_timeout", "inter_digit_timeout", "store",
                                         "next"))
        else:
            raise self.fail(f"{key}.type", f"must be 'menu' or 'collect', not {kind!r:.40}")
        overall = spec.get("overall_timeout")
        over = None if overall is None else self.number(overall, f"{key}.overall_timeout",
                                                        0, _MAX_TIMEOUT)
        common_args: Dict[str, Any] = {
            "prompts": self.media(spec.get("prompts", []), f"{key}.prompts"),
            "retries": self.integer(spec.get("retries", 2), f"{key}.retries", 0, 10),
            "on_failure": (self.actions(spec["on_failure"], f"{key}.on_failure")
                           if "on_failure" in spec else (Action("hangup"),)),
        }
        if "invalid_prompts" in spec:
            common_args["invalid_prompts"] = self.media(spec["invalid_prompts"],
                                                        f"{key}.invalid_prompts")
        if "timeout_prompts" in spec:
            common_args["timeout_prompts"] = self.media(spec["timeout_prompts"],
                                                        f"{key}.timeout_prompts")
        if kind == "menu":
            timeout = self.number(spec.get("timeout", 5), f"{key}.timeout", 0, _MAX_TIMEOUT)
            raw = spec.get("options")
            if not isinstance(raw, dict) or not raw:
                raise self.fail(f"{key}.options", "must be a non-empty object (key -> actions)")
            options: Dict[str, Tuple[Action, ...]] = {}
            for digit, acts in raw.items():
                if not _DIGIT_KEY.match(str(digit)):
                    raise self.fail(f"{key}.options.{digit}",
                                    "an option is one key: 0-9, *, # or A-D")
                options[digit] = self.actions(acts, f"{key}.options.{digit}")
            rules = DigitRules(1, 1, None, timeout, timeout, over)
            return Menu(name, kind, rules=rules, options=options, **common_args)
        lo = self.integer(spec.get("min_digits", 1), f"{key}.min_digits", 1, _MAX_DIGITS)
        hi = self.integer(spec.get("max_digits", lo), f"{key}.max_digits", 1, _MAX_DIGITS)
        if hi < lo:
            raise self.fail(f"{key}.max_digits", f"must be at least min_digits ({lo})")
        term = spec.get("terminator", "#")
        if term is not None and term != "" and (not isinstance(term, str)
                                                or not _DIGIT_KEY.match(term)):
            raise self.fail(f"{key}.terminator", "must be one key (0-9, *, #, A-D) or null")
        rules = DigitRules(
            lo, hi, term or None,
            self.number(spec.get("first_timeout", 5), f"{key}.first_timeout", 0, _MAX_TIMEOUT),
            self.number(spec.get("inter_digit_timeout", 3), f"{key}.inter_digit_timeout", 0,
                        _MAX_TIMEOUT),
            over)
        store = spec.get("store")
        if store is not None and (not isinstance(store, str) or not KEY_PATTERN.fullmatch(store)):
            raise self.fail(f"{key}.store", "must be a call-data key (letters, digits, '_', "
                                            "'.', '-', starting with a letter)")
        if "next" not in spec:
            raise self.fail(f"{key}.next", "a collect needs 'next' (the actions after it)")
        return Menu(name, kind, rules=rules, store=store,
                    next=self.actions(spec["next"], f"{key}.next"), **common_args)

    def definition(self, value: Any) -> IvrDefinition:
        spec = self.obj(value, "", ("start", "language", "queues", "menus", "description"))
        raw_menus = spec.get("menus")
        if not isinstance(raw_menus, dict) or not raw_menus:
            raise self.fail("menus", "must be a non-empty object (name -> menu)")
        menus: Dict[str, Menu] = {}
        for name, menu in raw_menus.items():
            self.text(name, f"menus.{name}")
            menus[name] = self.menu(name, menu, f"menus.{name}")
        queues: Dict[str, QueueTarget] = {}
        raw_queues = spec.get("queues", {})
        if not isinstance(raw_queues, dict):
            raise self.fail("queues", "must be an object (name -> {context, extension})")
        for name, q in raw_queues.items():
            key = f"queues.{name}"
            self.text(name, key)
            qd = self.obj(q, key, ("context", "extension", "priority"))
            for required in ("context", "extension"):
                if required not in qd:
                    raise self.fail(f"{key}.{required}", f"a queue needs '{required}'")
            queues[name] = QueueTarget(
                self.text(qd["context"], f"{key}.context", _DIALPLAN),
                self.text(qd["extension"], f"{key}.extension", _DIALPLAN),
                self.integer(qd.get("priority", 1), f"{key}.priority", 1, 10000))
        start = spec.get("start", next(iter(menus)))
        if start not in menus:
            raise self.fail("start", f"names no menu ({start!r:.40})")
        language = spec.get("language")
        if language is not None:
            self.text(language, "language", re.compile(r"[A-Za-z_-]{2,16}\Z"))
        for key, act in self._refs:
            if act.kind == "menu" and act.menu not in menus:
                raise self.fail(f"{key}.menu", f"names no menu ({act.menu!r})")
            if act.kind == "queue" and act.queue not in queues:
                raise self.fail(f"{key}.queue", f"names no queue of 'queues' ({act.queue!r})")
        return IvrDefinition(start=start, menus=menus, queues=queues, language=language)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_definition(spec: Mapping[str, Any]) -> IvrDefinition:
    """Validate a definition given as a Python dict (the JSON form). Any thread.

    :raises IvrDefinitionError: what is wrong and where (the key path).
    """
    return _Checker(None, None).definition(spec)


def load_definition(path: Union[str, Path]) -> IvrDefinition:
    """Read and validate a JSON definition file. Any thread.

    :raises IvrDefinitionError: not JSON (line and column), or what is wrong and where (the
        key path and its line).
    :raises OSError: the file cannot be read.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if len(text) > 1 << 20:
        raise IvrDefinitionError("the file is larger than 1 MiB", source=str(p))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IvrDefinitionError(f"not JSON: {exc.msg} (column {exc.colno})", line=exc.lineno,
                                 source=str(p)) from None
    except RecursionError:
        raise IvrDefinitionError("nested too deeply", source=str(p)) from None
    return _Checker(text, str(p)).definition(value)
