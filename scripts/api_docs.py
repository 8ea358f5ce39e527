"""Builds the HTML API reference of the installed ``daily`` package with pdoc (PyPI).

    python -W error scripts/api_docs.py build/api

Modules: ``daily`` and every public submodule (found by walking the package, so new ones such
as ``daily.aio`` are included), except ``daily.daily``: that native module's classes are the
ones ``daily`` re-exports, documented once, under ``daily``.

Docstrings are the runtime ones, the text ``help()`` shows (Rust ``///`` comments for the
native classes), so the reference and ``help()`` cannot disagree. Types come from the checked
stub ``daily/daily.pyi``: pdoc applies a stub only to the module it is named after
(``daily.daily``), so its signatures and property types are copied here onto the same classes
under ``daily``. pdoc's own step would also replace the runtime docstrings by the stub's, which
are shorter; this copy does not.

Any warning fails the build (``-W error``, and ``warnings.simplefilter("error")`` below for
callers that forget it).
"""

from __future__ import annotations

import argparse
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path

warnings.simplefilter("error")

import pdoc.doc  # noqa: E402
import pdoc.render  # noqa: E402

import daily  # noqa: E402


def module_names() -> list[str]:
    subs = sorted(
        f"daily.{m.name}"
        for m in pkgutil.iter_modules(daily.__path__)
        if not m.name.startswith("_") and m.name != "daily"
    )
    return ["daily", *subs]


def copy_types(target: pdoc.doc.Namespace, typed: pdoc.doc.Namespace) -> int:
    """Copies signatures and annotations of `typed` (stub-patched) members onto `target`'s
    members of the same name; returns how many were copied."""
    n = 0
    for name, member in target.members.items():
        src = typed.members.get(name)
        if src is None:
            continue
        if isinstance(member, pdoc.doc.Function) and isinstance(src, pdoc.doc.Function):
            member.signature = src.signature
            n += 1
        elif isinstance(member, pdoc.doc.Variable) and isinstance(src, pdoc.doc.Variable):
            member.annotation = src.annotation
            n += 1
        elif isinstance(member, pdoc.doc.Class) and isinstance(src, pdoc.doc.Class):
            n += copy_types(member, src) + add_constructor(member, src)
    return n


def add_constructor(cls: pdoc.doc.Class, typed: pdoc.doc.Class) -> int:
    """Shows the stub's `__new__` as the constructor. pdoc shows a class's constructor from its
    `__init__` (or a `__new__` with a docstring of its own); a PyO3 class has neither: its
    constructor is documented in the class docstring, and its signature is in the stub."""
    new = typed.members.get("__new__")
    init = cls.members.get("__init__")
    if (init is not None and init.obj is not object.__init__) or not isinstance(new, pdoc.doc.Function):
        return 0
    if "__new__" not in vars(typed.obj):
        return 0  # inherited: not constructible (AudioData, the devices, ...)
    origin = (cls.taken_from[0], f"{cls.taken_from[1]}.__init__")
    init = pdoc.doc.Function(cls.modulename, f"{cls.qualname}.__init__", new.obj, origin)
    init.signature = new.signature.replace(return_annotation=inspect.Signature.empty)
    init.docstring = ""
    cls.members = {"__init__": init, **{k: v for k, v in cls.members.items() if k != "__init__"}}
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, nargs="?", default=Path("build/api"), help="output directory (default build/api)")
    args = ap.parse_args()

    pdoc.render.configure(docformat="restructuredtext", show_source=False, footer_text="open-daily")
    modules = {name: pdoc.doc.Module.from_name(name) for name in module_names()}
    typed = pdoc.doc.Module.from_name("daily.daily")  # carries daily.pyi's types
    copied = copy_types(modules["daily"], typed)
    if copied < 50:
        # Guards against a pdoc whose model changed under us: the reference would lose its types.
        raise SystemExit(f"api_docs: only {copied} signatures taken from daily.pyi; expected the whole API")

    args.out.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        page = args.out / f"{name.replace('.', '/')}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(pdoc.render.html_module(module, modules), encoding="utf-8")
    (args.out / "index.html").write_text(pdoc.render.html_index(modules), encoding="utf-8")
    (args.out / "search.js").write_text(pdoc.render.search_index(modules), encoding="utf-8")
    print(f"api_docs: {len(modules)} modules ({', '.join(modules)}), {copied} typed signatures, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
