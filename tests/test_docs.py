"""The documentation is a map that stays true: every setting and route documented, the README short, no dead links.

Settings and routes are read from the source (service/settings.py, service/api/routes/) without importing
the service, so these tests stay fast and say what is undocumented even while the app cannot start; one test
checks that reading against the routes the real app serves.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
SETTINGS_FILE = REPO / "service" / "settings.py"
ROUTES_DIR = REPO / "service" / "api" / "routes"
MAX_README_LINES = 400
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# What FastAPI serves by itself (create_app keeps its defaults).
FASTAPI_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}
# The first command of the README: install and serve. Fixed; the second one is .ci/run's.
SERVE_COMMAND = (
    "apt-get update && apt-get install -y libreoffice-writer-nogui && pip install torch==2.13.0"
    " && pip install -e . && policyqa serve"
)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- settings -------------------------------------------------------------------------------------------------
def settings_fields() -> list[str]:
    """The fields of ``Settings``, read from its class body."""
    tree = ast.parse(_text(SETTINGS_FILE))
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"]
    return [
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id != "model_config"
    ]


def test_settings_are_found():
    assert len(settings_fields()) >= 30 and "data_dir" in settings_fields()


@pytest.mark.parametrize("name", settings_fields())
def test_every_setting_is_in_the_operations_table(name):
    variable = f"POLICYQA_{name.upper()}"
    row = re.compile(rf"^\|\s*`{variable}`\s*\|", re.MULTILINE)
    assert row.search(_text(DOCS / "operations.md")), f"{variable} has no row in docs/operations.md's settings table"


# -- routes ---------------------------------------------------------------------------------------------------
def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def module_routes(path: Path) -> set[tuple[str, str]]:
    """(method, path) of every ``@router.<method>(...)`` and ``@router.api_route(...)`` in a routes module,
    with the router's own prefix."""
    tree = ast.parse(_text(path))
    prefix = ""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "router" for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            prefix = _string(_keyword(node.value, "prefix")) or ""
    routes = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and isinstance(decorator.func.value, ast.Name)
                and decorator.func.value.id == "router"
            ):
                continue
            verb = decorator.func.attr
            route = _string(decorator.args[0] if decorator.args else _keyword(decorator, "path"))
            if verb in HTTP_METHODS:
                methods = [verb.upper()]
            elif verb == "api_route":
                listed = _keyword(decorator, "methods")
                methods = [_string(m) for m in listed.elts] if isinstance(listed, ast.List | ast.Tuple) else ["GET"]
            else:
                continue
            assert route is not None, f"{path.name}: {node.name}'s path is not a plain string"
            routes.update((method, prefix + route) for method in methods)
    return routes


def per_kb_mounts() -> tuple[set[str], list[str]]:
    """From routes/__init__.py: the modules mounted once per knowledge base (PER_KB), and the prefixes
    ``mounted(...)`` gives them."""
    tree = ast.parse(_text(ROUTES_DIR / "__init__.py"))
    modules: set[str] = set()
    prefixes: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PER_KB" for t in node.targets):
            modules = {e.id for e in node.value.elts if isinstance(e, ast.Name)}
        is_mount = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "mounted"
        if is_mount and len(node.args) >= 2 and (prefix := _string(node.args[1])) is not None:
            prefixes.append(prefix)
    return modules, prefixes


def static_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves, as the routes package declares them (and FastAPI's own)."""
    per_kb, prefixes = per_kb_mounts()
    assert per_kb and prefixes, "routes/__init__.py: PER_KB or its mounted(...) prefixes were not found"
    routes = set(FASTAPI_ROUTES)
    for path in sorted(ROUTES_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        found = module_routes(path)
        if path.stem in per_kb:
            found = {(method, prefix + route) for method, route in found for prefix in prefixes}
        routes |= found
    return routes


def _mentions(line: str, path: str) -> bool:
    """``path`` appears literally in ``line``, not as the start of a longer path."""
    return re.search(rf"(?<![\w/{{}}.-]){re.escape(path)}(?![\w/{{.-])", line) is not None


def test_routes_are_found():
    routes = static_routes()
    assert ("POST", "/api/ask") in routes and ("POST", "/api/kbs/{kb_id}/ask") in routes
    assert ("GET", "/metrics") in routes and ("POST", "/v1/chat/completions") in routes


@pytest.mark.parametrize("method,path", sorted(static_routes(), key=lambda r: (r[1], r[0])))
def test_every_route_is_in_the_api_reference(method, path):
    lines = _text(DOCS / "api.md").splitlines()
    mentioned = [line for line in lines if _mentions(line, path)]
    assert mentioned, f"{path} is not in docs/api.md"
    assert any(re.search(rf"\b{method}\b", line) for line in mentioned), (
        f"no line of docs/api.md gives {path} with its method {method}"
    )


def test_the_routes_read_from_the_source_are_the_apps(tmp_path):
    """Guards the reading above: the real app (made, not started: no index, no model) serves exactly those."""
    from service.api.app import create_app
    from service.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, build_on_start=False))
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI versions that include routers lazily

        served = list(iter_route_contexts(app.routes))
    except ImportError:
        served = list(app.routes)
    routes = {
        (method, route.path)
        for route in served
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    assert routes == static_routes()


# -- the README -----------------------------------------------------------------------------------------------
def test_the_readme_is_a_map_not_a_notebook():
    lines = len(_text(README).splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/"


def test_the_readme_keeps_the_two_commands():
    readme = _text(README)
    ci_command = [line for line in _text(REPO / ".ci" / "run").splitlines() if line.strip()][-1]
    assert f"```bash\n{SERVE_COMMAND}\n```" in readme
    assert f"```bash\n{ci_command}\n```" in readme, ".ci/run must run exactly the README's test command"


# -- links ----------------------------------------------------------------------------------------------------
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _without_fences(text: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", _without_fences(text))


def anchors(path: Path) -> set[str]:
    """The fragment ids a Markdown page offers: headings as GitHub slugs them, and explicit ids."""
    text = _text(path)
    seen: dict[str, int] = {}
    found = set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _without_fences(text), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links() -> list[tuple[str, str]]:
    links = []
    for page in PAGES:
        for target in LINK.findall(_prose(_text(page))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):  # http:, https:, mailto: ...
                continue
            links.append((str(page.relative_to(REPO)), target))
    return links


def test_links_are_found():
    assert any(target.startswith("docs/") for _, target in relative_links())


@pytest.mark.parametrize("page,target", relative_links())
def test_every_relative_link_leads_somewhere(page, target):
    source = REPO / page
    file_part, _, fragment = target.partition("#")
    destination = (source.parent / file_part).resolve() if file_part else source
    assert destination.exists(), f"{page}: {target} points to a file that does not exist"
    if fragment and destination.suffix == ".md":
        assert fragment in anchors(destination), f"{page}: {target}: no heading #{fragment} in {destination.name}"


# Paths the pages name that only exist once something ran (test screenshots, evaluation reports).
MADE_AT_RUN_TIME = ("tests/artifacts", "eval/reports")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:index|service|eval|tests|deploy|docs_raw|docs)/[\w./-]*)")


def named_paths() -> list[tuple[str, str]]:
    """Files and folders of the repository a page names (``index/answering/engine.py``, ``service/stores/``)."""
    named = []
    for page in PAGES:
        for path in sorted(set(REPO_PATH.findall(_text(page)))):
            path = path.rstrip(".,")
            if not path.startswith(MADE_AT_RUN_TIME):
                named.append((str(page.relative_to(REPO)), path))
    return named


@pytest.mark.parametrize("page,path", named_paths())
def test_every_module_a_page_names_exists(page, path):
    assert (REPO / path).exists(), f"{page} names {path}, which does not exist (renamed or moved?)"


def package_table_modules() -> list[tuple[str, str]]:
    """(package, module) for every ``name.py`` and ``name/`` that a row of architecture.md's package tables
    lists after its package (``| `index/stores/` | ... | `base.py` ..., `factory.py` ... |``)."""
    listed = []
    for line in _text(DOCS / "architecture.md").splitlines():
        row = re.match(r"^\|\s*`((?:index|service)/(?:[\w/]*/)?)`[^|]*\|(.*)$", line)
        if row:
            package, rest = row.groups()
            listed += [(package, name) for name in re.findall(r"`(\w+\.py|\w+/)`", rest)]
    return listed


def test_the_package_tables_are_found():
    assert ("index/stores/", "base.py") in package_table_modules()


@pytest.mark.parametrize("package,module", package_table_modules())
def test_every_module_of_the_package_tables_exists(package, module):
    assert (REPO / package / module).exists(), f"docs/architecture.md lists {package}{module}, which does not exist"


# -- the performance page -------------------------------------------------------------------------------------
def test_the_performance_table_is_rewritten_between_its_markers(tmp_path):
    from eval.performance_page import BEGIN, END, main

    page = tmp_path / "performance.md"
    original = _text(DOCS / "performance.md")
    assert original.count(BEGIN) == 1 and original.count(END) == 1
    page.write_text(original, encoding="utf-8")
    figures = {
        "chars": 150_000,
        "rows": {
            "baseline": {"ingest_s": 60.0, "embed_p50_ms": 20.0, "p50_c1_ms": 30.0, "rps_c1": 30.0, "rps_c8": 80.0,
                         "p99_c8_ms": 90.0, "errors": 0},
            "this tree": {"ingest_s": 30.0, "embed_p50_ms": 8.0, "p50_c1_ms": 12.5, "rps_c1": 75.0, "rps_c8": 150.0,
                          "p99_c8_ms": 40.0, "errors": 0},
        },
    }  # fmt: skip
    source = tmp_path / "speed.json"
    source.write_text(json.dumps(figures), encoding="utf-8")
    assert main(["--json", str(source), "--page", str(page), "--run", "a test run"]) == 0
    rewritten = _text(page)
    before, after = original.split(BEGIN)[0], original.split(END)[1]
    assert rewritten.startswith(before + BEGIN) and rewritten.endswith(END + after)
    block = rewritten.split(BEGIN)[1].split(END)[0]
    assert "| 5,000 |" in block and "| 12.5 |" in block and "| 150.0 |" in block and "Run: a test run" in block
