"""`clearhouse sign|verify` and `clearhouse keys show|rotate`: C2PA provenance from the shell.

`verify` exits 0 when the file is valid and trusted, 2 when invalid, 3 when the signature is valid
but untrusted, 4 when there is no manifest; 1 is an error of the caller (unreadable file, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from sqlalchemy.orm import Session

from api.cli.context import (
    JsonOpt,
    console,
    emit_json,
    err_console,
    fail,
    handle_errors,
    open_registry,
)
from api.cli.keys import keys_app
from registry.fingerprint import Matcher
from registry.policy import PolicySet, load_policies
from registry.provenance import StudioKeys
from registry.provenance.keys import (
    ROOT_CERT,
    certificate_info,
    retired_certificates,
    rotate_studio_keys,
    studio_signing_keys,
    trust_anchors_pem,
)
from registry.provenance.service import (
    PUBLIC_LICENSEE,
    load_matcher,
    resolve_ingredient,
    sign_generated,
    verify_with_catalog,
)
from registry.provenance.training import parse_training_specs
from registry.settings import Settings

EXIT_FOR_STATE = {"valid": 0, "invalid": 2, "untrusted": 3, "no_manifest": 4}
STYLE_FOR_STATE = {"valid": "green", "invalid": "red", "untrusted": "yellow",
                   "no_manifest": "yellow"}


def _policies(settings: Settings) -> PolicySet | None:
    if not settings.policies_dir.is_dir():
        return None
    return load_policies(settings.policies_dir)


def _matcher(session: Session, settings: Settings) -> Matcher:
    return load_matcher(session, index_dir=settings.home / "index",
                        max_distance=settings.pdq_match_distance)


def _keys(settings: Settings) -> StudioKeys:
    return studio_signing_keys(signing_cert=settings.signing_cert,
                               signing_key=settings.signing_key, keys_dir=settings.keys_dir)


@handle_errors
def sign(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Generated image or video.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the signed file.")],
    model: Annotated[str | None, typer.Option(help="The model that made it (softwareAgent).")]
    = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt, recorded in the manifest.")]
    = None,
    ingredient: Annotated[
        list[str] | None,
        typer.Option(help="Studio asset placed in the output (componentOf): an asset id, a "
                          "sha256, or a file (linked to its asset by sha256, then fingerprint). "
                          "Repeatable."),
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(help="Reference or conditioning input (inputTo); same forms. Repeatable."),
    ] = None,
    training: Annotated[
        list[str] | None,
        typer.Option(help="allowed|notAllowed|constrained for every use, or USE=PERMISSION "
                          "(constrained:TEXT); repeatable. Default: from the policies of the "
                          "ingredients, the most restrictive wins."),
    ] = None,
    licensee: Annotated[str, typer.Option(help="Licensee whose grants decide the permissions "
                                               "('*': anyone who receives the file).")]
    = PUBLIC_LICENSEE,
    edit: Annotated[bool, typer.Option(help="A generative edit of an existing image "
                                            "(compositeWithTrainedAlgorithmicMedia).")] = False,
    replace_manifest: Annotated[bool, typer.Option(
        help="Sign even if INPUT already carries a C2PA manifest (it is replaced).")] = False,
    training_mining: Annotated[bool, typer.Option(
        "--training-mining/--no-training-mining",
        help="Write cawg.training-mining (default). Without catalog ingredients it states the "
             "studio's reservation (CLEARHOUSE_DEFAULT_TRAINING_MINING); --no-training-mining "
             "opts out explicitly.")] = True,
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign generated media with a C2PA manifest: actions, ingredients, training permissions."""
    if not input_path.is_file():
        fail(f"{input_path}: no such file")
    if output.exists() and not force:
        fail(f"{output}: exists (use --force to overwrite)")
    if output.resolve() == input_path.resolve():
        fail("OUTPUT must differ from INPUT (the input is never changed)")
    explicit = parse_training_specs(training or [])
    reg = open_registry()
    settings = reg.settings
    keys = _keys(settings)
    policies = _policies(settings)
    with reg.session() as session:
        refs = [(r, "componentOf") for r in ingredient or []] + \
            [(r, "inputTo") for r in reference or []]
        # The fingerprint index is only needed to link ingredient files.
        needs_index = any(Path(r).is_file() for r, _ in refs)
        matcher = _matcher(session, settings) if needs_index else None
        specs = [resolve_ingredient(session, reg.store, ref, relationship=rel, matcher=matcher,
                                    max_bytes=settings.max_upload_bytes,
                                    max_pixels=settings.max_image_pixels) for ref, rel in refs]
        outcome = sign_generated(
            session, input_path, keys=keys, name=input_path.name, model=model, prompt=prompt,
            ingredients=specs, explicit=explicit, policies=policies, licensee=licensee,
            edit=edit, replace_manifest=replace_manifest, actor="cli",
            studio_default=parse_training_specs(settings.default_training_mining),
            training_mining=training_mining, studio=settings.studio_name,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
    # Only once the manifest is committed to the repository is the signed file written: a file
    # whose manifest the repository cannot find again is never handed out.
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_bytes(outcome.signed.data)
    tmp.replace(output)
    data: dict[str, Any] = {"input": str(input_path), "output": str(output),
                            "signer": keys.signing_cert.subject.rfc4514_string(),
                            **outcome.as_dict()}
    if as_json:
        emit_json(data)
        return
    console.print(f"signed [bold]{output}[/] ({outcome.signed.media_type}, "
                  f"{len(outcome.signed.data)} bytes) as {data['signer']}", highlight=False)
    for ing in outcome.signed.ingredients:
        linked = f"asset {ing.asset_id}" if ing.asset_id is not None else "not in the catalog"
        via = f" via {ing.match['signal']}" if ing.match else ""
        console.print(f"  ingredient {ing.title} ({ing.relationship}): {linked}{via}",
                      highlight=False)
    for use, perm in outcome.signed.training.items():
        extra = f" ({perm.constraint_info})" if perm.constraint_info else ""
        console.print(f"  {use}: {perm.permission.value}{extra}", highlight=False)
    for warning in outcome.warnings:
        err_console.print(f"[yellow]warning[/] {warning}", highlight=False, soft_wrap=True)


def _anchors(settings: Settings, override: Path | None) -> bytes | None:
    """The configured bundle, else the studio root; None before `clearhouse init` made one (then
    every signature reads untrusted)."""
    configured = override or settings.trust_anchors
    if configured is None and not (settings.keys_dir / ROOT_CERT).is_file():
        return None
    return trust_anchors_pem(configured, settings.keys_dir)


@handle_errors
def verify(
    file: Annotated[Path, typer.Argument(help="The file to verify.")],
    trust_anchors: Annotated[
        Path | None,
        typer.Option(help="PEM bundle of trust anchors (default: CLEARHOUSE_TRUST_ANCHORS, else "
                          "the studio root)."),
    ] = None,
    allow_network: Annotated[
        bool, typer.Option(help="Fetch remote manifests and OCSP (off: verification is offline).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a file's C2PA manifest against the trust anchors, and match it to the catalog.

    A file with no manifest is looked up in the manifest repository: when the studio signed it,
    the output says whose it is, when and by whom it was signed, and what its manifest said
    (exit status stays 4: the file itself carries no manifest)."""
    if not file.is_file():
        fail(f"{file}: no such file")
    reg = open_registry()
    settings = reg.settings
    anchors = _anchors(settings, trust_anchors)
    with reg.session() as session:
        matcher = _matcher(session, settings)
        result = verify_with_catalog(
            session, file, anchors_pem=anchors, name=str(file), matcher=matcher,
            allow_network=allow_network, max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels)
    data = {"file": str(file), **result.as_dict()}
    if as_json:
        emit_json(data)
    else:
        _print_result(data)
    raise typer.Exit(EXIT_FOR_STATE[result.state])


def _print_result(data: dict[str, Any]) -> None:
    state = str(data["state"])
    message = str(data["message"]).removeprefix(f"{state}: ")
    console.print(f"[bold {STYLE_FOR_STATE[state]}]{state}[/]: {message}",
                  highlight=False, soft_wrap=True)
    signer = data.get("signer")
    if signer:
        trust = "trusted" if signer["trusted"] else "not chained to a configured trust anchor"
        console.print(f"  signer {signer['common_name']} (issuer {signer['issuer']}, "
                      f"{signer['alg']}): {trust}", highlight=False)
    for reason in data["reasons"]:
        console.print(f"  [red]{reason['code']}[/]: {reason['reason']}", highlight=False)
    for action in data["actions"]:
        console.print(f"  action {action['action']} ({action.get('digitalSourceType') or '-'}) "
                      f"by {action.get('softwareAgent') or '-'}", highlight=False)
    for ing in data["ingredients"]:
        asset = f" asset {ing['asset_id']}" if ing.get("asset_id") is not None else ""
        console.print(f"  ingredient {ing['title']} ({ing['relationship']}){asset}",
                      highlight=False)
    tm = data["training_mining"]
    if tm:
        for use, perm in tm["uses"].items():
            console.print(f"  {use}: {perm['use']}", highlight=False)
        for problem in tm["problems"]:
            console.print(f"  [yellow]not trusted[/]: {problem}", highlight=False)
    for m in data["matches"]:
        summary: dict[str, Any] = m.get("asset") or {}
        what = f": {summary['title']} ({summary.get('franchise') or '-'}, " \
            f"{summary['rightsholder']})" if summary else ""
        console.print(f"  matches asset {m['asset_id']}{what} ({m['subject']}, {m['signal']})",
                      highlight=False)
    recovered = data.get("recovered")
    if recovered:
        _print_recovered(recovered)


def _print_recovered(rec: dict[str, Any]) -> None:
    """The manifest found again in the manifest repository for a file that lost it."""
    check = rec["validation"]
    detail = str(check["message"]).removeprefix(f"{check['state']}: ")
    console.print(f"[bold cyan]recovered[/] manifest {rec['manifest_id']} (studio "
                  f"{rec['studio']}, signed {rec['signed_at']}): {check['state']}: {detail}",
                  highlight=False, soft_wrap=True)
    for action in rec["actions"]:
        console.print(f"  action {action['action']} ({action.get('digitalSourceType') or '-'}) "
                      f"by {action.get('softwareAgent') or '-'}", highlight=False)
    for ing in rec["ingredients"]:
        asset = ing.get("asset")
        where = f": asset {asset['asset_id']} {asset['title']} ({asset.get('franchise') or '-'}" \
            f", {asset['rightsholder']})" if asset else ": not in the catalog"
        console.print(f"  ingredient {ing['title']} ({ing['relationship']}){where}",
                      highlight=False)
    tm = rec.get("training_mining")
    if tm:
        for use, perm in tm["uses"].items():
            extra = f" ({perm['constraint_info']})" if perm.get("constraint_info") else ""
            console.print(f"  {use}: {perm['use']}{extra}", highlight=False)


@keys_app.command("show")
@handle_errors
def keys_show(as_json: JsonOpt = False) -> None:
    """Show the studio's signing certificate, its root and the retired certificates."""
    reg = open_registry(migrate_schema=False)
    settings = reg.settings
    keys = _keys(settings)
    data = {
        "own_chain": settings.signing_cert is not None,
        "signing_cert_path": str(keys.signing_cert_path),
        "signing_key_path": str(keys.signing_key_path),
        "signing": certificate_info(keys.signing_cert),
        "root": certificate_info(x509.load_pem_x509_certificate(keys.root_pem)),
        "trust_anchors": str(settings.trust_anchors) if settings.trust_anchors
        else str(keys.root_cert_path),
        "retired": [certificate_info(c) for c in retired_certificates(settings.keys_dir)],
    }
    if as_json:
        emit_json(data)
        return
    for part in ("signing", "root"):
        info: dict[str, Any] = data[part]  # type: ignore[assignment]
        console.print(f"[bold]{part}[/]: {info['subject']} (serial {info['serial']}, valid to "
                      f"{info['not_after'][:10]}, sha256 {info['sha256'][:16]}...)",
                      highlight=False)
    console.print(f"[bold]key[/]: {data['signing_key_path']}", highlight=False)
    console.print(f"[bold]trust anchors[/]: {data['trust_anchors']}", highlight=False)
    console.print(f"[bold]retired[/]: {len(data['retired'])}", highlight=False)  # type: ignore[arg-type]


@keys_app.command("rotate")
@handle_errors
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Issue a new signing certificate under the same root (the old one is kept, retired)."""
    reg = open_registry()
    settings = reg.settings
    if settings.signing_cert is not None:
        fail("CLEARHOUSE_SIGNING_CERT is configured: rotate that certificate with its issuer")
    old = _keys(settings).signing_cert
    keys = rotate_studio_keys(settings.keys_dir)
    from registry.audit import record

    with reg.session() as session:
        record(session, actor="cli", action="keys.rotate", subject="signing_key",
               retired=f"{old.serial_number:x}", new=f"{keys.signing_cert.serial_number:x}")
    data = {"retired": certificate_info(old), "signing": certificate_info(keys.signing_cert)}
    if as_json:
        emit_json(data)
    else:
        console.print(f"rotated: new signing certificate serial "
                      f"{data['signing']['serial']}; retired {data['retired']['serial']}",
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app (`keys show|rotate` join the keys group)."""
    app.command("sign")(sign)
    app.command("verify")(verify)


def make_demo_generated_image(out: Path) -> tuple[Path, list[Path]]:
    """A stand-in for a model's output: Harbor Lights' cat photo composited onto its coffee photo
    (two real photographs scikit-image ships). Returns the image and the two source photos."""
    import skimage.data
    from PIL import Image, ImageFilter

    samples = Path(skimage.data.__file__).parent
    background, cat = samples / "coffee.png", samples / "chelsea.png"
    canvas = Image.open(background).convert("RGB").filter(ImageFilter.SMOOTH)
    inset = Image.open(cat).convert("RGB").resize((200, 150))
    canvas.paste(inset, (canvas.width - 220, 20))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, "JPEG", quality=90)
    return out, [background, cat]


def demo_steps(step: Any, out_dir: Path) -> None:
    """The provenance part of `make demo`: sign a generated image with its two catalog
    ingredients (given as files: linked to their assets by sha256), verify it (valid), verify it
    against a trust bundle without the studio root (untrusted), a tampered copy (invalid), and a
    re-encoded copy without its manifest (recovered from the manifest repository).

    `step(title, *args, check=True)` runs one `clearhouse` command (scripts/demo.py's helper).
    Needs the demo catalog (coffee.png and chelsea.png imported) for the ingredients to link.
    """
    generated, sources = make_demo_generated_image(out_dir / "provenance" / "generated.jpg")
    signed = generated.with_name("generated.signed.jpg")
    step("Sign a generated image: model, prompt, two studio ingredients, training permissions "
         "from the policies", "sign", str(generated), "-o", str(signed), "--force",
         "--model", "lumen-diffusion-2", "--prompt", "a cat over a cup of coffee",
         *(arg for src in sources for arg in ("--ingredient", str(src))))
    step("Verify it against the studio's trust anchors", "verify", str(signed))
    bundle = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "c2pa" / \
        "trust" / "test_cert_root_bundle.pem"
    if bundle.is_file():
        step("Verify it against a trust bundle without the studio root (exit 3: untrusted)",
             "verify", str(signed), "--trust-anchors", str(bundle), check=False)
    tampered = generated.with_name("generated.tampered.jpg")
    data = bytearray(signed.read_bytes())
    data[-200] ^= 0x24  # pixels changed after signing (inside the JPEG scan data)
    tampered.write_bytes(bytes(data))
    step("Verify a copy whose pixels were changed after signing (exit 2: invalid)",
         "verify", str(tampered), check=False)
    from PIL import Image

    reposted = generated.with_name("generated.reposted.webp")
    with Image.open(signed) as image:
        image.convert("RGB").save(reposted, "WEBP", quality=80)  # what a platform does: no C2PA
    step("Verify a re-encoded copy whose manifest was stripped (exit 4, recovered from the "
         "manifest repository)", "verify", str(reposted), check=False)
