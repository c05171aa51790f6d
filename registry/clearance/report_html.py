"""The HTML clearance report: one standalone page that stays usable at 100,000 items.

The page opens on the summary, then the items that need someone (blocked, review, error) before
the clear ones. Rows are not written out one by one: the items travel as one compact JSON block
(assets, explanations and rightsholders stored once, referenced by number) and a small script
draws one page of rows at a time, with filters (verdict, rightsholder, signal, text) and sorts.
The first page is also rendered on the server, so the first screen shows without the script.

Each match reads by its kind (`registry.fingerprint.MatchKind`): "a copy of <asset title>" (an
identical file, a geometrically verified region, or a hash well inside the threshold), "derived
from <asset title>" (a verified region of an edited version) or "similar to <asset title>" (a
hash near the threshold, not verified: always review), with the asset's rightsholder.
Thumbnails are inline `data:` URIs (no network), re-encoded small, for at most MAX_THUMBNAILS
items (blocked and review first) and each matched asset once; the matched region is boxed on
the item's thumbnail.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog.models import Asset, Rightsholder
from registry.clearance.datasets import DatasetItem, read_item
from registry.clearance.models import VERDICTS, ClearanceItem, ClearanceJob
from registry.clearance.reports import match_kind
from registry.clearance.runner import dataset_of
from registry.errors import RegistryError

MAX_THUMBNAILS = 300  # item thumbnails inlined (blocked and review first)
THUMB_PX = 112
PAGE_ROWS = 50
VERDICT_ORDER = {"blocked": 0, "review": 1, "error": 2, "clear": 3}
KIND_WORDS = {"copy": "a copy of", "derivative": "derived from", "similar": "similar to"}
def _small_jpeg(data: bytes | None) -> tuple[str | None, tuple[int, int] | None]:
    """(data URI of a THUMB_PX re-encode, (width, height) of the stored thumbnail)."""
    if not data:
        return None, None
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, UnidentifiedImageError):
        return None, None
    size = image.size
    small = image.convert("RGB")
    small.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode(), size


def _asset_thumbnail(store: Any, sha256: str) -> str | None:
    from registry.media import load_image

    try:
        path = store.path(sha256)
        image = load_image(path, name=str(path), draft_size=(THUMB_PX, THUMB_PX))
    except (RegistryError, OSError):
        return None
    image.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _item_size(source: DatasetItem | None) -> tuple[int, int] | None:
    """The item's own pixel size (regions are in its pixels, after EXIF orientation), read from
    its header; None when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    if source is None:
        return None
    got = read_item(source, max_bytes=256 * 1024 * 1024)
    if got.data is None:
        return None
    try:
        image = Image.open(io.BytesIO(got.data))
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _sources(job: ClearanceJob) -> dict[str, DatasetItem]:
    try:
        return {item.key: item for item in dataset_of(job).items()}
    except RegistryError:
        return {}


def _compact(report: dict[str, Any], assets: dict[int, dict[str, Any]]
             ) -> tuple[list[list[Any]], list[str], list[str]]:
    """Items as arrays: [id, key, verdict, machine verdict, error, matches, signals, review];
    a match is [asset id, signal, distance, decision, explanation no., region, transform, kind].
    Explanations and signal labels are stored once (returned lists)."""
    explanations: dict[str, int] = {}
    labels: dict[str, int] = {}
    rows = []
    for item in report["items"]:
        matches = []
        for m in item["matches"]:
            text = str(m.get("explanation") or "")
            number = explanations.setdefault(text, len(explanations))
            matches.append([m["asset_id"], m["signal"], m["distance"], m["decision"], number,
                            m.get("region"), m.get("transform"), match_kind(m)])
        signals = []
        for s in item.get("signals") or []:
            label = f"{s['signal']}: {s['permission']} ({s['value']})"
            signals.append(labels.setdefault(label, len(labels)))
        review = item.get("review")
        rows.append([item["item"], item["key"], item["verdict"], item["machine_verdict"],
                     item["error"], matches, signals,
                     [review["decision"], review["by"], review["comment"]] if review else None])
    return rows, list(explanations), list(labels)


def _assets(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start:start + 1000])
        rows = session.execute(
            select(Asset.id, Asset.title, Asset.sha256, Rightsholder.name)
            .join(Rightsholder, Asset.rightsholder_id == Rightsholder.id, isouter=True)
            .where(Asset.id.in_(chunk)))
        for asset_id, title, sha, holder in rows:
            found[asset_id] = {"title": title or f"asset {asset_id}", "sha256": sha,
                               "rightsholder": holder or "unknown rightsholder"}
    return found


def render_html(session: Session, job: ClearanceJob, report: dict[str, Any], *,
                store: Any | None) -> str:
    """The standalone page (see the module docstring)."""
    import jinja2

    asset_ids = sorted({int(m["asset_id"]) for i in report["items"] for m in i["matches"]})
    assets = _assets(session, asset_ids)
    for asset_id in asset_ids:
        assets.setdefault(asset_id, {"title": f"asset {asset_id} (no longer in the catalog)",
                                     "sha256": None, "rightsholder": "unknown rightsholder"})
    rows, explanations, labels = _compact(report, assets)
    order = sorted(range(len(rows)), key=lambda n: (VERDICT_ORDER.get(rows[n][2], 9), n))
    thumbs: dict[int, Any] = {}
    wanted = [rows[n][0] for n in order if rows[n][5]][:MAX_THUMBNAILS]
    stored: dict[int, bytes | None] = {}
    for start in range(0, len(wanted), 1000):
        for row_id, thumbnail in session.execute(
                select(ClearanceItem.id, ClearanceItem.thumbnail).where(
                    ClearanceItem.job_id == job.id,
                    ClearanceItem.id.in_(wanted[start:start + 1000]))):
            stored[row_id] = thumbnail
    by_id = {item["item"]: item for item in report["items"]}
    sources: dict[str, DatasetItem] | None = None
    for row_id in wanted:
        uri, _ = _small_jpeg(stored.get(row_id))
        if uri is None:
            continue
        entry: dict[str, Any] = {"src": uri}
        regions = [m.get("region") for m in by_id[row_id]["matches"] if m.get("region")]
        if regions:
            if sources is None:
                sources = _sources(job)
            size = _item_size(sources.get(by_id[row_id]["key"]))
            if size is not None:
                entry["size"] = list(size)
        thumbs[row_id] = entry
    asset_thumbs = {}
    if store is not None:
        for asset_id, asset in list(assets.items())[:MAX_THUMBNAILS]:
            if asset["sha256"]:
                asset_thumbs[asset_id] = _asset_thumbnail(store, asset["sha256"])
    holders = sorted({a["rightsholder"] for a in assets.values()})
    signal_names = sorted({f"match: {m[1]}" for r in rows for m in r[5]}
                          | {f"opt-out: {labels[s].split(':', 1)[0]}" for r in rows
                             for s in r[6]})
    payload = {"items": rows, "order": order, "assets": {str(k): v for k, v in assets.items()},
               "explanations": explanations, "signals": labels,
               "thumbs": {str(k): v for k, v in thumbs.items()},
               "assetThumbs": {str(k): v for k, v in asset_thumbs.items() if v},
               "pageRows": PAGE_ROWS}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    data = data.replace("</", "<\\/")  # never close the script element early
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_HTML).render(
        report=report, verdicts=VERDICTS, holders=holders, signal_names=signal_names,
        data=Markup(data), script=Markup(_JS),
        first=[_first_row(rows[n], assets, explanations, labels) for n in order[:PAGE_ROWS]],
        page_rows=PAGE_ROWS, total=len(rows))


def _first_row(row: list[Any], assets: dict[int, dict[str, Any]], explanations: list[str],
               labels: list[str]) -> dict[str, Any]:
    """One row for the server-rendered first page (same words as the script's rows)."""
    matches = []
    for m in row[5]:
        asset = assets.get(int(m[0]), {})
        matches.append({"kind": KIND_WORDS.get(m[7], "similar to"),
                        "title": asset.get("title"), "holder": asset.get("rightsholder"),
                        "signal": m[1], "distance": m[2], "decision": m[3],
                        "explanation": explanations[m[4]]})
    return {"key": row[1], "verdict": row[2], "error": row[4], "matches": matches,
            "signals": [labels[s] for s in row[6]],
            "review": row[7]}


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clearance report: job {{ report.job.id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem;margin:.2rem 0}.meta{color:#444;margin:.3rem 0 .8rem}
.cards{display:flex;gap:.6rem;flex-wrap:wrap;margin:.6rem 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.4rem .8rem;min-width:6rem;cursor:pointer}
.card b{display:block;font-size:1.3rem}
.clear{color:#176f2c}.blocked{color:#b00020}.review{color:#9a6200}.error{color:#555}
.controls{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center;margin:.6rem 0;
position:sticky;top:0;background:#fff;padding:.4rem 0;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border-bottom:1px solid #e4e4e4;padding:.3rem .4rem;vertical-align:top;text-align:left;
font-size:.85rem;overflow-wrap:anywhere}
th{background:#f6f6f6}col.k{width:34%}col.v{width:9%}col.m{width:57%}
.thumbs{display:flex;gap:.3rem;float:left;margin-right:.5rem}
.tb{position:relative;display:inline-block;line-height:0}
.tb img{max-width:112px;max-height:112px;border:1px solid #999}
.box{position:absolute;border:2px solid #e00;box-sizing:border-box}
.kind{font-weight:600}.small{color:#555;font-size:.78rem}
.pager{margin:.6rem 0;display:flex;gap:.5rem;align-items:center}
</style></head><body>
<h1>Clearance report: job {{ report.job.id }}</h1>
<p class="meta">Use <b>{{ report.job.use }}</b> by licensee <b>{{ report.job.licensee }}</b>
{%- if report.job.model %}, model <b>{{ report.job.model }}</b>{% endif %}; status
{{ report.job.status }}. Dataset <code>{{ report.dataset.uri.rsplit('/', 1)[-1] }}</code>
({{ report.dataset.kind }}, {{ report.dataset["items"] }} items){% if report.dataset.digest %},
digest <code title="{{ report.dataset.digest.sha256 }}">sha256:{{
report.dataset.digest.sha256[:16] }}…</code>{% endif %}.</p>
<div class="cards">{% for v in verdicts %}<div class="card {{ v }}" data-verdict="{{ v }}">
{{ v }}<b>{{ report.summary[v] }}</b></div>{% endfor %}<div class="card" data-verdict="">
total<b>{{ report.summary.total }}</b></div></div>
<div class="controls">
<label>verdict <select id="f-verdict"><option value="">all</option>{% for v in verdicts %}
<option>{{ v }}</option>{% endfor %}</select></label>
<label>rightsholder <select id="f-holder"><option value="">all</option>{% for h in holders %}
<option>{{ h }}</option>{% endfor %}</select></label>
<label>signal <select id="f-signal"><option value="">all</option>{% for s in signal_names %}
<option>{{ s }}</option>{% endfor %}</select></label>
<label>search <input id="f-text" type="search" placeholder="item key"></label>
<label>sort <select id="f-sort"><option value="verdict">verdict (blocked first)</option>
<option value="key">item key</option><option value="holder">rightsholder</option>
<option value="signal">signal</option></select></label>
</div>
<div class="pager"><button id="prev">&larr; previous</button><span id="where">items 1-{{
first|length }} of {{ total }}</span><button id="next">next &rarr;</button></div>
<table><colgroup><col class="k"><col class="v"><col class="m"></colgroup>
<thead><tr><th>item</th><th>verdict</th><th>studio content, decision and why</th></tr></thead>
<tbody id="rows">{% for row in first %}<tr><td><code>{{ row.key }}</code>
{% if row.error %}<br><span class="error">{{ row.error }}</span>{% endif %}
{% for s in row.signals %}<br><span class="small">opt-out {{ s }}</span>{% endfor %}</td>
<td class="{{ row.verdict }}">{{ row.verdict }}{% if row.review %}<br><span class="small">
reviewed {{ row.review[0] }} by {{ row.review[1] }}: {{ row.review[2] }}</span>{% endif %}</td>
<td>{% for m in row.matches %}<div><span class="kind">{{ m.kind }} “{{ m.title }}”</span>
({{ m.holder }}) by {{ m.signal }}, distance {{ m.distance }}: <b>{{ m.decision }}</b>
<span class="small">{{ m.explanation }}</span></div>{% else %}-{% endfor %}</td></tr>
{% endfor %}</tbody></table>
<div class="pager"><button id="prev2">&larr; previous</button>
<button id="next2">next &rarr;</button></div>
<script id="report-data" type="application/json">{{ data }}</script>
<script>{{ script }}</script>
</body></html>
"""

_JS = r"""
(function(){
var D=JSON.parse(document.getElementById('report-data').textContent);
var I=D.items,A=D.assets,E=D.explanations,S=D.signals,T=D.thumbs,AT=D.assetThumbs,
 KW={copy:"a copy of",derivative:"derived from",similar:"similar to"};
var page=0,view=D.order.slice(),per=D.pageRows,rank={blocked:0,review:1,error:2,clear:3};
function $(id){return document.getElementById(id)}
function esc(s){return String(s==null?'':s).replace(/[&<>"']/g,function(c){
 return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]})}
function holders(r){return r[5].map(function(m){var a=A[m[0]];return a?a.rightsholder:''})}
function sigs(r){return r[5].map(function(m){return 'match: '+m[1]}).concat(
 r[6].map(function(s){return 'opt-out: '+S[s].split(':')[0]}))}
function thumb(r){var t=T[r[0]];if(!t)return '';
 var h='<span class="tb"><img alt="dataset item" src="'+t.src+'">';
 if(t.size){r[5].forEach(function(m){var g=m[5];if(g&&g.length==4){
 h+='<span class="box" style="left:'+(100*g[0]/t.size[0])+'%;top:'+(100*g[1]/t.size[1])+
 '%;width:'+(100*g[2]/t.size[0])+'%;height:'+(100*g[3]/t.size[1])+'%"></span>'}})}
 return h+'</span>'}
function row(r){var m=r[5].map(function(m){var a=A[m[0]]||{title:'asset '+m[0],rightsholder:''};
 var at=AT[m[0]]?'<span class="tb"><img alt="catalog asset" src="'+AT[m[0]]+'"></span>':'';
 return '<div>'+at+' <span class="kind">'+(KW[m[7]]||'similar to')+' “'+
 esc(a.title)+'”</span> ('+esc(a.rightsholder)+') by '+esc(m[1])+', distance '+esc(m[2])+
 (m[6]?', '+esc(m[6]):'')+': <b>'+esc(m[3])+'</b> <span class="small">'+esc(E[m[4]])+
 '</span></div>'}).join('');
 var left='<code>'+esc(r[1])+'</code>'+(r[4]?'<br><span class="error">'+esc(r[4])+'</span>':'')+
 r[6].map(function(s){return '<br><span class="small">opt-out '+esc(S[s])+'</span>'}).join('');
 var rv=r[7]?'<br><span class="small">reviewed '+esc(r[7][0])+' by '+esc(r[7][1])+': '+
 esc(r[7][2])+'</span>':'';
 return '<tr><td>'+left+'</td><td class="'+r[2]+'">'+r[2]+rv+'</td><td>'+
 (r[5].length?'<div class="thumbs">'+thumb(r)+'</div>'+m:'-')+'</td></tr>'}
function apply(){var v=$('f-verdict').value,h=$('f-holder').value,s=$('f-signal').value,
 q=$('f-text').value.toLowerCase(),o=$('f-sort').value;
 view=D.order.filter(function(n){var r=I[n];return (!v||r[2]==v)&&(!h||holders(r).indexOf(h)>=0)
 &&(!s||sigs(r).indexOf(s)>=0)&&(!q||r[1].toLowerCase().indexOf(q)>=0)});
 var key={key:function(r){return r[1]},holder:function(r){return holders(r)[0]||'\uffff'},
 signal:function(r){return sigs(r)[0]||'\uffff'}}[o];
 if(key){view.sort(function(a,b){var x=key(I[a]),y=key(I[b]);return x<y?-1:x>y?1:a-b})}
 page=0;draw()}
function draw(){var start=page*per,part=view.slice(start,start+per);
 $('rows').innerHTML=part.map(function(n){return row(I[n])}).join('');
 $('where').textContent=view.length?('items '+(start+1)+'-'+(start+part.length)+' of '+
 view.length):'no items';}
function go(d){var last=Math.max(0,Math.ceil(view.length/per)-1);page=Math.min(last,
 Math.max(0,page+d));draw();window.scrollTo(0,0)}
['f-verdict','f-holder','f-signal','f-sort'].forEach(function(id){$(id).onchange=apply});
$('f-text').oninput=apply;$('prev').onclick=$('prev2').onclick=function(){go(-1)};
$('next').onclick=$('next2').onclick=function(){go(1)};
Array.prototype.forEach.call(document.querySelectorAll('.card'),function(c){c.onclick=function(){
 $('f-verdict').value=c.getAttribute('data-verdict');apply()}});
draw();document.body.setAttribute('data-ready','1');
})();
"""
