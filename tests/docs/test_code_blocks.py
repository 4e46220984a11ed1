"""Every code block of ``README.rst`` and ``docs/*.rst`` runs as written.

Each block declares its language (``.. code-block:: LANG``; a bare ``::`` literal block is refused,
so nothing escapes the check):

* ``python``: the blocks of a page run in order in one namespace, as a reader would type them
  into ``python -m asyncio`` (top-level ``await`` allowed), in a scratch directory. The page may
  lean on what its prose says exists: :data:`PAGE_CONTEXT` lists those names per page (``app``
  and ``payments`` are a host app with the router mounted at ``/billing``, on the fake provider).
* ``pycon``: a doctest; the outputs shown must be what the code prints.
* ``json``: parses.
* ``console`` (commands after ``$``) and ``bash``: each ``fastapi-cashier`` command line parses
  with the real CLI, each ``PAYMENTS_*`` variable names a real setting, each ``pip install``
  names real extras, and every other program is one the docs are known to use.
* ``text``: diagrams; the error tree must name the classes of ``fastapi_cashier.errors``.

The README's host app is also driven over HTTP (``test_the_readme_app_takes_a_payment``).
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import json
import os
import re
import shlex
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.orm import DeclarativeBase

import fastapi_cashier
from fastapi_cashier import PaymentsRouter, PaymentsSettings, errors
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
JWT_SECRET = "docs-jwt-secret-that-is-long-enough-for-hs256"
LANGUAGES = {"python", "pycon", "json", "console", "bash", "text"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.language})"


_DIRECTIVE = re.compile(r"^(\s*)\.\. (code-block|sourcecode|code)::\s*(\S*)\s*$")
_LITERAL = re.compile(r"(^|[^:])::\s*$")


def _indented_body(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """The block of lines after ``start`` indented deeper than ``indent`` (options skipped)."""
    body: list[str] = []
    index = start + 1
    while index < len(lines):
        line = lines[index]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
        index += 1
    while body and re.match(r"^\s*:[\w-]+:", body[0]):
        body.pop(0)
    text = inspect.cleandoc("\n".join(body)) if any(line.strip() for line in body) else ""
    return text, index


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        stripped = line.strip()
        if directive:
            indent = len(directive.group(1))
            text, end = _indented_body(lines, index, indent)
            found.append(Block(page, index + 1, directive.group(3) or "?", text))
            index = end
            continue
        if _LITERAL.search(line) and not stripped.startswith(".. "):
            indent = len(line) - len(line.lstrip())
            text, end = _indented_body(lines, index, indent)
            found.append(Block(page, index + 1, "literal", text))
            index = end
            continue
        index += 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def test_the_pages_have_code_blocks() -> None:
    assert len(ALL_BLOCKS) > 50
    assert {block.page.name for block in ALL_BLOCKS} >= {"README.rst", "quickstart.rst", "testing.rst"}


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=str)
def test_every_block_declares_a_checked_language(block: Block) -> None:
    assert block.language in LANGUAGES, f"{block}: use .. code-block:: with one of {sorted(LANGUAGES)}"
    assert block.text, f"{block} is empty"


# ------------------------------------------------------------------------------- python


class _Recorder:
    """Stands for Alembic's ``context`` in the fragments of a project's ``env.py``."""

    def __init__(self) -> None:
        self.configured: dict[str, Any] = {}

    def configure(self, **options: Any) -> None:
        self.configured.update(options)


def _host_context(payments: PaymentsRouter) -> dict[str, Any]:
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    return {"app": app, "payments": payments, "settings": payments.settings}


def _stripe_transport() -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"object": "list", "data": [], "has_more": False, "url": request.url.path}
        )

    return httpx.MockTransport(answer)


def _stripe_context(payments: PaymentsRouter) -> dict[str, Any]:
    from fastapi_cashier.providers.stripe import StripeProvider

    transport = _stripe_transport()
    stripe = StripeProvider(
        api_key="sk_test_docs",
        webhook_secrets=["whsec_docs"],
        base_addresses={"api": "http://stripe.test"},
        http_client=httpx.AsyncClient(transport=transport),
    )
    with_stripe = PaymentsRouter(payments.settings, providers=[stripe])
    return {**_host_context(with_stripe), "my_transport": transport}


class _Base(DeclarativeBase):
    pass


class _Order(_Base):
    __tablename__ = "shop_orders"
    id = sa.Column(sa.Integer, primary_key=True)


def _migrations_context(_payments: PaymentsRouter) -> dict[str, Any]:
    # ``from myapp.models import Base`` in a host's env.py: a host package with one model.
    myapp = types.ModuleType("myapp")
    models = types.ModuleType("myapp.models")
    models.Base = _Base  # type: ignore[attr-defined]
    myapp.models = models  # type: ignore[attr-defined]
    sys.modules.update({"myapp": myapp, "myapp.models": models})
    return {"context": _Recorder(), "connection": object(), "target_metadata": _Base.metadata}


#: What each page's prose says exists before its first block: builders of names, by page.
PAGE_CONTEXT: dict[str, Callable[[PaymentsRouter], dict[str, Any]]] = {
    "entitlements.rst": _host_context,
    "migrations.rst": _migrations_context,
    "operations.rst": _host_context,
    "providers.rst": _host_context,
    "quickstart.rst": _host_context,
    "settings.rst": _host_context,
    "stripe.rst": _stripe_context,
    "subscriptions.rst": _host_context,
    "testing.rst": _host_context,
    "webhooks.rst": _host_context,
}


@pytest.fixture
def docs_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """What the pages assume: the ``PAYMENTS_*`` variables of the quickstart, a scratch directory."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("PAYMENTS_FAKE__WEBHOOK_SECRET", "whsec_docs")
    monkeypatch.setenv("PAYMENTS_DEFAULT_PROVIDER", "fake")
    monkeypatch.setenv("PAYMENTS_ENVIRONMENT", "test")
    monkeypatch.setenv("PAYMENTS_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    # The host package the migrations page imports exists only for that page.
    for name in ("myapp.models", "myapp"):
        sys.modules.pop(name, None)


def run_python_blocks(blocks: list[Block], namespace: dict[str, Any]) -> None:
    """Run ``blocks`` in order in ``namespace``; a block with ``await`` runs on one event loop."""
    with asyncio.Runner() as runner, warnings.catch_warnings():
        # Starlette's TestClient warns about its own httpx backend; that is not the docs' concern.
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
        for block in blocks:
            code = compile(
                block.text, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
            )
            try:
                if code.co_flags & inspect.CO_COROUTINE:
                    runner.run(types.FunctionType(code, namespace)())
                else:
                    exec(code, namespace)  # noqa: S102 -- the documentation's own code
            except Exception as exc:
                raise AssertionError(f"{block} failed: {exc!r}") from exc
        payments = namespace.get("payments")
        if isinstance(payments, PaymentsRouter):
            runner.run(payments.shutdown())


PYTHON_PAGES = sorted({block.page for block in ALL_BLOCKS if block.language == "python"})


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda page: page.name)
def test_the_python_blocks_of_a_page_run(page: Path, docs_environment: Path) -> None:
    blocks = [block for block in ALL_BLOCKS if block.page == page and block.language == "python"]
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    build = PAGE_CONTEXT.get(page.name)
    if build is not None:
        namespace.update(build(PaymentsRouter(PaymentsSettings())))
    run_python_blocks(blocks, namespace)
    assert any(not name.startswith("__") for name in namespace), "the blocks defined nothing"
    # A page that shows tests (``def test_...():``) shows tests that pass.
    shown = [
        value for name, value in namespace.items() if name.startswith("test_") and inspect.isfunction(value)
    ]
    assert len(shown) == sum(block.text.count("def test_") for block in blocks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
        for test in shown:
            test()
    check = PAGE_CHECKS.get(page.name)
    if check is not None:
        check(namespace)


def _check_errors_page(namespace: dict[str, Any]) -> None:
    assert namespace["field"] == "amount"


def _check_migrations_page(namespace: dict[str, Any]) -> None:
    include_name = namespace["include_name"]
    assert include_name("cashier_payments", "table", {}) is False
    assert include_name("cashier_alembic_version", "table", {}) is False
    assert include_name("shop_orders", "table", {}) is True
    assert namespace["context"].configured["include_name"] is include_name
    assert fastapi_cashier.metadata in namespace["target_metadata"]


def _check_entitlements_page(namespace: dict[str, Any]) -> None:
    paths = namespace["app"].openapi()["paths"]
    assert {"/api/data", "/reports", "/images", "/refunded-total"} <= set(paths)


#: What a page's blocks must have left behind, beyond running.
PAGE_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "entitlements.rst": _check_entitlements_page,
    "errors.rst": _check_errors_page,
    "migrations.rst": _check_migrations_page,
}


def _starlette_client(app: FastAPI) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


def test_the_readme_app_takes_a_payment(docs_environment: Path) -> None:
    """The README's host app, as written, answers its routes and takes a payment with the fake."""
    readme = [block for block in ALL_BLOCKS if block.page.name == "README.rst" and block.language == "python"]
    namespace: dict[str, Any] = {"__name__": "readme_app"}
    for block in readme:
        exec(compile(block.text, str(block), "exec", dont_inherit=True), namespace)  # noqa: S102
    app, payments = namespace["app"], namespace["payments"]
    token = create_token(payments.settings.auth, "alice", email="alice@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    with _starlette_client(app) as client:
        assert client.get("/hello", headers=headers).json() == {"message": "Hello, alice@example.com!"}
        paying = client.post("/orders/order-77/pay", headers=headers)
        assert paying.status_code == 200, paying.text
        checkout_url = paying.json()["checkout_url"]
        assert checkout_url.startswith("http://testserver/billing/fake/checkout/")
        paid = client.post(
            checkout_url.removeprefix("http://testserver"),
            data={"outcome": "succeeded"},
            follow_redirects=False,
        )
        assert paid.status_code == 303
        assert paid.headers["location"] == "http://testserver/orders/order-77/thanks"
        [payment] = client.get("/billing/payments", params={"reference": "order-77"}, headers=headers).json()[
            "items"
        ]
        assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 2500, "EUR")
        # install_problem_handlers: the guarded host route answers a problem document.
        refused = client.get("/api/data", headers=headers)
        assert refused.status_code == 402
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "subscription_required"
        assert client.get("/hello").json()["code"] == "authentication_required"


# ------------------------------------------------------------------------------- pycon, json, text


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language == "pycon"], ids=str)
def test_a_pycon_block_prints_what_it_shows(block: Block) -> None:
    test = doctest.DocTestParser().get_doctest(block.text, {}, str(block), str(block.page), block.line)
    assert test.examples, f"{block} has no >>> examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language == "json"], ids=str)
def test_a_json_block_parses(block: Block) -> None:
    assert isinstance(json.loads(block.text), dict | list)


def test_the_error_tree_names_the_library_errors() -> None:
    [tree] = [b for b in ALL_BLOCKS if b.page.name == "errors.rst" and b.language == "text"]
    named = set(re.findall(r"\b([A-Z]\w+(?:Error|Exception))\b", tree.text))
    real = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    assert named, tree
    assert named <= real, f"the tree names errors that do not exist: {sorted(named - real)}"


# ------------------------------------------------------------------------------- shell

#: Programs the pages run besides ``fastapi-cashier`` and ``pip``; their own docs cover them.
OTHER_PROGRAMS = {
    "apt-get",
    "cd",
    "curl",
    "mypy",
    "nox",
    "pytest",
    "python",
    "python3",
    "ruff",
    "sphinx-build",
    "uvicorn",
}


def shell_commands(block: Block) -> Iterator[list[str]]:
    """The commands of a shell block (in a console block: those after ``$``, output skipped).

    A command runs on over its backslash continuations and its open quotes.
    """
    pending = ""
    for raw in block.text.splitlines():
        if not pending:
            if block.language == "console":
                if not raw.startswith("$ "):
                    continue
                raw = raw[2:]
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
        pending = f"{pending}\n{raw}" if pending else raw
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:
            continue  # an open quote: the command goes on on the next line
        yield from _commands(pending)
        pending = ""
    assert not pending, f"{block}: unterminated command {pending!r}"


_SUBSTITUTION = re.compile(r"\$\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


def _commands(line: str) -> Iterator[list[str]]:
    # Command substitutions are commands of their own.
    for inner in _SUBSTITUTION.findall(line):
        yield from _split(inner)
    yield from _split(_SUBSTITUTION.sub("SUBSTITUTED", line))


def _split(line: str) -> Iterator[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token and set(token) <= set(";&|"):
            yield from _command(words)
            words = []
        else:
            words.append(token)


def _command(words: list[str]) -> Iterator[list[str]]:
    if words:
        yield words


def _setting_exists(name: str) -> bool:
    path = name.removeprefix("PAYMENTS_").lower().split("__")
    model: type[BaseModel] = PaymentsSettings
    for depth, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if depth < len(path) - 1:
            nested = [arg for arg in _type_args(field.annotation) if isinstance(arg, type)]
            models = [arg for arg in nested if issubclass(arg, BaseModel)]
            if not models:
                return False
            model = models[0]
    return True


def _type_args(annotation: Any) -> list[Any]:
    args = list(getattr(annotation, "__args__", ()) or ())
    return [annotation, *args, *(inner for arg in args for inner in _type_args(arg))]


def _check_variable(assignment: str) -> None:
    name = assignment.split("=", 1)[0]
    if name.startswith("PAYMENTS_"):
        assert _setting_exists(name), f"{name} is not a setting of PaymentsSettings"
    if name.startswith("CASHIER_TEST_"):
        assert (
            name
            in (ROOT / "tests" / "databases.py").read_text() + (ROOT / "tests" / "conftest.py").read_text()
        )


def _check_cli(words: list[str]) -> None:
    """Walk the command groups, then let the command parse its options and arguments."""
    command: click.Command = cli
    parent = click.Context(cli, info_name="fastapi-cashier")
    rest = list(words[1:])
    while isinstance(command, click.Group):
        assert rest, f"{' '.join(words)}: no command given"
        assert not rest[0].startswith("-"), f"{' '.join(words)}: an option before the command"
        sub = command.get_command(parent, rest[0])
        assert sub is not None, f"no command {rest[0]!r} in {' '.join(words)}"
        parent = click.Context(sub, info_name=rest[0], parent=parent)
        command, rest = sub, rest[1:]
    leaf = command.make_context(parent.info_name or "", rest, parent=parent.parent)
    assert not leaf.args, f"unexpected arguments {leaf.args} in {' '.join(words)}"


def _check_pip(words: list[str]) -> None:
    extras_declared = set(re.findall(r"^(\w+) = \[", (ROOT / "pyproject.toml").read_text(), re.M))
    for word in words[2:]:
        match = re.match(r"^(?:fastapi-cashier|\.|-e)?\[([\w,]+)\]$", word.removeprefix("-e").strip("'\""))
        if match or "[" in word:
            extras = re.search(r"\[([\w,]+)\]", word)
            assert extras, word
            unknown = set(extras.group(1).split(",")) - extras_declared
            assert not unknown, f"pip install names unknown extras {sorted(unknown)}"


def check_command(words: list[str]) -> None:
    words = list(words)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        _check_variable(words.pop(0))
    if not words:
        return
    program = words[0].rsplit("/", 1)[-1]
    if program == "export":
        for assignment in words[1:]:
            _check_variable(assignment)
    elif program == "fastapi-cashier":
        _check_cli(words)
    elif program == "pip" or words[:3] == ["python3", "-m", "pip"]:
        _check_pip(words if program == "pip" else words[2:])
    else:
        assert program in OTHER_PROGRAMS, f"{' '.join(words)}: unknown program {program!r}"


SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.language in ("console", "bash")]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=str)
def test_a_shell_block_uses_real_commands_settings_and_extras(block: Block) -> None:
    commands = list(shell_commands(block))
    assert commands, f"{block} has no command"
    for words in commands:
        try:
            check_command(words)
        except click.ClickException as exc:
            raise AssertionError(f"{block}: {' '.join(words)}: {exc.format_message()}") from exc


def test_the_shell_checks_catch_mistakes() -> None:
    with pytest.raises(AssertionError, match="not a setting"):
        _check_variable("PAYMENTS_STRIPE__APIKEY=sk_test")
    with pytest.raises(click.ClickException):
        _check_cli(["fastapi-cashier", "webhooks", "retry", "--no-such-option"])
    with pytest.raises(AssertionError, match="no command"):
        _check_cli(["fastapi-cashier", "webhooks", "purge"])
    with pytest.raises(AssertionError, match="unknown extras"):
        _check_pip(["pip", "install", "fastapi-cashier[braintree]"])
    assert _setting_exists("PAYMENTS_STRIPE__WEBHOOK_SECRETS")
    assert _setting_exists("PAYMENTS_DEFAULT_PROVIDER")
    assert fastapi_cashier.__version__
