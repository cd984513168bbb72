"""The house rules of docs/architecture.md, read from the code itself (no database).

* No import circle between or inside the apps: every import counts, function-level ones too.
* One writing app per table: no module writes another app's model through its manager
  (``Model.objects.create / update / bulk_create / … / delete``), nor with raw SQL naming
  another app's table. The owning app's services are the way in.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps

BASE_DIR = Path(__file__).resolve().parents[2]
OUTSIDE = {"tests", "bench", "scripts", "docs", "static", "templates", "var", "node_modules"}
WRITES = {"create", "bulk_create", "bulk_update", "update", "update_or_create", "get_or_create", "delete", "in_bulk_delete"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in BASE_DIR.rglob("*.py"):
        parts = path.relative_to(BASE_DIR).parts
        if parts[0] in OUTSIDE or parts[0].startswith(".") or "migrations" in parts or len(parts) == 1:
            continue
        name = ".".join(parts)[:-3]
        modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = project_modules()


def imported_modules(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not (MODULES[target].name == "__init__.py" and name.startswith(target + ".")):
                found.add(target)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for following in graph.get(node, ()):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_module_of_the_project_imports_itself_round_a_circle():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def owning_app(module: str) -> str | None:
    """The installed app a module belongs to. An app inside another app's package (``benchmark.public``,
    the shared tables of the benchmark) is part of that app; ``msp_billing`` is the platform package,
    not an app, so its apps (accounts, tenants) stay apart."""
    best = None
    for config in apps.get_app_configs():
        if (module == config.name or module.startswith(config.name + ".")) and (best is None or len(config.name) < len(best)):
            best = config.name
    return best


def model_owners() -> tuple[dict[str, str], dict[str, str]]:
    """{model class name: owning app} and {table name: owning app} for the project's own models."""
    by_name, by_table = {}, {}
    for model in apps.get_models():
        app = owning_app(model.__module__)
        if app and app.split(".")[0] in {module.split(".")[0] for module in MODULES}:
            by_name.setdefault(model.__name__, app)
            by_table[model._meta.db_table] = app
    return by_name, by_table


def foreign_writes(module: str, path: Path, by_name: dict[str, str], by_table: dict[str, str]) -> list[str]:
    app = owning_app(module)
    tree = ast.parse(path.read_text(), str(path))
    imported = {}  # name used here -> the model class name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("models"):
            for alias in node.names:
                imported[alias.asname or alias.name] = alias.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            chain = node.func.value
            while isinstance(chain, (ast.Call, ast.Attribute)):
                if isinstance(chain, ast.Attribute) and chain.attr == "objects" and isinstance(chain.value, ast.Name):
                    model = imported.get(chain.value.id)
                    owner = by_name.get(model or "")
                    if owner and owner != app:
                        found.append(f"{path.relative_to(BASE_DIR)}:{node.lineno} {node.func.attr} on {model} ({owner})")
                    break
                chain = chain.func if isinstance(chain, ast.Call) else chain.value
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table in re.findall(r"(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", node.value, flags=re.I):
                owner = by_table.get(table)
                if owner and owner != app:
                    found.append(f"{path.relative_to(BASE_DIR)}:{node.lineno} SQL write to {table} ({owner})")
    return found


def test_every_table_is_written_by_its_own_app_alone():
    by_name, by_table = model_owners()
    found = [write for name, path in MODULES.items() if owning_app(name)
             for write in foreign_writes(name, path, by_name, by_table)]
    assert found == []


def test_the_writer_check_sees_a_foreign_write(tmp_path):
    by_name, by_table = model_owners()
    path = BASE_DIR / "billing" / "_probe_for_test.py"
    path.write_text("from invoices.models import Invoice\n\ndef f():\n    Invoice.objects.filter(pk=1).update(number='x')\n"
                    "    return 'UPDATE invoices_invoice SET number = 1'\n")
    try:
        found = foreign_writes("billing._probe_for_test", path, by_name, by_table)
    finally:
        path.unlink()
    assert len(found) == 2 and all("invoices" in line for line in found)


pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")
