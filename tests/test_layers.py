"""The package's layers only point downwards (docs/architecture.md): no module imports one of a higher
layer, checked on the source's import statements."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_meta"
LAYERS = [
    {"errors", "files", "finite", "seeding", "tasks", "launch", "noise", "checkpoints", "run_lock"},
    {"nn", "envs"},
    {"algorithms", "datamodules", "sb3"},
    {"evaluation"},
    {"modules", "callbacks", "checkpoint_io"},
    {"registry", "entry_points"},
    {"cli", "evaluate", "adapt"},
]
"""Bottom to top; a room is a top-level module or subpackage of lit_meta."""
LAYER = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}


def imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        rooms.update(name.split(".")[1] for name in names if name.startswith("lit_meta."))
    return rooms


def test_every_room_has_a_layer():
    rooms = {
        path.stem for path in PACKAGE.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()
    }
    assert rooms - {"__init__"} == set(LAYER)


def test_no_module_imports_a_higher_layer():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        room = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for imported in imported_rooms(path):
            if LAYER[imported] > LAYER[room]:
                violations.append(f"{path.relative_to(PACKAGE)} imports lit_meta.{imported}")
    assert not violations, violations


def test_the_learning_rooms_know_nothing_of_lightning():
    for room in ("nn", "envs", "algorithms", "sb3"):
        for path in (PACKAGE / room).rglob("*.py"):
            text = path.read_text()
            assert "pytorch_lightning" not in text and "lightning_fabric" not in text, path
