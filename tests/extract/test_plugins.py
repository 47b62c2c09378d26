"""sidkit.plugin: the hook specifications, loading plugins, and what a broken plugin costs.

A broken plugin found through an entry point must produce a PluginLoadWarning naming it and
leave every other plugin working; one the caller registers explicitly raises PluginError.
The built-in plugins are discovered exactly as third-party ones are: through the "sidkit"
entry-point group of the installed sidkit distribution.
"""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
import types
from collections.abc import Mapping
from pathlib import Path

import pluggy
import pytest
from fixtures import packets as pk

import sidkit
from sidkit.extract import Extractor
from sidkit.keys import SessionId
from sidkit.plugin import (
    ENTRY_POINT_GROUP,
    Option,
    PluginError,
    PluginHost,
    PluginLoadWarning,
    ProtocolSpec,
    default_host,
    hookimpl,
    make_plugin_manager,
    resolve_options,
)

BUILTINS = {"quic", "dtls", "wireguard", "fixed", "gtpu", "ipsec", "openvpn", "rtp", "srt"}


def test_builtins_come_from_the_entry_point_group() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert names >= BUILTINS, "reinstall sidkit (pip install -e .) to register its plugins"
    host = default_host()
    assert set(host.protocols) >= BUILTINS
    for name in BUILTINS:
        spec = host.spec(name)
        assert spec.references, name  # every protocol cites its specification
        assert host.plugin_of(name).__name__ == f"sidkit_{name}"  # type: ignore[attr-defined]


def test_hook_specifications() -> None:
    manager = make_plugin_manager()
    specs = {
        name: getattr(manager.hook, name).spec
        for name in dir(manager.hook)
        if name.startswith("sidkit_")
    }
    assert set(specs) == {
        "sidkit_protocols",
        "sidkit_extract",
        "sidkit_first_bytes",
        "sidkit_sid_locations",
    }
    first = {name for name, spec in specs.items() if spec.opts["firstresult"]}
    assert first == {"sidkit_extract", "sidkit_first_bytes", "sidkit_sid_locations"}
    assert tuple(specs["sidkit_extract"].argnames) == (
        "protocol",
        "payload",
        "five_tuple",
        "options",
    )


def test_pluggy_native_call_is_first_result() -> None:
    # The hook can be called through pluggy directly: every plugin is asked, the one that
    # owns the protocol answers, the others return None.
    host = default_host()
    packet = pk.wireguard(4, sender=b"", receiver=b"RECV")
    options = resolve_options(host.spec("wireguard"), {})
    sid = host.manager.hook.sidkit_extract(
        protocol="wireguard", payload=packet, five_tuple=None, options=options
    )
    assert sid == SessionId("wireguard", b"RECV")


def _plugin(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    return module


GOOD = textwrap.dedent(
    """
    from sidkit.plugin import ProtocolSpec, hookimpl
    from sidkit.keys import SessionId

    @hookimpl
    def sidkit_protocols():
        return [ProtocolSpec(name="{name}", summary="test", references=["none"])]

    @hookimpl
    def sidkit_extract(protocol, payload):
        if protocol == "{name}" and payload[:1] == b"{prefix}":
            return SessionId("{name}", payload[1:3])
        return None
    """
)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # a hookimpl argument the specification does not have (pluggy refuses it)
        (
            "from sidkit.plugin import hookimpl\n"
            "@hookimpl\ndef sidkit_extract(protocol, packet): return None\n",
            "packet",
        ),
        # a misspelt hook: check_pending finds an implementation without a specification
        (
            GOOD.format(name="typo", prefix="t")
            + "\n@hookimpl\ndef sidkit_extrakt(payload): return None\n",
            "sidkit_extrakt",
        ),
        # sidkit_protocols raising
        (
            "from sidkit.plugin import hookimpl\n"
            "@hookimpl\ndef sidkit_protocols(): raise RuntimeError('boom')\n"
            "@hookimpl\ndef sidkit_extract(payload): return None\n",
            "boom",
        ),
        # sidkit_protocols returning something else than specs
        (
            "from sidkit.plugin import hookimpl\n"
            "@hookimpl\ndef sidkit_protocols(): return ['quic']\n"
            "@hookimpl\ndef sidkit_extract(payload): return None\n",
            "ProtocolSpec",
        ),
        # no sidkit_extract
        (
            "from sidkit.plugin import hookimpl, ProtocolSpec\n"
            "@hookimpl\ndef sidkit_protocols(): return [ProtocolSpec(name='x', summary='')]\n",
            "sidkit_extract",
        ),
        # a protocol name a built-in already provides
        (GOOD.format(name="quic", prefix="q"), "already provided by plugin quic"),
    ],
)
def test_explicitly_registered_broken_plugin_raises(source: str, message: str) -> None:
    host = PluginHost(entry_points=True)
    before = dict(host.protocols)
    with pytest.raises(PluginError, match=message):
        host.register(_plugin("broken", source))
    assert dict(host.protocols) == before  # nothing half-registered
    assert not any(p.__name__ == "broken" for p in host.manager.get_plugins())


def test_register_is_idempotent_and_extractor_accepts_modules() -> None:
    module = _plugin("mine", GOOD.format(name="mine", prefix="m"))
    host = PluginHost(entry_points=False)
    specs = host.register(module)
    assert [s.name for s in specs] == ["mine"]
    assert host.register(module) == specs
    extractor = Extractor([module, "mine"][:1], host=host)
    assert extractor.extract(b"mABC") == SessionId("mine", b"AB")
    assert extractor.extract(b"xABC") is None
    # A module passed to an Extractor without a host joins the installed plugins.
    mixed = Extractor([module, "wireguard"])
    assert mixed.protocols == ("mine", "wireguard")


def _install_entry_points(root: Path, modules: Mapping[str, str]) -> None:
    """A dist-info with one sidkit entry point per module, and the modules, under *root*."""
    dist = root / "sidkit_test_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sidkit-test-plugins\nVersion: 1.0\n"
    )
    lines = "".join(f"{name} = {name}_mod\n" for name in modules)
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    for name, source in modules.items():
        (root / f"{name}_mod.py").write_text(textwrap.dedent(source))


def test_broken_entry_point_plugins_warn_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_entry_points(
        tmp_path,
        {
            "good": GOOD.format(name="good", prefix="g"),
            "crash": "raise ImportError('missing dependency of crash')\n",
            "typo": GOOD.format(name="typo", prefix="t")
            + "\n@hookimpl\ndef sidkit_extrakt(payload):\n    return None\n",
            "dupe": GOOD.format(name="wireguard", prefix="w"),
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginLoadWarning) as caught:
        host = PluginHost(entry_points=True)
    messages = [str(w.message) for w in caught]
    assert any("crash" in m and "missing dependency of crash" in m for m in messages)
    assert any("typo" in m and "sidkit_extrakt" in m for m in messages)
    assert any("dupe" in m and "already provided" in m for m in messages)
    assert len(messages) == 3
    assert "good" in host.protocols and "typo" not in host.protocols
    assert set(host.protocols) >= BUILTINS
    assert Extractor(["good", "wireguard"], host=host).extract(b"gXYZ") == SessionId("good", b"XY")
    for module in ("good_mod", "crash_mod", "typo_mod", "dupe_mod"):
        sys.modules.pop(module, None)


def test_resolve_options() -> None:
    spec = ProtocolSpec(
        name="opts",
        summary="",
        options=[
            Option("size", int, 4, "a size", required=False),
            Option("flag", bool, False, "a flag"),
            Option("needed", (int, type(None)), None, "needed", required=True),
        ],
    )
    resolved = resolve_options(spec, {"needed": None, "size": 9})
    assert dict(resolved) == {"size": 9, "flag": False, "needed": None}
    with pytest.raises(TypeError):
        resolved["size"] = 1  # type: ignore[index]
    with pytest.raises(sidkit.InputValueError, match="needs option 'needed'"):
        resolve_options(spec, {})
    with pytest.raises(sidkit.InputValueError, match="has no option 'other'"):
        resolve_options(spec, {"needed": 1, "other": 1})
    with pytest.raises(sidkit.InputTypeError):
        resolve_options(spec, {"needed": 1, "size": True})
    with pytest.raises(sidkit.InputTypeError):
        resolve_options(spec, {"needed": 1, "flag": 1})
    with pytest.raises(sidkit.InputTypeError):
        resolve_options(spec, [("needed", 1)])  # type: ignore[arg-type]


def test_spec_validation() -> None:
    with pytest.raises(sidkit.InputValueError):
        ProtocolSpec(name="Bad Name", summary="")
    with pytest.raises(sidkit.InputValueError):
        ProtocolSpec(name="ok", summary="", first_bytes=[256])
    with pytest.raises(sidkit.InputValueError):
        ProtocolSpec(name="ok", summary="", ports=[0])
    with pytest.raises(sidkit.InputValueError):
        ProtocolSpec(
            name="ok", summary="", options=[Option("a", int, 0, ""), Option("a", int, 0, "")]
        )
    assert ProtocolSpec(name="ok", summary="").first_bytes == frozenset(range(256))


def test_pluggy_markers_are_the_projects() -> None:
    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert hookimpl.project_name == "sidkit"
