"""Every public name of the package is documented for ``help()`` (issue 18): a docstring, a
signature ``inspect`` can read, the units of sizes and rates, and a ``pydoc`` page that shows
them.

The public names are found, not listed: every module of the ``daily`` package whose name has no
leading underscore (``daily``, ``daily.daily``, ``daily.server``, ``daily.types``, and whatever
is added later, such as ``daily.aio``), its ``__all__`` (or, without one, what it defines), and
every public member of each class. Adding an undocumented public class, method, property or
function makes this file fail; so does a method taking a rate, a duration or a size whose
docstring does not name the unit (``UNITS`` below).

Documented exceptions: properties have no signature (``help()`` shows them as data
descriptors), classes that Python code cannot construct (PyO3 classes without a constructor,
made by ``Daily.create_*`` or handed to callbacks) must say "not constructible" instead, and
TypedDicts (``daily.types``) only describe dicts. Module-level aliases (``ParticipantLeftReason``)
cannot carry a runtime docstring; theirs is the string after the assignment, which pdoc reads.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pathlib
import pkgutil
import pydoc
import re
import typing
import types
from dataclasses import dataclass

import pytest

import daily
import daily.daily

# Parameter or property names (regex, matched on the whole name) -> words of which at least
# one must be in the docstring of the method (or, for a constructor, the class), as regexes.
UNITS: list[tuple[str, tuple[str, ...]]] = [
    (r"sample_rate", (r"\bHz\b",)),
    (r".*_ms", (r"\bms\b", r"millisecond")),
    (r".*_us", (r"microsecond", r"\bµs\b")),
    (r"width|height", (r"pixel",)),
    (r"channels|num_channels", (r"channel",)),
    (r"frames", (r"16-bit",)),  # audio: 16-bit PCM
    (r"frame", (r"\bbytes\b",)),  # video: a buffer whose size is counted in bytes
    (r"num_frames|num_audio_frames", (r"frames",)),
    (r".*_timeout|resume_grace|.*_duration", (r"second",)),
    (r".*_rate", (r"per second|\bHz\b|/s\b",)),
]

# Python properties, PyO3 getters (getset descriptors) and __slots__ members.
PROPERTY_TYPES = (property, functools.cached_property, types.GetSetDescriptorType, types.MemberDescriptorType)


@dataclass
class Item:
    """One public thing to check: `kind` is module, class, function, method, property or data."""

    name: str
    obj: object
    kind: str
    owner: object = None  # the class of a method / property, the module of data


def public_modules() -> list:
    names = ["daily"] + sorted(
        f"daily.{m.name}" for m in pkgutil.iter_modules(daily.__path__) if not m.name.startswith("_")
    )
    return [importlib.import_module(n) for n in names]


def public_names(mod) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if getattr(v, "__module__", None) == mod.__name__]
    return [n for n in names if not n.startswith("_")]


def signature_params(obj) -> list[str]:
    sig = inspect.signature(obj)
    return [p for p in sig.parameters if p != "self"]


def class_items(cls, qual: str) -> list[Item]:
    out = []
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        q = f"{qual}.{name}"
        if isinstance(raw, (staticmethod, classmethod)) or inspect.isroutine(raw):
            out.append(Item(q, getattr(cls, name), "method", cls))
        elif isinstance(raw, PROPERTY_TYPES):
            out.append(Item(q, raw, "property", cls))
        else:
            out.append(Item(q, raw, "data", cls))  # class constants, enum values
    return out


def collect() -> list[Item]:
    items: list[Item] = []
    seen: set[int] = set()
    for mod in public_modules():
        items.append(Item(mod.__name__, mod, "module"))
        for name in public_names(mod):
            obj = getattr(mod, name)
            if id(obj) in seen:
                continue  # re-exported (daily.daily's classes are daily's)
            seen.add(id(obj))
            q = f"{mod.__name__}.{name}"
            if inspect.isclass(obj):
                items.append(Item(q, obj, "class", mod))
                items.extend(class_items(obj, q))
            elif inspect.isroutine(obj):
                items.append(Item(q, obj, "function", mod))
            else:
                items.append(Item(q, obj, "data", mod))
    return items


# CPython's Py_TPFLAGS_DISALLOW_INSTANTIATION: set on PyO3 classes without a `#[new]`.
DISALLOW_INSTANTIATION = 1 << 7


def constructible(cls) -> bool:
    """Python code can call it (`cls()` does not fail with "cannot create ... instances")."""
    return not cls.__flags__ & DISALLOW_INSTANTIATION


def variable_docstring(mod, name: str) -> str:
    """The docstring pdoc finds for a module-level variable (the string after it)."""
    pdoc_doc = pytest.importorskip("pdoc.doc")
    member = pdoc_doc.Module(mod).get(name)
    return member.docstring if member is not None else ""


def unit_problems(names: list[str], doc: str, what: str) -> list[str]:
    problems = []
    for n in names:
        for pattern, words in UNITS:
            if re.fullmatch(pattern, n):
                if not any(re.search(w, doc, re.IGNORECASE) for w in words):
                    problems.append(f"{what}: the docstring does not give the unit of {n!r} (one of {words})")
                break
    return problems


def problems(item: Item) -> list[str]:
    """What `help(item.obj)` would be missing; empty when it is documented."""
    out: list[str] = []
    obj = item.obj
    if item.kind == "data":
        if inspect.ismodule(item.owner):
            doc = variable_docstring(item.owner, item.name.rsplit(".", 1)[1])
            if not doc.strip():
                out.append(f"{item.name}: no docstring (a string literal after the assignment)")
        else:
            # Enum values and constants are listed in their class's docstring.
            short = item.name.rsplit(".", 1)[1]
            if not re.search(rf"\b{re.escape(short)}\b", item.owner.__doc__ or ""):
                out.append(f"{item.name}: not named in the docstring of its class")
        return out
    doc = obj.__doc__ or ""
    if item.kind == "class" and typing.is_typeddict(obj):
        doc = obj.__doc__ if "__doc__" in vars(obj) else ""
    if not doc.strip():
        out.append(f"{item.name}: no docstring")
    if item.kind == "module" or item.kind == "property":
        if item.kind == "property":
            out += unit_problems([item.name.rsplit(".", 1)[1]], doc, item.name)
        return out
    if item.kind == "class":
        if typing.is_typeddict(obj):
            return out
        if constructible(obj):
            try:
                params = signature_params(obj)
            except (TypeError, ValueError) as e:
                return out + [f"{item.name}: constructor has no signature for help() ({e})"]
            init_doc = getattr(obj.__init__, "__doc__", "") if "__init__" in vars(obj) else ""
            out += unit_problems(params, doc + (init_doc or ""), item.name)
        elif not re.search(r"not\s+constructible", doc, re.IGNORECASE):
            out.append(f"{item.name}: no constructor, and the docstring does not say \"not constructible\"")
        return out
    try:
        params = signature_params(obj)
    except (TypeError, ValueError) as e:
        return out + [f"{item.name}: no signature for help() ({e})"]
    out += unit_problems(params, doc, item.name)
    return out


ITEMS = collect()


def test_the_walk_finds_the_api():
    """The walk reaches every module and the members the rest of this file checks."""
    names = {i.name for i in ITEMS}
    for expected in [
        "daily",
        "daily.daily",
        "daily.server",
        "daily.CallClient",
        "daily.CallClient.join",
        "daily.CallClient.set_audio_renderer",
        "daily.CustomAudioSource.write_frames",
        "daily.CustomAudioSource.sample_rate",
        "daily.Daily.init",
        "daily.EventHandler.on_participant_joined",
        "daily.LogLevel.Off",
        "daily.server.RoomServer.room_url",
        "daily.types.Participant",
        "daily.types.ParticipantLeftReason",
    ]:
        assert expected in names, f"{expected} not found by the walk"
    assert "daily.daily._RoomServer" not in names
    kinds = {i.name: i.kind for i in ITEMS}
    assert kinds["daily.CustomAudioSource.sample_rate"] == "property"
    assert kinds["daily.Daily.init"] == "method"


@pytest.mark.parametrize("item", ITEMS, ids=[i.name for i in ITEMS])
def test_documented(item):
    assert problems(item) == []


def test_checker_catches_omissions():
    """`problems` fails an undocumented method, a missing unit and a class without a word on
    how to get one, so the parametrised test above can fail."""

    class Bare:
        def method(self, sample_rate, callback_interval_ms):
            """Takes a rate."""

        def undocumented(self):
            pass

    found = [p for i in class_items(Bare, "Bare") for p in problems(i)]
    assert any("'sample_rate'" in p for p in found), found
    assert any("'callback_interval_ms'" in p for p in found), found
    assert "Bare.undocumented: no docstring" in found
    assert problems(Item("Bare", Bare, "class")) == ["Bare: no docstring"]


@pytest.mark.parametrize(
    "cls",
    [i.obj for i in ITEMS if i.kind == "class" and not typing.is_typeddict(i.obj) and not constructible(i.obj)],
    ids=lambda c: c.__name__,
)
def test_not_constructible_is_true(cls):
    """A class documented as not constructible refuses construction with a TypeError."""
    with pytest.raises(TypeError):
        cls()


@pytest.mark.parametrize("item", [i for i in ITEMS if i.kind in ("module", "class")], ids=lambda i: i.name)
def test_pydoc_renders(item):
    """`help()`'s text shows the docstring, and for a class every public method with its
    parameters and every property's docstring."""
    text = pydoc.render_doc(item.obj, renderer=pydoc.plaintext)
    first = (item.obj.__doc__ or "").strip().splitlines()
    if first:
        assert first[0].strip() in text
    if item.kind == "class":
        for m in (i for i in ITEMS if i.owner is item.obj and i.kind in ("method", "property")):
            short = m.name.rsplit(".", 1)[1]
            if m.kind == "method":
                params = signature_params(m.obj)
                line = next((ln for ln in text.splitlines() if re.match(rf"\s*\|?\s*(async )?{short}\(", ln)), None)
                assert line is not None, f"{m.name} has no signature line in help()"
                for p in params:
                    assert p in line, f"{m.name}: {p} missing from {line!r}"
            else:
                assert (m.obj.__doc__ or "").strip().splitlines()[0] in text


def stub_docstrings() -> list[tuple[str, str]]:
    """(qualified name, docstring) of every class and function of daily.pyi with a docstring."""
    path = pathlib.Path(daily.daily.__file__).with_name("daily.pyi")
    if not path.exists():  # an installed package always has it; a bare build may not
        return []

    def walk(node, prefix):
        for n in node.body:
            if isinstance(n, (ast.ClassDef, ast.FunctionDef)):
                if (d := ast.get_docstring(n)) is not None:
                    yield prefix + n.name, d
                if isinstance(n, ast.ClassDef):
                    yield from walk(n, f"{prefix}{n.name}.")

    return list(walk(ast.parse(path.read_text()), ""))


@pytest.mark.parametrize("name,stub_doc", stub_docstrings(), ids=lambda x: x if "\n" not in x else "")
def test_stub_docstring_within_runtime(name, stub_doc):
    """An editor shows daily.pyi's docstrings, help() and the reference the runtime ones: every
    exception a stub docstring names is named at runtime too, so help() is never the poorer."""
    obj = daily.daily
    for part in name.split("."):
        obj = getattr(obj, part)
    missing = set(re.findall(r"\b\w+Error\b", stub_doc)) - set(re.findall(r"\b\w+Error\b", obj.__doc__ or ""))
    assert not missing, f"{name}: the stub's docstring names {sorted(missing)}, help() does not"
