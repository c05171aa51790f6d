"""Opt-out signals carried by items (IPTC PLUS, TDMRep, C2PA/CAWG) are read, reported, and decide
items that no studio licence decides: the most restrictive wins."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, PngImagePlugin
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.optout import read_opt_out_signals
from registry.policy import load_policies
from registry.provenance import UsePermission, ensure_studio_keys, sign_media
from registry.provenance.training import Permission
from tests.photos import skimage_photo
from tests.registry.clearance import scenario

XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description
 xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" xmlns:tdm="http://www.w3.org/ns/tdmrep#"
 {attrs}/></rdf:RDF></x:xmpmeta>"""


def _png_with_xmp(photo: str, attrs: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.format(attrs=attrs))
    out = io.BytesIO()
    Image.open(skimage_photo(photo)).convert("RGB").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_iptc_plus_and_tdmrep_values_map_to_permissions_per_use() -> None:
    prohibited = _png_with_xmp(
        "horse.png",
        'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"')
    assert read_opt_out_signals(prohibited, use="ai_training") == [{
        "signal": "iptc-plus",
        "value": "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING",
        "permission": "notAllowed"}]
    assert read_opt_out_signals(prohibited, use="ai_inference") == []
    reserved = _png_with_xmp("horse.png", 'tdm:reservation="1"')
    assert read_opt_out_signals(reserved, use="data_mining")[0]["permission"] == "notAllowed"
    offered = _png_with_xmp("horse.png",
                            'tdm:reservation="1" tdm:policy="https://example.com/tdm.json"')
    assert read_opt_out_signals(offered, use="ai_training")[0]["permission"] == "constrained"
    assert read_opt_out_signals(_png_with_xmp("horse.png", 'tdm:reservation="0"'),
                                use="ai_training") == []


def test_signals_decide_unlicensed_items_and_a_studio_licence_outranks_them(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    scenario.import_catalog(session_factory, store)
    folder = tmp_path / "signals"
    folder.mkdir()
    (folder / "iptc-prohibited.png").write_bytes(_png_with_xmp(
        "horse.png", 'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"'))
    (folder / "tdm-offered.png").write_bytes(_png_with_xmp(
        "camera.png", 'tdm:reservation="1" tdm:policy="https://example.com/p.json"'))
    # A copy of a catalog asset Lumen AI is licensed to train on, carrying an opt-out anyway.
    (folder / "licensed-with-optout.png").write_bytes(_png_with_xmp(
        "astronaut.png", 'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"'))
    keys = ensure_studio_keys(tmp_path / "keys")
    signed = sign_media(skimage_photo("motorcycle_left.png"), keys=keys, model="gen-1",
                        training={"ai_training": UsePermission("ai_training",
                                                               Permission.notAllowed)})
    (folder / "c2pa-notallowed.jpg").write_bytes(signed.data)
    result = clearance.clear_dataset(
        session_factory, folder, use="ai_training", licensee=scenario.LICENSEE, owner="ml",
        policies=load_policies(scenario.write_policies(tmp_path / "policies")),
        database_url=db_url, index_dir=tmp_path / "index")
    items = {i["key"]: i for i in result.report["items"]}
    assert items["iptc-prohibited.png"]["verdict"] == "blocked"
    assert items["tdm-offered.png"]["verdict"] == "review"
    assert items["licensed-with-optout.png"]["verdict"] == "clear"
    assert items["licensed-with-optout.png"]["signals"][0]["permission"] == "notAllowed"
    c2pa = items["c2pa-notallowed.jpg"]
    assert c2pa["verdict"] == "blocked", c2pa
    assert c2pa["signals"][0]["signal"] == "c2pa"
