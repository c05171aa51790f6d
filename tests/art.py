"""Real game art for tests: the character portraits (RGBA) and story paintings of Battle for
Wesnoth, from Debian's `wesnoth-1.16-data` (GPL-2+ art), fetched by `scripts/fetch-test-art.sh`
(`make test` runs it) into a cache folder; nothing is downloaded at test time.

The portraits are painted by a handful of artists in one house style, so portraits that are not
in a test catalog are the hardest distractors there are: other art by the same artists in the
same style. Some portraits are variants of one painting (recolours, repaints, a second pose:
`ruler` / `ruler-2`, `grunt` ... `grunt-6`, `mage` / `mage-red`, `giant_ant` / `fire_ant`,
`general` / `marshal-2`): a match between variants is right, not false, so the catalog and the
distractors below are taken from families that have no variant on the other side
(`VARIANT_FAMILIES` lists the families of the package with more than one painting).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ART_PACKAGE = "wesnoth-1.16-data"
ART_CACHE = Path(os.environ.get("CLEARHOUSE_TEST_ART",
                                Path.home() / ".cache" / "clearhouse-test-art"))
ART_DIR = ART_CACHE / ART_PACKAGE
PORTRAITS_DIR = ART_DIR / "portraits"
STORY_DIR = ART_DIR / "story"
MISSING = (f"!!! {ART_PACKAGE} art is missing under {ART_DIR}: run scripts/fetch-test-art.sh "
           "(make test does); the game-art recall tests are SKIPPED !!!")

# Portraits in test catalogs: one per family, no family with a variant elsewhere in the sets.
CATALOG_PORTRAITS = [
    "drakes/burner", "dwarves/thunderer", "elves/druid", "goblins/impaler",
    "humans/cavalryman", "humans/peasant", "merfolk/hoplite", "monsters/gryphon",
    "nagas/myrmidon", "orcs/slayer", "saurians/skirmisher", "undead/revenant",
    "trolls/troll-shaman", "woses/wose",
]
# Same artists, same style, not in the catalog: must match nothing.
DISTRACTOR_PORTRAITS = [
    "drakes/clasher", "dwarves/scout", "elves/shyde", "goblins/direwolver", "humans/bandit",
    "humans/huntsman", "merfolk/netcaster", "monsters/yeti", "nagas/dirkfang", "orcs/warrior",
    "undead/wraith", "trolls/troll-rocklobber",
]
# Families with more than one painting (variants may match each other); none of them is used
# on both sides above (`monsters/gryphon` is in the catalog, its variants in no set).
VARIANT_FAMILIES = [
    ("orcs/ruler", "orcs/ruler-2"),
    ("orcs/grunt", "orcs/grunt-2", "orcs/grunt-3", "orcs/grunt-4", "orcs/grunt-5",
     "orcs/grunt-6"),
    ("humans/general", "humans/marshal", "humans/marshal-2"),
    ("humans/mage", "humans/mage-red", "humans/mage-white", "humans/mage-light",
     "humans/mage-silver", "humans/mage-arch"),
    ("monsters/giant_ant", "monsters/fire_ant"),
    ("monsters/bat", "monsters/bat-red", "monsters/bat-dread"),
    ("humans/swordsman", "humans/swordsman-2", "humans/swordsman-3"),
    ("humans/spearman", "humans/spearman-2"),
    ("humans/grand-knight", "humans/grand-knight-2"),
    ("dwarves/fighter", "dwarves/fighter-2"),
    ("goblins/rouser", "goblins/rouser-2"),
    ("goblins/spearman", "goblins/spearman-2"),
    ("merfolk/initiate", "merfolk/initiate-2"),
    ("undead/draug", "undead/draug-2"),
    ("trolls/troll-hero", "trolls/troll-hero-alt"),
    ("nagas/naga-mace_warrior1", "nagas/naga-mace_warrior2", "nagas/naga-mace_warrior3"),
    # Across folders: the gryphon repainted with a rider before it, and recoloured as undead
    # (found by the wild test's paste_over of `monsters/gryphon` against the bench catalog,
    # where the test's catalog meets every portrait of the package; bench/bench_fillers.py).
    ("monsters/gryphon", "dwarves/gryphon-rider", "undead/zombie-gryphon"),
]
# Story paintings: backgrounds that art is pasted over.
STORY_PAINTINGS = ["landscape-battlefield.jpg", "landscape-bridge.jpg", "landscape-castle.jpg",
                   "landscape-coast.jpg", "landscape-hills-01.jpg", "landscape-mountains-02.jpg",
                   "landscape-plain.jpg", "swamp-01.jpg"]


def art_available() -> bool:
    return (ART_DIR / ".complete").exists() and all(
        portrait(n).exists() for n in CATALOG_PORTRAITS + DISTRACTOR_PORTRAITS)


def portrait(name: str) -> Path:
    return PORTRAITS_DIR / f"{name}.png"


def story(name: str) -> Path:
    return STORY_DIR / name


def require_art() -> None:
    """Skip (loudly) when the package could not be fetched."""
    if not art_available():
        import warnings

        warnings.warn(MISSING, stacklevel=2)
        pytest.skip(MISSING)
