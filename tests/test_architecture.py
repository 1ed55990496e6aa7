"""The folders tell the architecture (docs/ARCHITECTURE.md): dependencies point one way, rooms
import only the rooms below them, no module imports itself back through others, and
appointments/ knows nothing of notifications/ (the domain signals are the seam)."""

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PACKAGES = ("accounts", "appointments", "config", "integrations", "notifications", "privacy", "tasks")
# Each room of notifications/ and the rooms it may import; the gathering modules
# (notifications.models, notifications.admin), the app config and the commands may import any.
ROOMS = {
    "channels": set(),
    "messages": {"channels"},
    "outbox": {"channels", "messages"},
    "inbound": {"channels", "messages", "outbox"},
    "operations": {"channels", "messages", "outbox", "inbound"},
}
# Modules a room may read besides its rooms below: the outbox's consent reads inbound's records
# (a START received since a send was claimed stands against that send's 21610), never its code.
ALSO_READS = {"outbox": {"notifications.inbound.models"}}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules():
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                yield module_name(path), path


def imports_of(name, path, modules):
    """The project's modules this module imports, at its top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module; `from module import name` the module.
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets = submodules or [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield target


def graph():
    modules = dict(source_modules())
    edges = {}
    for name, path in modules.items():
        edges[name] = {target for target in imports_of(name, path, modules) if target in modules and target != name}
    return edges


def test_appointments_never_imports_notifications():
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.split(".")[0] == "appointments"
        for target in targets
        if target.split(".")[0] == "notifications"
    )
    assert offenders == []


def test_no_module_of_notifications_imports_the_tasks():
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.startswith("notifications.")
        for target in targets
        if target.split(".")[0] == "tasks"
    )
    assert offenders == []


def room(name):
    parts = name.split(".")
    return parts[1] if parts[0] == "notifications" and len(parts) >= 2 and parts[1] in ROOMS else None


def test_each_room_imports_only_the_rooms_below_it():
    offenders = sorted(
        f"{name} ({room(name)}) imports {target} ({room(target)})"
        for name, targets in graph().items()
        if room(name)
        for target in targets
        if target.startswith("notifications.")
        and room(target) != room(name)
        and room(target) not in ROOMS[room(name)]
        and target not in ALSO_READS.get(room(name), set())
    )
    assert offenders == []


def test_no_import_circles_between_modules():
    edges = graph()
    circles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_only_the_wiring_imports_privacy():
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.split(".")[0] not in ("privacy", "config")
        for target in targets
        if target.split(".")[0] == "privacy"
    )
    assert offenders == []


def test_neither_appointments_nor_notifications_imports_integrations():
    """integrations/ hears their signals; they never know it is there."""
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.split(".")[0] in ("appointments", "notifications")
        for target in targets
        if target.split(".")[0] == "integrations"
    )
    assert offenders == []
