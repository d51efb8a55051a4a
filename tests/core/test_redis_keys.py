"""Redis key names live in one module, modwatch/redis_keys.py, and docs/architecture.md lists every one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import modwatch
from modwatch import redis_keys

PACKAGE = Path(modwatch.__file__).parent
ROOT = PACKAGE.parent.parent
# "modwatch:" then a key's next part: what a report comment's marker ("modwatch:" alone) and the messages
# ("modwatch: configuration error") are not.
KEY_LITERAL = re.compile(r"^modwatch:[\w{]")


def keys() -> dict[str, str]:
    return {name: value for name, value in vars(redis_keys).items()
            if name.endswith(("_KEY", "_KEY_PREFIX")) and isinstance(value, str)}


def key_literals(path: Path, root: Path = ROOT) -> list[str]:
    """The string constants (f-strings' literal parts included) of a file that start like a modwatch key."""
    return [f"{path.relative_to(root)}:{node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_LITERAL.match(node.value)]


def test_no_redis_key_is_spelled_outside_the_keys_module():
    code = [*PACKAGE.rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    assert len(code) > 50  # the walk saw the code base
    spelled = [hit for path in code if path != Path(redis_keys.__file__) for hit in key_literals(path)]
    assert spelled == [], "name the key in modwatch/redis_keys.py and import it"


def test_the_guard_sees_plain_and_formatted_key_literals(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('A = "modwatch:queue:x"\nB = f"modwatch:poll:{name}"\nC = f"modwatch: {error}"\nD = "modwatch:"\n')
    assert [hit.split(": ", 1)[1] for hit in key_literals(sample, tmp_path)] == ["'modwatch:queue:x'", "'modwatch:poll:'"]


def test_the_keys_module_imports_nothing_so_every_layer_may_use_it():
    tree = ast.parse(Path(redis_keys.__file__).read_text())
    imports = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == ["from __future__ import annotations"]


def test_every_key_is_distinct_and_under_the_modwatch_prefix():
    values = list(keys().values())
    assert len(values) > 20
    assert len(set(values)) == len(values)
    assert all(value.startswith("modwatch:") for value in values)


def test_every_key_is_in_the_architecture_documents_table():
    # The table writes a template's fields as <field>: compare what comes before the first field.
    table = (ROOT / "docs" / "architecture.md").read_text().split("## Redis keys", 1)[1]
    documented = {re.split(r"<", key, maxsplit=1)[0] for key in re.findall(r"^\| `(modwatch:[^`]+)`", table, re.M)}
    undocumented = {name: value for name, value in keys().items() if value.split("{", 1)[0] not in documented}
    assert undocumented == {}
