"""Definitions: the example loads; bad ones fail with a typed error naming the key (and its
line, for a file)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from asterisk_cti.ivr import (
    Action,
    IvrDefinitionError,
    QueueTarget,
    load_definition,
    parse_definition,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ivr" / "billing.json"


def _example() -> Dict[str, Any]:
    return dict(json.loads(EXAMPLE.read_text()))


def test_the_example_loads_as_file_and_as_dict_to_the_same_definition() -> None:
    from_file = load_definition(EXAMPLE)
    assert from_file == parse_definition(_example())
    assert from_file.start == "account"
    assert from_file.queues == {"support": QueueTarget("from-internal", "2000", 1)}
    account = from_file.menus["account"]
    assert (account.kind, account.store, account.rules.min_digits, account.rules.max_digits,
            account.rules.terminator) == ("collect", "account", 4, 10, "#")
    assert account.next == (Action("menu", menu="main"),)
    main = from_file.menus["main"]
    assert sorted(main.options) == ["0", "1", "2"]
    assert main.options["1"][0] == Action("set_data", data={"choice": "billing"})
    assert main.options["1"][-1] == Action("queue", queue="support")


def _set(path: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def change(spec: Dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = spec
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


@pytest.mark.parametrize(("change", "key", "words"), [
    (_set("menus/main/tiemout", 5), "menus.main.tiemout", "unknown key"),
    (_set("menus/main/type", "form"), "menus.main.type", "'menu' or 'collect'"),
    (_set("menus/account/min_digits", 0), "menus.account.min_digits", "1 to 64"),
    (_set("menus/account/max_digits", 2), "menus.account.max_digits", "at least min_digits"),
    (_set("menus/account/terminator", "##"), "menus.account.terminator", "one key"),
    (_set("menus/account/first_timeout", -1), "menus.account.first_timeout", "more than 0"),
    (_set("menus/account/inter_digit_timeout", "3"), "menus.account.inter_digit_timeout",
     "must be a number"),
    (_set("menus/account/retries", 11), "menus.account.retries", "0 to 10"),
    (_set("menus/account/store", "bad key"), "menus.account.store", "call-data key"),
    (_set("menus/account/prompts", ["hello-world"]), "menus.account.prompts[0]",
     "media URI"),
    (_set("menus/account/prompts", ["sound:a,b"]), "menus.account.prompts[0]",
     "without commas"),
    (_set("menus/main/options/11", {"action": "hangup"}), "menus.main.options.11",
     "one key"),
    (_set("menus/main/options/1/2", {"action": "queue", "queue": "sales"}),
     "menus.main.options.1[2].queue", "names no queue"),
    (_set("menus/account/next", {"action": "menu", "menu": "nowhere"}),
     "menus.account.next.menu", "names no menu"),
    (_set("menus/main/options/1/0", {"action": "queue", "queue": "support"}),
     "menus.main.options.1[0]", "ends the list"),
    (_set("menus/main/options/2/0", {"action": "set_data", "data": {"choice": 1}}),
     "menus.main.options.2[0].data.choice", "must be a string"),
    (_set("menus/main/options/0", {"action": "hangup", "reason": "angry"}),
     "menus.main.options.0.reason", "unknown hangup reason"),
    (_set("menus/main/options/0", {"action": "transfer"}), "menus.main.options.0.action",
     "must be one of"),
    (_set("menus/main/options/0", {"action": "extension"}),
     "menus.main.options.0.extension", "needs 'extension'"),
    (_set("queues/support", {"context": "from-internal"}), "queues.support.extension",
     "needs 'extension'"),
    (_set("start", "welcome"), "start", "names no menu"),
    (_set("menus", {}), "menus", "non-empty"),
])
def test_a_bad_definition_names_the_key(change: Callable[[Dict[str, Any]], None], key: str,
                                        words: str) -> None:
    spec = copy.deepcopy(_example())
    change(spec)
    with pytest.raises(IvrDefinitionError) as info:
        parse_definition(spec)
    assert info.value.key == key
    assert words in info.value.message
    assert isinstance(info.value, ValueError)


def test_a_bad_file_names_the_key_and_its_line(tmp_path: Path) -> None:
    spec = _example()
    spec["menus"]["main"]["options"]["1"][2]["queue"] = "sales"
    path = tmp_path / "ivr.json"
    path.write_text(json.dumps(spec, indent=2))
    with pytest.raises(IvrDefinitionError) as info:
        load_definition(path)
    err = info.value
    assert err.key == "menus.main.options.1[2].queue"
    lines = path.read_text().splitlines()
    assert err.line is not None and '"queue": "sales"' in lines[err.line - 1]
    assert str(err).startswith(f"{path}:{err.line}: menus.main.options.1[2].queue: ")


def test_a_file_that_is_not_json_gives_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ivr.json"
    path.write_text('{\n  "menus": {\n    "main": {,}\n  }\n}\n')
    with pytest.raises(IvrDefinitionError) as info:
        load_definition(path)
    assert info.value.line == 3 and "not JSON" in info.value.message


@pytest.mark.parametrize("value", [[], "menus", None, 3])
def test_a_definition_that_is_not_an_object_is_refused(value: Any) -> None:
    with pytest.raises(IvrDefinitionError, match="must be an object"):
        parse_definition(value)
