"""Dependencies point one way: tasks/ wraps notifications/, and the core publishes by task name."""

import ast
from pathlib import Path

import notifications


def imported_modules(path):
    """Every module a source file imports, at its top or inside a function."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_no_module_of_notifications_imports_the_tasks():
    offenders = {
        f"{path.relative_to(Path(notifications.__file__).parent)} imports {name}"
        for path in Path(notifications.__file__).parent.rglob("*.py")
        for name in imported_modules(path)
        if name == "tasks" or name.startswith("tasks.")
    }
    assert offenders == set()
