"""The policy, matching, clearance and provenance steps of `make demo` (called by scripts/demo.py).

Each step runs the real `clearhouse` command through `step(title, *args, check=True)`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import skimage.data
from PIL import Image, ImageDraw, ImageOps

from api.cli.provenance import demo_steps as provenance_steps

SAMPLES = Path(skimage.data.__file__).parent
Step = Callable[..., Any]
# Real photos that are not in the demo catalog.
UNRELATED = ["coins.png", "moon.png", "page.png", "gravel.png"]


def _catalog_copy(name: str, out: Path, how: str) -> None:
    image = Image.open(SAMPLES / name).convert("RGB")
    w, h = image.size
    if how == "crop":
        image = image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).resize((w // 2, h // 2))
    elif how == "flip":
        image = ImageOps.mirror(image)
    elif how == "overlay":
        ImageDraw.Draw(image).rectangle((0, int(h * 0.8), w // 2, h), fill=(250, 250, 250))
    image.save(out, "JPEG", quality=70)


def make_dataset(folder: Path) -> Path:
    """A small training set: edited copies of studio assets mixed with unrelated photos."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    _catalog_copy("astronaut.png", folder / "hero-crop.jpg", "crop")  # Skyreach
    _catalog_copy("rocket.jpg", folder / "launch-flipped.jpg", "flip")  # Skyreach
    _catalog_copy("coffee.png", folder / "still-life.jpg", "overlay")  # Harbor Lights
    _catalog_copy("chelsea.png", folder / "cat-crop.jpg", "crop")  # Harbor Lights
    for name in UNRELATED:
        shutil.copy(SAMPLES / name, folder / name)
    return folder


def policy_steps(step: Step) -> None:
    step("Validate the licence policies in policies/", "policy", "check")
    step("Load them (each file's version is recorded)", "policy", "load")
    step("May Lumen AI train on a Harbor Lights still?", "policy", "explain", "--asset", "7",
         "--licensee", "Lumen AI", "--use", "ai_training")
    step("May Lumen AI train on Skyreach art?", "policy", "explain", "--asset", "1",
         "--licensee", "Lumen AI", "--use", "ai_training")


def clearance_steps(step: Step, out: Path) -> None:
    dataset = make_dataset(out / "dataset")
    step("Find studio content in the dataset", "match", str(dataset))
    report = out / "clearance" / "report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    step("Clear the dataset for internal-ml training (exit 1: some blocked, some need review)",
         "clear", str(dataset), "--use", "ai_training", "--licensee", "internal-ml",
         "--model", "northwind-vision-2", "--workers", "2", "--report", str(report), check=False)
    data = json.loads(report.read_text())
    job = str(data["job"]["id"])
    step("Write the report as a standalone HTML page too", "clear", "--resume", job,
         "--report", str(report.with_suffix(".html")), "--format", "html", check=False)
    step("Items waiting for legal", "review", "list", job)
    for item in data["items"]:
        if item["verdict"] == "review":
            step(f"Legal decides {item['key']}", "review", "decide", job, item["key"],
                 "--decision", "allowed", "--comment", "Northwind Vision family, approved by legal",
                 "--as", "legal@northwind.example")
    cert = out / "clearance" / "certificate.dsse.json"
    cleared = out / "clearance" / f"cleared-{job}"
    step("Export the cleared subset (what may be trained on) as a Hugging Face imagefolder",
         "clearances", "export", job, "--format", "hf", "--out", str(cleared))
    step("Issue the signed clearance certificate over the cleared subset", "certificate",
         "issue", job, "--out", str(cert))
    step("Verify it offline against the studio's trust anchors, with the cleared subset",
         "certificate", "verify", str(cert), "--dataset", str(cleared))
    step("Against the full dataset it fails and names the excluded items (exit 1)",
         "certificate", "verify", str(cert), "--dataset", str(dataset), check=False)
    step("Data for the EU AI Act summary of training content", "summary", job, "--format", "md",
         "--out", str(out / "clearance" / f"eu-summary-{job}.md"))


def run(step: Step, out: Path) -> None:
    policy_steps(step)
    clearance_steps(step, out)
    provenance_steps(step, out)
