"""The package's layers depend downwards only, as docs/architecture.rst draws them.

Every ``from fastapi_cashier... import`` (relative or absolute, at module level or inside a
function) is read from the source, and each top-level part may import only the parts listed for
it below. A new module in the wrong direction fails here with the file and the import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fastapi_cashier

PACKAGE = Path(fastapi_cashier.__file__).parent

LEAVES = frozenset({"__about__", "errors", "clock", "currencies", "statuses", "money"})

# What each top-level module or package may import, besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    **dict.fromkeys(LEAVES, LEAVES),
    "pricing": LEAVES,
    "settings": LEAVES | {"tax.rates"},
    "tax": LEAVES | {"settings"},
    "db": LEAVES | {"settings"},
    "providers": LEAVES | {"settings", "pricing", "tax"},
    "billing": LEAVES | {"settings", "pricing", "tax", "db", "providers"},
    "webhooks": LEAVES | {"settings", "db", "providers", "billing"},
    "api": LEAVES | {"settings", "pricing", "tax", "db", "providers", "billing", "webhooks"},
    "migrations": LEAVES | {"db", "settings"},
}
# The top of the tree: the public names, the command line and the demo shop use everything.
UNRESTRICTED = frozenset({"<root>", "cli", "demo"})


def _module_name(path: Path) -> tuple[str, str]:
    """The dotted module name of a source file, and the package its relative imports start from."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rsplit(".", 1)[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    _, package = _module_name(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
                if not node.module:  # ``from . import x``: the names are modules
                    found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
                    continue
            else:
                target = node.module or ""
            found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, target) for line, target in found if target.split(".")[0] == "fastapi_cashier"]


def _part(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _allowed(importer: str, target: str) -> bool:
    source, destination = _part(importer), _part(target)
    if source == destination or source in UNRESTRICTED:
        return True
    rules = ALLOWED[source]
    below = ".".join(target.split(".")[1:3])
    return destination in rules or below in rules


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(_module_name(path)[0]) for path in PACKAGE.rglob("*.py")}
    assert parts <= set(ALLOWED) | UNRESTRICTED, parts - set(ALLOWED) - UNRESTRICTED


def test_no_module_imports_a_layer_above_it() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, target in _imports(path)
        if not _allowed(_module_name(path)[0], target)
    ]
    assert wrong == []


def test_the_check_sees_a_wrong_import() -> None:
    # The rule above must be able to fail: an adapter reaching into the billing layer is refused.
    assert not _allowed("fastapi_cashier.providers.fake.state", "fastapi_cashier.billing.checkout")
    assert not _allowed("fastapi_cashier.db.models", "fastapi_cashier.providers.base")
    assert _allowed("fastapi_cashier.billing.checkout", "fastapi_cashier.pricing")
