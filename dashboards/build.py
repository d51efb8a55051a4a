"""Build Grafana dashboards from YAML.

    python dashboards/build.py            # write dashboards/<name>.json for every dashboards/src/<name>.yaml
    python dashboards/build.py --check    # exit 1 when a committed JSON file is stale or missing

Sources mirror Grafana's dashboard JSON model one to one. dashboards/src/_shared.yaml is put in front of
each source so its YAML anchors can be used there; its `shared` key is dropped. Panels without an `id`
get one in order, so adding a panel does not mean renumbering by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
SHARED = SOURCES / "_shared.yaml"


def sources() -> list[Path]:
    return sorted(path for path in SOURCES.glob("*.yaml") if path != SHARED)


def _number_panels(panels: list[dict], next_id: int = 1) -> int:
    for panel in panels:
        panel.setdefault("id", next_id)
        next_id = max(next_id, panel["id"]) + 1
        next_id = _number_panels(panel.get("panels", []), next_id)
    return next_id


def build(source: Path) -> str:
    dashboard = yaml.safe_load(SHARED.read_text() + "\n" + source.read_text())
    del dashboard["shared"]
    _number_panels(dashboard["panels"])
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def output_of(source: Path) -> Path:
    return HERE / f"{source.stem}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when committed JSON is stale")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        text, output = build(source), output_of(source)
        if args.check:
            if not output.exists() or output.read_text() != text:
                stale.append(output.name)
        else:
            output.write_text(text)
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
