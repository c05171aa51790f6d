"""The HTML clearance report at 100,000 items: time until Chromium shows its first screen, against
the report page as it was before issue 14 (every item a server-rendered table row, in dataset
order; copied below as the baseline), both measured in this run on the same job.

The job is made directly in SQLite (tests/registry/clearance/synthetic.py: 10% blocked, 4% review,
2% error, the rest clear; blocked and review items match a real photo with a boxed region). Both
pages are rendered from the same database; Chromium (Debian's, headless) opens each file and we
time from navigation start to the first table row being visible, and to the load event.

Run: .venv/bin/python bench/bench_report.py [--items 100000]
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.models import VERDICTS, ClearanceItem, ClearanceJob
from registry.clearance.reports import build_report
from registry.db import make_engine, make_session_factory, migrate
from registry.errors import RegistryError
from tests.registry.clearance import synthetic

THUMBNAIL_PX = 160
MAX_HTML_PAIRS = 500
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _legacy_data_uri(jpeg: bytes | None) -> str | None:
    if not jpeg:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def _legacy_asset_thumbnail(store: Any, sha256: str) -> bytes | None:
    from registry.media import load_image

    try:
        path = store.path(sha256)
        image = load_image(path, name=str(path), draft_size=(THUMBNAIL_PX, THUMBNAIL_PX))
    except (RegistryError, OSError):
        return None
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


_LEGACY_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Clearance report: job {{ report.job.id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;
vertical-align:top;text-align:left}th{background:#f4f4f4}
.clear{color:#176f2c}.blocked{color:#b00020}.review{color:#9a6200}.error{color:#555}
.pair{display:flex;gap:.5rem;align-items:flex-start}.pair figure{margin:0}
.pair img{max-width:160px;max-height:160px;border:1px solid #999}
figcaption{font-size:.75rem;color:#555;max-width:160px;word-break:break-all}
.summary span{margin-right:1.5rem;font-weight:600}
</style></head><body>
<h1>Clearance report: job {{ report.job.id }}</h1>
<p>Dataset <code>{{ report.dataset.uri }}</code> ({{ report.dataset.kind }},
{{ report.dataset["items"] }} items){% if report.dataset.digest %}, digest
<code>sha256:{{ report.dataset.digest.sha256 }}</code>{% endif %}.<br>
Use <b>{{ report.job.use }}</b> by licensee <b>{{ report.job.licensee }}</b>{% if report.job.model
%}, model <b>{{ report.job.model }}</b>{% endif %}; status {{ report.job.status }}.</p>
<p class="summary">{% for v in verdicts %}<span class="{{ v }}">{{ v }}: {{ report.summary[v]
}}</span>{% endfor %}<span>total: {{ report.summary.total }}</span></p>
<table><thead><tr><th>#</th><th>item</th><th>verdict</th><th>matches</th></tr></thead><tbody>
{% for row in rows %}{% set item = row.item %}
<tr><td>{{ loop.index }}</td>
<td><code>{{ item.path }}</code><br><small>sha256 {{ (item.sha256 or "-")[:16] }}</small>
{% if item.error %}<br><span class="error">{{ item.error }}</span>{% endif %}
{% for s in item.signals %}<br><small>opt-out {{ s.signal }}: {{ s.permission }}
({{ s.value }})</small>{% endfor %}</td>
<td class="{{ item.verdict }}">{{ item.verdict }}{% if item.review %}<br><small>reviewed
{{ item.review.decision }} by {{ item.review.by }}: {{ item.review.comment }}</small>{% endif
%}</td>
<td>{% for m in row.matches %}<div class="pair">
{% if m.item_thumb %}<figure><img alt="dataset item" src="{{ m.item_thumb }}">
<figcaption>dataset item</figcaption></figure>{% endif %}
{% if m.asset_thumb %}<figure><img alt="catalog asset {{ m.match.asset_id }}"
src="{{ m.asset_thumb }}"><figcaption>asset {{ m.match.asset_id }}</figcaption></figure>{% endif %}
<div>asset {{ m.match.asset_id }} by {{ m.match.signal }} (distance {{ m.match.distance }})<br>
<b class="{{ 'blocked' if m.match.decision == 'denied' else ('clear' if m.match.decision ==
'allowed' else 'review') }}">{{ m.match.decision }}</b>: {{ m.match.explanation }}</div>
</div>{% else %}-{% endfor %}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""


def legacy_report_html(
    session: Session, job: ClearanceJob, report: dict[str, Any], *, store: Any | None
) -> str:
    """The report page as it was before issue 14 (one table row per item, in dataset order)."""
    import jinja2

    thumbs: dict[int, bytes | None] = {
        row_id: thumb for row_id, thumb in session.execute(
            select(ClearanceItem.id, ClearanceItem.thumbnail).where(
                ClearanceItem.job_id == job.id, ClearanceItem.thumbnail.is_not(None)))
    }
    asset_thumbs: dict[str, str | None] = {}
    pairs = 0
    rows = []
    for item in report["items"]:
        matches = []
        for match in item["matches"]:
            item_thumb = asset_thumb = None
            if pairs < MAX_HTML_PAIRS:
                pairs += 1
                item_thumb = _legacy_data_uri(thumbs.get(item["item"]))
                sha = match.get("asset_sha256")
                if store is not None and sha:
                    if sha not in asset_thumbs:
                        asset_thumbs[sha] = _legacy_data_uri(_legacy_asset_thumbnail(store, sha))
                    asset_thumb = asset_thumbs[sha]
            matches.append({"match": match, "item_thumb": item_thumb, "asset_thumb": asset_thumb})
        rows.append({"item": item, "matches": matches})
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_LEGACY_HTML).render(report=report, rows=rows, verdicts=VERDICTS)


def first_screen(page: Any, path: Path, selector: str) -> tuple[float, float]:
    """(seconds to the first row visible, seconds to the load event) from navigation start."""
    started = time.perf_counter()
    page.goto(path.as_uri(), wait_until="commit", timeout=600_000)
    page.wait_for_selector(selector, state="visible", timeout=600_000)
    shown = time.perf_counter() - started
    page.wait_for_load_state("load", timeout=600_000)
    loaded = time.perf_counter() - started
    return shown, loaded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        store = BlobStore(root / "blobs")
        with factory.begin() as session:
            job_id = synthetic.make_job(session, store, items=args.items,
                                        folder=root / "dataset")
        with factory() as session:
            job = clearance.get_job(session, job_id)
            started = time.perf_counter()  # both timings include building the JSON report
            new_html, _ = clearance.render_report(session, job, "html", store=store)
            new_render = time.perf_counter() - started
            started = time.perf_counter()
            old_html = legacy_report_html(session, job, build_report(session, job), store=store)
            old_render = time.perf_counter() - started
        new_file, old_file = root / "new.html", root / "old.html"
        new_file.write_text(new_html, encoding="utf-8")
        old_file.write_text(old_html, encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            new_shown, new_loaded = first_screen(page, new_file, "#rows tr")
            height_new = page.evaluate("document.documentElement.scrollHeight")
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            old_shown, old_loaded = first_screen(page, old_file, "tbody tr")
            height_old = page.evaluate("document.documentElement.scrollHeight")
            browser.close()
        engine.dispose()
    mib = 1024 * 1024
    print(f"clearance report, {args.items} items (Chromium headless, 1280x800)")
    print("| page | size | render (server) | first row visible | load event | page height |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| before (baseline) | {len(old_html.encode()) / mib:.1f} MiB | {old_render:.2f} s | "
          f"{old_shown:.2f} s | {old_loaded:.2f} s | {height_old:,} px |")
    print(f"| now | {len(new_html.encode()) / mib:.1f} MiB | {new_render:.2f} s | "
          f"{new_shown:.2f} s | {new_loaded:.2f} s | {height_new:,} px |")
    print(f"first screen: {old_shown / new_shown:.1f}x faster than the baseline; "
          f"page {len(old_html) / len(new_html):.1f}x smaller")


if __name__ == "__main__":
    main()
