"""The shape of the package (issue 10): modules that can each be read on their own, and one
definition per setting that every surface derives from."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Float, Integer, String, Text

import flask_booklore_oidc
from flask_booklore_oidc.config import FIELDS, SECTIONS
from flask_booklore_oidc.forms import SettingsForm
from flask_booklore_oidc.models import SettingsRow
from flask_booklore_oidc.settings import Settings

PACKAGE = Path(flask_booklore_oidc.__file__).parent
MODULES = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported from within the package, names imported) for every relative import."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [alias.name for alias in node.names]
            if node.module:
                found.append((node.module.split(".")[0], names))
            else:
                found.extend((name, []) for name in names)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m, _ in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_no_module_of_the_package_is_in_an_import_cycle():
    graph = _graph()

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert sorted(name for name in graph if name in reachable(name)) == []


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{name} imports {module}.{imported}"
        for name, path in MODULES.items()
        for module, names in _imports(path)
        for imported in names
        if imported.startswith("_")
    ]
    assert private == []


VIEW_MODULES = {"views", "admin", "access_admin", "preview", "backchannel"}


def test_view_modules_never_import_each_other():
    graph = _graph()
    assert {name: graph[name] & VIEW_MODULES for name in VIEW_MODULES if graph[name] & VIEW_MODULES} == {}
    # ...and only routes.py attaches them.
    importers = {name for name, deps in graph.items() if deps & VIEW_MODULES} - VIEW_MODULES
    assert importers == {"routes"}


def test_only_the_extension_module_touches_the_per_app_state_table():
    users = [name for name, path in MODULES.items() if "_states" in path.read_text() and name != "extension"]
    assert users == []


def test_the_package_exports_what_a_host_needs():
    for name in ("BookloreOIDC", "UserAdapter", "SQLAlchemyUserAdapter", "Access", "NewUser", "Identity"):
        assert name in flask_booklore_oidc.__all__
    for name in ("OIDCError", "signals", "SESSION_KEYS"):
        assert name in flask_booklore_oidc.__all__
    assert all(not name.startswith("_") for name in flask_booklore_oidc.__all__)
    assert all(hasattr(flask_booklore_oidc, name) for name in flask_booklore_oidc.__all__)


# -- one definition per setting ---------------------------------------------------------------------

COLUMN_TYPES = {"bool": Boolean, "int": Integer, "float": Float, "list": Text, "secret": Text}


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_each_setting_has_its_column_with_the_type_and_length_of_its_definition(field):
    column = SettingsRow.__table__.c[field.name]
    assert column.nullable
    expected = COLUMN_TYPES.get(field.kind, String)
    assert isinstance(column.type, expected)
    if expected is String:
        assert column.type.length == field.max_length


def test_the_settings_table_has_no_column_beyond_the_settings():
    extra = {c.name for c in SettingsRow.__table__.c} - {f.name for f in FIELDS}
    assert extra == {"id", "version", "updated_at"}


def test_the_settings_snapshot_the_form_and_the_sections_list_every_setting_once():
    names = [f.name for f in FIELDS]
    assert [n for n in Settings.__dataclass_fields__ if n in names] == names
    assert all(getattr(Settings(), f.name) == (tuple(f.default) if f.kind == "list" else f.default) for f in FIELDS)
    form_fields = [name for name in SettingsForm.__dict__ if name in names]
    assert sorted(form_fields) == sorted(names)
    assert {f.section for f in FIELDS} == {s.anchor for s in SECTIONS}
