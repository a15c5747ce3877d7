"""The listening report's HTML: one static page, no server, no network.

:func:`render` turns a :class:`Page` (plain data: summaries, mixtures with their
players and figures, run facts) into one HTML document. Every ``href`` in a
:class:`Page` is a path relative to the page, so the folder opens from
``file://`` and can be copied or zipped whole. The page loads nothing from the
network: its style sheet and its one script (the table sort, a few lines of
plain JavaScript) are inline. Text is HTML-escaped here, in one place.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math

from speechsep.eval.evaluation import SILENT_BIN_NOTE

PAIR_TYPES = ("female-female", "male-male", "female-male")
# (summary key, column heading, digits) of the comparison table
SUMMARY_COLUMNS = (("snr_improvement", "SNRi (dB)", 2), ("si_sdr_improvement", "SI-SDRi (dB)", 2),
                   ("sdr_improvement", "SDRi (dB)", 2), ("stoi_improvement", "STOIi", 3),
                   ("accuracy_fixed", "acc fixed", 3), ("accuracy_pit", "acc PIT", 3))
SUMMARY_LEGEND = ("Each cell is the mean ± standard deviation over the mixtures. SNRi, SI-SDRi and SDRi: how much "
                  "the estimates improve on the unprocessed mixture, in dB (higher is better); STOIi: the same for "
                  "intelligibility (STOI, 0 to 1); acc fixed and acc PIT: the share of active time-frequency bins "
                  "given to the right talker, in the references' order and in the best order. SDRi female-female, "
                  "male-male, female-male: the mean SDRi over the mixtures of that pair of voices, their number "
                  "after n=. Oracle rows separate with masks computed from the references (ibm: the ideal binary "
                  "mask, the ceiling of a binary-mask method; irm: the ideal ratio mask; mixture: no separation).")
MIXTURE_LEGEND = ("pair: FF female-female, MM male-male, FM female-male. For each run, SDRi and SI-SDRi are its "
                  "improvement on that mixture in dB, STOIi in STOI. Click a column heading to sort; a linked "
                  "mixture has players below.")
# (per-mixture row key, heading, digits) shown for each run of a mixture
MIXTURE_METRICS = (("sdr_improvement", "SDRi", 2), ("si_sdr_improvement", "SI-SDRi", 2),
                   ("stoi_improvement", "STOIi", 3))

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var descending = header.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
table.summary td { white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; }
thead th { background: #f0f0f0; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " \\2195"; color: #999; }
table.sortable thead th[aria-sort=ascending]::after { content: " \\2191"; color: #000; }
table.sortable thead th[aria-sort=descending]::after { content: " \\2193"; color: #000; }
.scroll { overflow-x: auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1em; }
.legend { font-size: 0.85em; color: #444; max-width: 70em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 0.8em; background: #fafafa; }
.card h4 { margin: 0 0 0.4em; }
.player { display: flex; align-items: center; gap: 0.5em; margin: 0.2em 0; }
.player span { min-width: 7em; font-size: 0.9em; }
.player audio { height: 2.2em; flex: 1; }
img { max-width: 100%; height: auto; }
.note { background: #fff4ce; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; margin: 0.5em 0; }
.problem { background: #fde2e1; border-left: 4px solid #c44e52; padding: 0.4em 0.8em; margin: 0.5em 0; }
.scores { font-size: 0.9em; margin: 0.3em 0; }
details { margin: 0.5em 0; }
"""


@dataclasses.dataclass
class Audio:
    """One player: a label and the wav's path relative to the page (None: missing, shown as a note)."""

    label: str
    href: str | None
    note: str = ""


@dataclasses.dataclass
class Card:
    """One box of a mixture: the mixture and references, or one run's estimates.

    ``scores`` maps a per-mixture row key (:data:`MIXTURE_METRICS`) to a value;
    ``images`` are ``(alt text, href)`` figures (spectrograms, masks).
    """

    title: str
    audios: list[Audio]
    scores: dict = dataclasses.field(default_factory=dict)
    images: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    problem: str | None = None


@dataclasses.dataclass
class Mixture:
    """One test mixture of the report: its anchor (``id``), headline, facts and cards."""

    anchor: str
    title: str
    facts: str
    cards: list[Card]


@dataclasses.dataclass
class RunFacts:
    """One run's section: ``facts`` ``[(label, text)]`` (steps, minutes, data...), its settings
    (the ``config.json`` fields it used: :func:`speechsep.report.build.applied_settings`), the
    training-curve figure's href, and a problem to show."""

    name: str
    path: str
    facts: list[tuple[str, str]]
    config: dict
    curve: str | None = None
    problem: str | None = None


@dataclasses.dataclass
class Page:
    """Everything the report shows.

    ``summaries``: ``{row name: evaluation summary}`` (:func:`speechsep.eval.evaluation.summarise`),
    in table order. ``table_columns``: ``[(key, heading, digits)]`` of the
    per-mixture table; ``table_rows``: dicts with those keys, ``"anchor"`` (a
    :class:`Mixture` id, if that mixture has players) and ``"label"``.
    """

    title: str
    intro: list[str]
    summaries: dict
    figure: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    table_columns: list[tuple[str, str, int | None]] = dataclasses.field(default_factory=list)
    table_rows: list[dict] = dataclasses.field(default_factory=list)
    mixtures: list[Mixture] = dataclasses.field(default_factory=list)
    runs: list[RunFacts] = dataclasses.field(default_factory=list)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _number(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _mean(summary: dict, key: str):
    stats = summary.get(key)
    return None if stats is None else stats.get("mean")


def summary_table(summaries: dict) -> str:
    """The comparison table: one row per method, mean ± std overall, then SDRi per pair type."""
    heads = ["method", "mixtures"] + [head for _, head, _ in SUMMARY_COLUMNS] + [f"SDRi {p}" for p in PAIR_TYPES]
    lines = ["<div class=scroll><table class=summary><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads)
             + "</tr></thead><tbody>"]
    for name, summary in summaries.items():
        overall = summary.get("overall", {})
        cells = [f"<td class=text>{_e(name)}</td>", f"<td>{_e(overall.get('mixtures', '–'))}</td>"]
        for key, _, digits in SUMMARY_COLUMNS:
            stats = overall.get(key)
            cells.append("<td>–</td>" if stats is None else
                         f"<td>{_number(stats['mean'], digits)} ± {_number(stats['std'], digits)}</td>")
        for pair in PAIR_TYPES:
            block = summary.get("by_pair_type", {}).get(pair)
            value = None if block is None else _mean(block, "sdr_improvement")
            count = "" if block is None else f" (n={block.get('mixtures')})"
            cells.append(f"<td>{_number(value)}{_e(count) if value is not None else ''}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def mixture_table(columns, rows) -> str:
    """The sortable per-mixture table; each cell carries its raw ``data-value`` for the sort."""
    lines = ["<div class=scroll><table class=sortable id=mixture-table><thead><tr><th>mixture</th>"
             + "".join(f"<th>{_e(head)}</th>" for _, head, _ in columns) + "</tr></thead><tbody>"]
    for row in rows:
        label = _e(row["label"])
        first = f"<a href='#{_e(row['anchor'])}'>{label}</a>" if row.get("anchor") else label
        cells = [f"<td class=text data-value='{_e(row.get('order', row['label']))}'>{first}</td>"]
        for key, _, digits in columns:
            value = row.get(key)
            if digits is None:
                cells.append(f"<td class=text data-value='{_e(value if value is not None else '')}'>"
                             f"{_e(value if value is not None else '–')}</td>")
            else:
                raw = "" if value is None or not math.isfinite(float(value)) else repr(float(value))
                cells.append(f"<td data-value='{raw}'>{_number(value, digits)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _card(card: Card) -> str:
    parts = [f"<div class=card><h4>{_e(card.title)}</h4>"]
    if card.problem:
        parts.append(f"<div class=problem>{_e(card.problem)}</div>")
    if card.scores:
        parts.append("<div class=scores>" + ", ".join(
            f"{_e(head)} {_number(card.scores.get(key), digits)}" for key, head, digits in MIXTURE_METRICS
            if key in card.scores) + "</div>")
    for audio in card.audios:
        if audio.href is None:
            parts.append(f"<div class=player><span>{_e(audio.label)}</span><em>{_e(audio.note or 'missing')}"
                         "</em></div>")
        else:
            parts.append(f"<div class=player><span>{_e(audio.label)}</span>"
                         f"<audio controls preload=metadata src='{_e(audio.href)}'></audio></div>")
    parts += [_image(href, alt) for alt, href in card.images]
    parts.append("</div>")
    return "\n".join(parts)


def _image(href: str, alt: str) -> str:
    """A figure that opens full size: the image linked to its own PNG."""
    return f"<a href='{_e(href)}' title='open full size'><img src='{_e(href)}' alt='{_e(alt)}' loading=lazy></a>"


def _config_table(config: dict) -> str:
    rows = "".join(f"<tr><td>{_e(key)}</td><td class=text>{_e(json.dumps(value))}</td></tr>"
                   for key, value in sorted(config.items()))
    return f"<table><tbody>{rows}</tbody></table>"


def render(page: Page) -> str:
    """The whole HTML document of ``page`` (UTF-8 text)."""
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           "<meta name=viewport content='width=device-width, initial-scale=1'>",
           f"<title>{_e(page.title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{_e(page.title)}</h1>"]
    out += [f"<p>{_e(text)}</p>" for text in page.intro]
    out += [f"<div class=note>{_e(text)}</div>" for text in page.notes]
    out.append("<h2 id=comparison>Comparison</h2>")
    out.append(summary_table(page.summaries))
    out.append(f"<p class=legend>{_e(SUMMARY_LEGEND)} {_e(SILENT_BIN_NOTE)}.</p>")
    if page.figure:
        out.append(_image(page.figure, "improvement over the mixture per method"))
    if page.table_rows:
        out.append(f"<h2 id=mixtures>Per mixture</h2><p class=legend>{_e(MIXTURE_LEGEND)}</p>")
        out.append(mixture_table(page.table_columns, page.table_rows))
    if page.mixtures:
        out.append("<h2 id=listen>Listen</h2><p class=legend>Estimates are ordered to match the references. "
                   "Spectrograms: time across, frequency up (0 to 4 kHz); masks: the share of each bin given to "
                   "that estimate. Click a figure to open it full size.</p>")
    for mixture in page.mixtures:
        out.append(f"<section id='{_e(mixture.anchor)}'><h3>{_e(mixture.title)}</h3><p>{_e(mixture.facts)}</p>"
                   "<div class=cards>")
        out += [_card(card) for card in mixture.cards]
        out.append("</div></section>")
    if page.runs:
        out.append("<h2 id=runs>Runs</h2>")
    for run in page.runs:
        out.append(f"<section class=run><h3>{_e(run.name)}</h3><p><code>{_e(run.path)}</code></p>")
        if run.problem:
            out.append(f"<div class=problem>{_e(run.problem)}</div>")
        if run.facts:
            out.append("<table><tbody>" + "".join(f"<tr><td>{_e(k)}</td><td class=text>{_e(v)}</td></tr>"
                                                  for k, v in run.facts) + "</tbody></table>")
        if run.curve:
            out.append(_image(run.curve, f"{run.name}: loss and PIT accuracy per epoch"))
        if run.config:
            out.append("<details><summary>settings (config.json: the fields this run used)</summary>"
                       f"{_config_table(run.config)}</details>")
        out.append("</section>")
    out.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
