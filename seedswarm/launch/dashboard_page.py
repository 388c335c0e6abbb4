"""The validator's dashboard as an HTML page, rendered on the server from `dashboard_data`.

The whole page is in the HTML the server sends (a browser without JavaScript, or a crawler,
sees everything); its small script (dashboard_assets/dashboard.js) fetches `?part=main` every
half round and swaps the new content in, so it updates live without a build step. The loss
curve is an inline SVG with one point per certified round.
"""

from __future__ import annotations

import time
from html import escape
from importlib.resources import files
from typing import Any

ASSETS = ("dashboard.css", "dashboard.js")


def asset(name: str) -> bytes:
    """A static file of the page (its stylesheet, its script), from the package."""
    if name not in ASSETS:
        raise KeyError(name)
    return (files("seedswarm.launch") / "dashboard_assets" / name).read_bytes()


def render_page(data: dict[str, Any]) -> str:
    """The whole page."""
    net = data["network"]
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>seedswarm validator · {escape(net['network_id'])}</title>"
        "<link rel=\"stylesheet\" href=\"/dashboard.css\"></head>"
        f"<body data-refresh-s=\"{data['refresh_s']:.3f}\" data-refreshes=\"0\">"
        "<header><h1>seedswarm validator</h1>"
        "<span id=\"live\" class=\"badge\">server-rendered</span></header>"
        f"<main id=\"main\">{render_main(data)}</main>"
        "<script src=\"/dashboard.js\"></script></body></html>\n"
    )


def render_main(data: dict[str, Any]) -> str:
    """The part the script refreshes."""
    return "".join((
        _summary(data), _health(data), _leaderboard(data), _loss(data["loss"]),
        _timeline(data["timeline"]), _refusals(data["refusals"]), _receipts(data["leaderboard"]),
    ))


def _summary(data: dict[str, Any]) -> str:
    net, me, health = data["network"], data["validator"], data["health"]
    agrees = {True: "agrees with the certified hash", False: "DIFFERS from the certified hash",
              None: "no final round applied yet"}[me["hash_agrees"]]
    ready = "caught up" if me["ready"] else "catching up"
    settled = health["last_settled_epoch"]
    when = time.strftime("%H:%M:%S", time.localtime(data["updated"]))
    return (
        f"<section id=\"summary\" data-round=\"{me['round']}\" "
        f"data-clock-round=\"{net['clock_round']}\" "
        f"data-settled-epoch=\"{'' if settled is None else settled}\">"
        f"<p>network <b>{escape(net['network_id'])}</b> · validator "
        f"<code title=\"{escape(me['key'])}\">{escape(me['key'][:16])}</code> · "
        f"round <b id=\"round\">{me['round']}</b> (clock {net['clock_round']}, epoch "
        f"{net['epoch']}) · {ready} · model <code>{escape(me['model_hash'][:16])}</code> "
        f"{agrees} · rounds of {net['round_length']:g} s, epochs of {net['epoch_length']} "
        f"rounds · as of {when}</p></section>"
    )


def _health(data: dict[str, Any]) -> str:
    h = data["health"]
    share = "-" if h["approving_share"] is None else f"{h['approving_share']:.0%}"
    last = "-" if h["last_final_round"] is None else str(h["last_final_round"])
    chain = (f"<span class=\"bad\">chain unreachable: {escape(h['chain_error'])}</span>"
             if h["chain_error"] else
             "chain not read yet" if h["chain_read_at"] is None else
             f"chain read {time.strftime('%H:%M:%S', time.localtime(h['chain_read_at']))}")
    rows = "".join(
        f"<tr><td><code title=\"{escape(v['key'])}\">{escape(v['key'][:16])}</code></td>"
        f"<td>{escape(v['address'] or '-')}</td><td class=\"num\">{v['stake']:.4g}</td></tr>"
        for v in h["validators"])
    epochs = "".join(
        f"<li>epoch {escape(e)}: {escape(r['stage'])}"
        + (f" ({escape(r['reason'])})" if r["reason"] else "") + "</li>"
        for e, r in data["epochs"].items())
    settled = "-" if h["last_settled_epoch"] is None else str(h["last_settled_epoch"])
    return (
        "<section id=\"health\"><h2>Network health</h2>"
        f"<p>last final round <b id=\"last-final\">{last}</b> · stake approving it "
        f"<b>{share}</b> · validators {len(h['validators'])} (on-chain "
        f"{h['validators_on_chain']}, stake {h['stake_on_chain']:.4g} SEED) · peers heard "
        f"{h['peers_heard']} · last settled epoch {settled} · {chain}</p>"
        "<table><thead><tr><th>validator</th><th>EVM address</th><th>stake</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        f"<ul class=\"epochs\">{epochs}</ul></section>"
    )


def _leaderboard(data: dict[str, Any]) -> str:
    settled = data["health"]["last_settled_epoch"]
    epoch = "-" if settled is None else str(settled)
    head = ("<tr><th>#</th><th>miner</th><th>stake</th><th>score</th><th>rating</th>"
            f"<th>weight</th><th>reward epoch {epoch}</th><th>earned</th><th>claimed</th>"
            "<th>why this score (latest round)</th></tr>")
    rows = []
    for i, m in enumerate(data["leaderboard"], start=1):
        stake = "-" if m["stake"] is None else f"{m['stake']:.4g}"
        reason = m["reason"] or "no contribution scored yet"
        cls = "" if m["reason_class"] in (None, "scored") else " class=\"refused\""
        rows.append(
            f"<tr{cls} data-miner=\"{escape(m['miner'])}\" "
            f"data-address=\"{escape(m['address'] or '')}\" "
            f"data-reward-wei=\"{m['reward_wei']}\" "
            f"data-reward-total-wei=\"{m['reward_total_wei']}\" "
            f"data-claimed-wei=\"{m['claimed_wei']}\" "
            f"data-reason-class=\"{escape(m['reason_class'] or '')}\">"
            f"<td>{i}</td><td><span class=\"addr\">{escape(m['address'] or '-')}</span><br>"
            f"<code title=\"{escape(m['miner'])}\">{escape(m['miner'][:16])}</code></td>"
            f"<td class=\"num\">{stake}</td><td class=\"num\">{m['score']:.4g}</td>"
            f"<td class=\"num\" title=\"mu {m['rating_mu']:.3f}, sigma "
            f"{m['rating_sigma']:.3f}\">{m['rating']:.3f}</td>"
            f"<td class=\"num\">{m['weight']:.1%}</td>"
            f"<td class=\"num\">{m['reward']:.4f}</td>"
            f"<td class=\"num\">{m['reward_total']:.4f}</td>"
            f"<td class=\"num\">{m['claimed']:.4f}</td>"
            f"<td class=\"reason\">{escape(reason)}"
            + ("" if m["reason_round"] is None else f" <small>(round {m['reason_round']})</small>")
            + "</td></tr>")
    return ("<section id=\"leaderboard\"><h2>Leaderboard</h2>"
            "<p class=\"note\">score: this validator's sum for the current epoch; rating: "
            "OpenSkill ordinal (mu − 3σ); weight: share of the epoch's scores; rewards in SEED "
            "as the chain paid them.</p>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></section>")


def _loss(points: list[list[float]]) -> str:
    width, height, pad = 720, 240, 40
    if not points:
        return ("<section id=\"loss\"><h2>Validation loss</h2>"
                "<p>no certified round yet</p></section>")
    rounds = [int(p[0]) for p in points]
    losses = [float(p[1]) for p in points]
    r0, r1 = min(rounds), max(rounds)
    lo, hi = min(losses), max(losses)
    span_r = max(1, r1 - r0)
    span_l = (hi - lo) or 1.0

    def x(r: float) -> float:
        return pad + (r - r0) / span_r * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - (v - lo) / span_l * (height - 2 * pad)

    line = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in zip(rounds, losses, strict=True))
    dots = "".join(
        f"<circle class=\"point\" data-round=\"{r}\" data-loss=\"{v:.6f}\" cx=\"{x(r):.1f}\" "
        f"cy=\"{y(v):.1f}\" r=\"3\"><title>round {r}: {v:.4f}</title></circle>"
        for r, v in zip(rounds, losses, strict=True))
    step = max(1, span_r // 10)
    ticks = "".join(
        f"<text x=\"{x(r):.1f}\" y=\"{height - pad + 16}\" text-anchor=\"middle\">{r}</text>"
        for r in range(r0, r1 + 1, step))
    labels = (f"<text x=\"{pad - 4}\" y=\"{y(hi) + 4:.1f}\" text-anchor=\"end\">{hi:.3f}</text>"
              f"<text x=\"{pad - 4}\" y=\"{y(lo) + 4:.1f}\" text-anchor=\"end\">{lo:.3f}</text>")
    return (
        "<section id=\"loss\"><h2>Validation loss</h2>"
        f"<p class=\"note\">after each certified round (one point per round; {len(points)} "
        "rounds)</p>"
        f"<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" "
        "role=\"img\" aria-label=\"validation loss per round\">"
        f"<line class=\"axis\" x1=\"{pad}\" y1=\"{height - pad}\" x2=\"{width - pad}\" "
        f"y2=\"{height - pad}\"/><line class=\"axis\" x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" "
        f"y2=\"{height - pad}\"/>{ticks}{labels}"
        f"<polyline class=\"curve\" points=\"{line}\"/>{dots}"
        f"<text x=\"{width / 2:.0f}\" y=\"{height - 4}\" text-anchor=\"middle\">round</text>"
        "</svg></section>"
    )


def _timeline(rows: list[dict[str, Any]]) -> str:
    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    body = "".join(
        f"<tr data-round=\"{r['round']}\"><td>{r['round']}</td>"
        f"<td class=\"num\">{r['received']}</td><td class=\"num\">{r['accepted']}</td>"
        f"<td class=\"num\">{r['refused']}</td><td class=\"num\">{r['certified']}</td>"
        f"<td><code>{escape((r['leader'] or '-')[:16])}</code></td>"
        f"<td class=\"num\">{r['approving_share']:.0%} ({len(r['approvers'])})</td>"
        f"<td class=\"num\">{secs(r['scored_after_s'])}</td>"
        f"<td class=\"num\">{secs(r['final_after_s'])}</td></tr>"
        for r in rows)
    return (
        "<section id=\"timeline\"><h2>Round timeline</h2>"
        "<p class=\"note\">received: contributions this validator scored; accepted: what it "
        "would certify; certified: what the final certificate holds, signed by the leader "
        "and approved by the stake shown; times in seconds after the round began.</p>"
        "<table><thead><tr><th>round</th><th>received</th><th>accepted</th><th>refused</th>"
        "<th>certified</th><th>certified by</th><th>approving stake (validators)</th>"
        "<th>scored at</th><th>final at</th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def _refusals(refusals: dict[str, dict[str, int]]) -> str:
    rows = [(stage, reason, n) for stage in ("door", "scoring")
            for reason, n in refusals.get(stage, {}).items()]
    top = max((n for *_, n in rows), default=1)
    body = "".join(
        f"<tr data-reason=\"{escape(reason)}\"><td>{stage}</td><td>{escape(reason)}</td>"
        f"<td class=\"num\">{n}</td><td><span class=\"bar\" style=\"width:"
        f"{100 * n / top:.0f}%\"></span></td></tr>"
        for stage, reason, n in rows)
    if not rows:
        body = "<tr><td colspan=\"4\">nothing refused</td></tr>"
    return (
        "<section id=\"refusals\"><h2>Refusals by reason</h2>"
        "<p class=\"note\">door: refused on arrival (envelope, replay, membership, peer "
        "limits); scoring: scored and paid nothing.</p>"
        "<table><thead><tr><th>stage</th><th>reason</th><th>count</th><th></th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def _receipts(board: list[dict[str, Any]]) -> str:
    parts = []
    for m in board:
        rows = "".join(
            f"<tr><td>{r['round']}</td><td class=\"num\">{r['weight_ppb'] / 1e9:.1%}</td>"
            f"<td>{_yes(r['filters_passed'])}</td><td>{_yes(r['verified'])}</td>"
            f"<td class=\"num\">{r['loss_delta_own']:.4g}</td>"
            f"<td class=\"num\">{r['loss_delta_random']:.4g}</td>"
            f"<td class=\"num\">{r['influence']:.4g}</td>"
            f"<td class=\"reason\">{escape(r['reason'])}</td></tr>"
            for r in m["receipts"])
        label = m["address"] or m["miner"][:16]
        parts.append(
            f"<details data-miner=\"{escape(m['miner'])}\"><summary>{escape(label)}: "
            f"{escape(m['reason'] or 'no receipt yet')}</summary>"
            "<table><thead><tr><th>round</th><th>weight</th><th>filters</th><th>verified</th>"
            "<th>Δloss own</th><th>Δloss random</th><th>influence</th><th>why</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></details>")
    return ("<section id=\"receipts\"><h2>Receipts</h2><p class=\"note\">each miner's latest "
            "score receipts from this validator (newest first)</p>"
            f"{''.join(parts)}</section>")


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[value]
