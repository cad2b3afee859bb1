"""report: the run as one self-contained HTML page (the ``report`` option, an .html file).

Nothing is fetched when it is opened (no network, no CDN): the styles, the charts and the
little script are all in the file.  The charts are plain SVG drawn here from the summary's
figures (figures.py), one bar per second of sending, so they show without any script; the
tables of rows (the rows that need a person, and for ``plan``/``update`` the changes) are
data in the page, drawn by a few lines of vanilla JavaScript that sort (a click on a header),
filter (a text box and a status list) and page them (a hundred rows at a time: a 100,000-row
table stays fast to open).

Every element a test or a person may look for carries a class and ``data-`` attributes with
the figure it shows (``rect.requests[data-t][data-requests]``).  Nothing secret is in it:
the rows are the results file's (errors already scrubbed), the options ``_shown_options``'s.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict

from .figures import Second
from .models import RowResult
from .record import Summary

#: The background of a status's cell (the results workbook's colours).
STATUS_COLOURS: dict[str, str] = {
    "imported": "#C6EFCE",
    "updated": "#C6EFCE",
    "valid": "#C6EFCE",
    "deleted": "#C6EFCE",
    "restored": "#C6EFCE",
    "would_import": "#C6EFCE",
    "would_update": "#C6EFCE",
    "already_exists": "#DDEBF7",
    "unchanged": "#DDEBF7",
    "invalid": "#FFC7CE",
    "failed": "#FF9999",
    "not_found": "#FFC7CE",
    "not_attempted": "#FFEB9C",
}
_W, _H, _LEFT, _BOTTOM, _TOP = 900, 220, 48, 24, 10

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:960px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.line{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f4f4f4;
padding:8px;white-space:pre-wrap;word-break:break-all}
.exit{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:600}
.ok{background:#C6EFCE}.bad{background:#FFC7CE}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#eee}
table.rows th{cursor:pointer;user-select:none}table.rows th[data-dir=asc]::after{content:" \\25B2"}
table.rows th[data-dir=desc]::after{content:" \\25BC"}
.figs td:first-child,.opts td:first-child{color:#555}
.num{text-align:right;font-variant-numeric:tabular-nums}
svg{background:#fafafa;border:1px solid #ddd}svg text{font-size:11px;fill:#555}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.controls{margin:6px 0}.controls input{width:260px}
.pager button{margin:0 4px}
"""

_JS = """
(function(){
function table(id){
  var box=document.getElementById(id);if(!box)return;
  var data=JSON.parse(document.getElementById(id+'-data').textContent);
  var cols=data.columns,texts=data.texts,rows=data.rows,numeric=data.numeric;
  var tcol=cols.length-1;
  var view=rows.slice(),page=0,size=100,sortCol=-1,dir=1;
  var q=box.querySelector('input'),sel=box.querySelector('select');
  var body=box.querySelector('tbody'),info=box.querySelector('.info');
  var heads=box.querySelectorAll('th');
  function text(r,c){return c===tcol?texts[r[c]].split('\\u0000').join(r[1]):r[c];}
  function apply(){
    var needle=q.value.toLowerCase(),st=sel.value;
    view=rows.filter(function(r){
      if(st&&r[2]!==st)return false;
      if(!needle)return true;
      for(var c=0;c<cols.length;c++){
        var v=text(r,c);if(v!==null&&String(v).toLowerCase().indexOf(needle)>=0)return true;}
      return false;});
    if(sortCol>=0){var c=sortCol,isNum=numeric.indexOf(c)>=0;
      view.sort(function(a,b){var x=text(a,c),y=text(b,c);
        if(isNum){x=x===null?-1:x;y=y===null?-1:y;return (x-y)*dir;}
        return String(x).localeCompare(String(y))*dir;});}
    page=0;draw();}
  function draw(){
    var start=page*size,end=Math.min(view.length,start+size),html=[];
    for(var i=start;i<end;i++){var r=view[i],cells=[];
      for(var c=0;c<cols.length;c++){var v=text(r,c);
        var e=document.createElement('td');e.textContent=v===null?'':v;
        if(c===2){e.className='status';e.style.background=data.colours[v]||'#EDEDED';}
        if(numeric.indexOf(c)>=0)e.classList.add('num');cells.push(e);}
      var tr=document.createElement('tr');cells.forEach(function(e){tr.appendChild(e);});
      html.push(tr);}
    body.replaceChildren.apply(body,html);
    info.textContent=view.length?('rows '+(start+1)+'-'+end+' of '+view.length+
      (view.length<rows.length?' (filtered from '+rows.length+')':'')):'no rows';
    box.querySelector('.prev').disabled=page===0;
    box.querySelector('.next').disabled=end>=view.length;}
  heads.forEach(function(h,i){h.addEventListener('click',function(){
    dir=(sortCol===i)?-dir:1;sortCol=i;
    heads.forEach(function(o){o.removeAttribute('data-dir');});
    h.setAttribute('data-dir',dir>0?'asc':'desc');apply();});});
  q.addEventListener('input',apply);sel.addEventListener('change',apply);
  box.querySelector('.prev').addEventListener('click',function(){page--;draw();});
  box.querySelector('.next').addEventListener('click',function(){page++;draw();});
  apply();}
table('problems');table('changes');
document.body.setAttribute('data-ready','1');
})();
"""


def render(
    summary: Summary,
    *,
    problems: Iterable[RowResult],
    changes: Iterable[RowResult] | None,
    options: Mapping[str, str],
    title: str,
) -> str:
    """The report page of ``summary``: ``problems`` are the rows that need a person,
    ``changes`` (plan and update) the rows with a change; ``options`` as shown."""
    ok = summary.exit_code == 0
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p><span class="exit {"ok" if ok else "bad"}" id="exit-code" '
        f'data-exit="{summary.exit_code}">exit {summary.exit_code}</span> '
        f"{_e(summary.started_at)} to {_e(summary.finished_at)} "
        f"({summary.duration_seconds:.1f} s)</p>",
        f'<div class="line" id="summary-line">{_e(summary.line())}</div>',
        _counts(summary),
        _figures(summary),
        "<h2>Requests per second</h2>",
        _requests_chart(summary.timeline, summary.settled_rate),
        "<h2>Latency per second</h2>",
        _latency_chart(summary.timeline),
        "<h2>Rows that need a person</h2>",
        _table(
            "problems",
            ["row", "phone_number", "status", "http_status", "attempts", "error"],
            (
                (r.row, r.phone_number, r.status.value, r.http_status, r.attempts, r.error)
                for r in problems
            ),
        ),
    ]
    if changes is not None:
        parts += [
            "<h2>Changes</h2>",
            _table(
                "changes",
                ["row", "phone_number", "status", "changes"],
                ((r.row, r.phone_number, r.status.value, r.changes) for r in changes),
            ),
        ]
    parts += ["<h2>Options</h2>", _pairs("opts", options), f"<script>{_JS}</script>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _counts(summary: Summary) -> str:
    this_run = summary.this_run if summary.this_run is not None else summary.counts
    rows = [
        f'<tr data-status="{_e(s)}" data-count="{n}"><td style="background:'
        f'{STATUS_COLOURS.get(s, "#EDEDED")}">{_e(s)}</td><td class="num">{n}</td>'
        f'<td class="num">{this_run.get(s, 0)}</td></tr>'
        for s, n in summary.counts.items()
        if n
    ]
    head = "<tr><th>status</th><th>rows</th><th>this run</th></tr>"
    body = "".join(rows) or '<tr><td colspan="3">no rows</td></tr>'
    return f'<h2>Rows by status</h2><table id="counts">{head}{body}</table>'


def _figures(summary: Summary) -> str:
    latency = summary.latency or {}
    shown = {
        "requests": str(summary.requests),
        "achieved rate": "" if summary.achieved_rate is None else f"{summary.achieved_rate} req/s",
        "settled rate": "" if summary.settled_rate is None else f"{summary.settled_rate:.1f} req/s",
        "429 answers": str(summary.throttled),
        "responses": ", ".join(f"{code}: {n}" for code, n in summary.responses.items()),
        **{f"latency {name}": f"{value * 1000:.1f} ms" for name, value in latency.items()},
        "aborted": summary.aborted or "",
    }
    return "<h2>Requests</h2>" + _pairs("figures", {k: v for k, v in shown.items() if v})


def _pairs(ident: str, pairs: Mapping[str, str]) -> str:
    cls = "opts" if ident == "opts" else "figs"
    body = "".join(
        f'<tr data-name="{_e(k)}"><td>{_e(k)}</td><td>{_e(v)}</td></tr>' for k, v in pairs.items()
    )
    return f'<table id="{ident}" class="{cls}">{body}</table>'


def _frame(height_of: float, unit: str, seconds: int) -> list[str]:
    """The axes: the top value on the left, seconds along the bottom."""
    plot_h = _H - _BOTTOM - _TOP
    return [
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W}" y2="{_TOP + plot_h}" stroke="#999"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#999"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 10}" text-anchor="end">{_e(_short(height_of))}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h / 2}" text-anchor="end">{_e(unit)}</text>',
        f'<text x="{_LEFT}" y="{_H - 6}">0 s</text>',
        f'<text x="{_W - 4}" y="{_H - 6}" text-anchor="end">{seconds} s</text>',
    ]


def _short(value: float) -> str:
    return f"{value:.3g}"


#: At most this many bars (or points) a chart: a longer run's seconds are drawn in bins of
#: several seconds each (``data-span``), so the page stays small however long the run.
MAX_BARS = 1000


class _Bin(TypedDict):
    t: int
    span: int
    requests: int
    throttled: int
    p50: float
    p95: float
    p99: float


def bins(timeline: Sequence[Second], max_bars: int = MAX_BARS) -> list[_Bin]:
    """The timeline as the charts draw it: a bin per second, or per ``span`` seconds when
    the run sent for longer than ``max_bars`` seconds (requests and 429s summed, each
    percentile the highest of its seconds')."""
    if not timeline:
        return []
    seconds = timeline[-1]["t"] + 1
    span = max(1, -(-seconds // max_bars))
    out: list[_Bin] = []
    for s in timeline:
        t = s["t"] // span * span
        if out and out[-1]["t"] == t:
            b = out[-1]
            b["requests"] += s["requests"]
            b["throttled"] += s["throttled"]
            b["p50"], b["p95"] = max(b["p50"], s["p50"]), max(b["p95"], s["p95"])
            b["p99"] = max(b["p99"], s["p99"])
        else:
            out.append(
                _Bin(
                    t=t,
                    span=span,
                    requests=s["requests"],
                    throttled=s["throttled"],
                    p50=s["p50"],
                    p95=s["p95"],
                    p99=s["p99"],
                )
            )
    return out


def _requests_chart(timeline: Sequence[Second], settled: float | None) -> str:
    if not timeline:
        return '<p id="requests-chart" class="empty">no request was sent</p>'
    drawn = bins(timeline)
    span = drawn[0]["span"]
    seconds = timeline[-1]["t"] + 1
    top = max(max(b["requests"] / span for b in drawn), settled or 0, 1)
    plot_w, plot_h = _W - _LEFT, _H - _BOTTOM - _TOP
    width = plot_w / seconds * span
    bar = max(width - 0.5, 0.5) if width > 2 else width
    out = [
        f'<svg id="requests-chart" viewBox="0 0 {_W} {_H}" width="100%" data-span="{span}" '
        f'role="img" aria-label="requests and 429 answers per second">'
    ]
    out += _frame(top, "req/s", seconds)
    for b in drawn:
        x = _LEFT + b["t"] / span * width
        h = b["requests"] / span / top * plot_h
        t_h = b["throttled"] / span / top * plot_h
        when = f"{b['t']} s" if span == 1 else f"{b['t']}-{b['t'] + span - 1} s"
        out.append(
            f'<rect class="requests" data-t="{b["t"]}" data-requests="{b["requests"]}" '
            f'data-throttled="{b["throttled"]}" x="{x:.2f}" y="{_TOP + plot_h - h:.2f}" '
            f'width="{bar:.2f}" height="{h:.2f}" fill="#5b9bd5">'
            f"<title>{when}: {b['requests']} requests, {b['throttled']} 429</title></rect>"
        )
        if b["throttled"]:
            out.append(
                f'<rect class="throttled" data-t="{b["t"]}" data-throttled="{b["throttled"]}" '
                f'x="{x:.2f}" y="{_TOP + plot_h - t_h:.2f}" width="{bar:.2f}" '
                f'height="{t_h:.2f}" fill="#e0474c"/>'
            )
    if settled:
        y = _TOP + plot_h - settled / top * plot_h
        out.append(
            f'<line id="settled-rate" data-rate="{settled:g}" x1="{_LEFT}" y1="{y:.2f}" '
            f'x2="{_W}" y2="{y:.2f}" stroke="#333" stroke-dasharray="4 3"/>'
        )
    out.append("</svg>")
    per = "" if span == 1 else f" (bars of {span} s, drawn per second)"
    legend = (
        '<div class="legend"><span><i style="background:#5b9bd5"></i>requests answered</span>'
        '<span><i style="background:#e0474c"></i>of which 429</span>'
        + (f"<span>- - - settled rate {settled:.1f} req/s</span>" if settled else "")
        + f"{per}</div>"
    )
    return "".join(out) + legend


_LINES = {"p50": "#2e7d32", "p95": "#ef6c00", "p99": "#c62828"}


def _latency_chart(timeline: Sequence[Second]) -> str:
    if not timeline:
        return '<p id="latency-chart" class="empty">no request was sent</p>'
    drawn = bins(timeline)
    span = drawn[0]["span"]
    seconds = timeline[-1]["t"] + 1
    top = max(max(b["p99"] for b in drawn), 1e-6) * 1000
    plot_w, plot_h = _W - _LEFT, _H - _BOTTOM - _TOP
    width = plot_w / seconds
    out = [
        f'<svg id="latency-chart" viewBox="0 0 {_W} {_H}" width="100%" data-span="{span}" '
        'role="img" aria-label="latency percentiles per second">'
    ]
    out += _frame(top, "ms", seconds)
    for name, colour in _LINES.items():
        points = " ".join(
            f"{_LEFT + (b['t'] + span / 2) * width:.1f},"
            f"{_TOP + plot_h - b[name] * 1000 / top * plot_h:.1f}"  # type: ignore[literal-required]
            for b in drawn
        )
        out.append(
            f'<polyline class="{name}" points="{points}" fill="none" stroke="{colour}" '
            'stroke-width="1.5"/>'
        )
    out.append('<g class="seconds">')
    out += [
        f'<g data-t="{b["t"]}" data-p50="{b["p50"]}" data-p95="{b["p95"]}" '
        f'data-p99="{b["p99"]}"></g>'
        for b in drawn
    ]
    out.append("</g></svg>")
    legend = '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{n}</span>' for n, c in _LINES.items()
    )
    return "".join(out) + legend + "</div>"


def _table(ident: str, columns: list[str], rows: Iterable[tuple[object, ...]]) -> str:
    """A sortable, filterable, paged table: its rows as JSON for the page's script; the
    last column's texts are kept once each (errors repeat), the second is the number."""
    texts: list[str] = []
    index: dict[str, int] = {}
    data: list[list[object]] = []
    statuses: set[str] = set()
    for row in rows:
        *cells, last = row
        # An error quoting the row's own number is kept once per shape: the number is put
        # back by the script (a NUL marks its place), so 100,000 invalid rows stay small.
        text, phone = str(last).replace("\0", " "), str(cells[1])
        if phone and phone in text:
            text = text.replace(phone, "\0")
        at = index.get(text)
        if at is None:
            at = index[text] = len(texts)
            texts.append(text)
        statuses.add(str(cells[2]))
        data.append([*cells, at])
    numeric = [i for i, c in enumerate(columns) if c in ("row", "http_status", "attempts")]
    payload = {
        "columns": columns,
        "rows": data,
        "texts": texts,
        "numeric": numeric,
        "colours": STATUS_COLOURS,
    }
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    options = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in sorted(statuses))
    heads = "".join(f"<th>{_e(c)}</th>" for c in columns)
    return (
        f'<div id="{ident}" class="table" data-rows="{len(data)}">'
        f'<div class="controls"><input type="search" placeholder="filter: any text">'
        f' <select><option value="">every status</option>{options}</select>'
        f' <span class="pager"><button class="prev">&lt; previous</button>'
        f'<button class="next">next &gt;</button></span> <span class="info"></span></div>'
        f'<table class="rows"><thead><tr>{heads}</tr></thead><tbody></tbody></table>'
        f'<script type="application/json" id="{ident}-data">{encoded}</script></div>'
    )
