"""`make demo`: the project's main job, end to end, on the embedded default.

SQLite and files under CLEARHOUSE_HOME (default ./.clearhouse), local signing keys made on first
run, a demo catalog of real photographs that scikit-image ships (no downloads). Each step runs the
real `clearhouse` command and prints it first, so the demo doubles as a tour of the CLI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import skimage.data

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("clearhouse"))
SAMPLES = Path(skimage.data.__file__).parent
OUT = ROOT / "demo-out"

# Two studios working together: a game publisher and a film studio.
CATALOG = {
    ("Northwind Games", "Skyreach"): ["astronaut.png", "rocket.jpg", "motorcycle_left.png",
                                      "hubble_deep_field.jpg"],
    ("Meridian Pictures", "Harbor Lights"): ["coffee.png", "chelsea.png", "camera.png",
                                             "horse.png"],
}


def step(title: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    print(f"\n\033[1m== {title}\033[0m\n$ clearhouse {shlex.join(args)}", flush=True)
    result = subprocess.run([CLI, *args], text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if check and result.returncode != 0:
        sys.exit(f"demo step failed ({result.returncode}): clearhouse {shlex.join(args)}")
    return result


def prepare_files() -> dict[tuple[str, str], Path]:
    folders = {}
    for (holder, franchise), names in CATALOG.items():
        folder = OUT / "catalog" / franchise.lower().replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(SAMPLES / name, folder / name)
        folders[(holder, franchise)] = folder
    return folders


def main() -> None:
    os.environ.setdefault("CLEARHOUSE_HOME", str(ROOT / ".clearhouse"))
    os.environ.setdefault("CLEARHOUSE_POLICIES_DIR", str(ROOT / "policies"))
    print(f"CLEARHOUSE_HOME={os.environ['CLEARHOUSE_HOME']}")
    print(f"CLEARHOUSE_POLICIES_DIR={os.environ['CLEARHOUSE_POLICIES_DIR']}")
    step("Initialise the registry (database, blob store, signing keys)", "init")
    for (holder, franchise), folder in prepare_files().items():
        step(f"Import {franchise} ({holder})", "assets", "import", str(folder),
             "--rightsholder", holder, "--franchise", franchise, "--tag", "demo")
    step("The catalog", "assets", "list")
    extra = ROOT / "scripts" / "demo_steps.py"
    if extra.exists():  # policy, clearance and provenance steps
        sys.path.insert(0, str(extra.parent))
        import demo_steps

        demo_steps.run(step, OUT)
    env = (f"CLEARHOUSE_HOME={shlex.quote(os.environ['CLEARHOUSE_HOME'])} "
           f"CLEARHOUSE_POLICIES_DIR={shlex.quote(os.environ['CLEARHOUSE_POLICIES_DIR'])}")
    cli = shlex.quote(str(CLI))
    print("\n\033[1mdemo finished\033[0m. The API and the console on this registry "
          "(http://127.0.0.1:8000/console/, docs at /docs), from any folder:")
    print(f"{env} {cli} serve")


if __name__ == "__main__":
    main()
