"""The monthly bulletin (月度通报) of a unit: its indicators against the month before, its child units
ranked with the bottom three named, the most reported matters and the hot spots, with charts;
as a bilingual page (Chinese and Tibetan side by side) and as a PDF. The figures are
storage.indicators'; this module only words and draws them.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.figures import DASH, KEY_FIGURES, change, digits, shown, value_of
from conversations.i18n import LANGUAGES, N_, translate
from storage import indicators
from storage.indicators import Period, Report, Scope
from storage.models import Node

CHART_RATES = ("closed_rate", "on_time_closed_rate", "timely_verification_rate", "satisfaction_rate", "rework_rate")
WORDS = {
    "title": N_("Monthly bulletin"),
    "month": N_("{year}-{month}"),
    "figures": N_("Key indicators"),
    "this_month": N_("This month"),
    "last_month": N_("Last month"),
    "change": N_("Change"),
    "ranking": N_("Units ranked by composite score"),
    "rank": N_("Rank"),
    "unit": N_("Unit"),
    "score": N_("Score"),
    "bottom": N_("Bottom three"),
    "no_bottom": N_("Fewer than four units have a score: no bottom three is named."),
    "matters": N_("Most reported matters"),
    "hot_spots": N_("Hot spots: grids with the most repeat reports"),
    "reports": N_("Reports"),
    "repeats": N_("Repeat reports"),
    "none": N_("None this month."),
    "as_of": N_("Figures as of {time}. A rate without cases to count is shown as —."),
    "charts": N_("Charts"),
    "chart_rates": N_("Key rates, this month and last month (%)"),
    "chart_ranking": N_("Composite score by unit"),
    "chart_matters": N_("Reports by matter"),
}
FONT_FAMILY = ["Noto Sans CJK SC", "Noto Serif Tibetan", "DejaVu Sans"]


@dataclass
class Bulletin:
    node: Node
    period: Period
    report: Report
    previous: Report

    @property
    def month(self) -> str:
        return self.period.label


async def build(session: AsyncSession, node: Node, period: Period, *, now: datetime | None = None) -> Bulletin:
    scope = Scope(node)
    report = await indicators.compute(session, scope, period, now=now)
    previous = await indicators.compute(session, scope, period.previous(), now=now)
    return Bulletin(node, period, report, previous)


# ---------------------------------------------------------------- wording


def month_name(language: str, period: Period) -> str:
    return translate(language, WORDS["month"], year=digits(language, f"{period.first.year}"),
                     month=digits(language, f"{period.first.month:02d}"))


# ---------------------------------------------------------------- charts


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = FONT_FAMILY
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def both(msgid: str, **params) -> str:
    return " · ".join(translate(lang, msgid, **params) for lang in LANGUAGES)


def unit_label(node: Node) -> str:
    return f"{node.name_zh} {node.name_bo}"


def chart_rates(bulletin: Bulletin, *, dpi: int = 110) -> bytes:
    """Key rates this month and last month, side by side (absent rates are left empty)."""
    plt = _pyplot()
    labels = [name for key, name, _ in KEY_FIGURES if key in CHART_RATES]
    keys = [key for key, _, _ in KEY_FIGURES if key in CHART_RATES]
    now = [100 * (bulletin.report.total.rate(k) or 0) for k in keys]
    before = [100 * (bulletin.previous.total.rate(k) or 0) for k in keys]
    figure, axes = plt.subplots(figsize=(8, 4.6), dpi=dpi)
    positions = range(len(keys))
    axes.barh([p + 0.2 for p in positions], now, height=0.4, color="#8c1d18",
              label=both(WORDS["this_month"]))
    axes.barh([p - 0.2 for p in positions], before, height=0.4, color="#c9a66b",
              label=both(WORDS["last_month"]))
    for position, value, key in zip(positions, now, keys):
        if bulletin.report.total.rate(key) is not None:
            axes.text(value + 1, position + 0.2, f"{value:.1f}", va="center", fontsize=8)
    axes.set_yticks(list(positions), ["\n".join(translate(lang, label) for lang in LANGUAGES) for label in labels])
    axes.set_xlim(0, 110)
    axes.invert_yaxis()
    axes.set_title(both(WORDS["chart_rates"]), fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure, plt)


def chart_ranking(bulletin: Bulletin, *, dpi: int = 110) -> bytes | None:
    plt = _pyplot()
    ranked = bulletin.report.ranked()
    if not ranked:
        return None
    bottom = {n.code for n in bulletin.report.bottom_three()}
    figure, axes = plt.subplots(figsize=(8, max(2.4, 0.55 * len(ranked) + 1.2)), dpi=dpi)
    scores = [score or 0 for _, _, score in ranked]
    colours = ["#b22222" if node.code in bottom else "#2f5d8a" for node, _, _ in ranked]
    axes.barh(range(len(ranked)), scores, color=colours)
    for index, (_, _, score) in enumerate(ranked):
        axes.text((score or 0) + 1, index, DASH if score is None else f"{score:.1f}", va="center", fontsize=8)
    axes.set_yticks(range(len(ranked)), [unit_label(node) for node, _, _ in ranked])
    axes.set_xlim(0, 110)
    axes.invert_yaxis()
    axes.set_title(both(WORDS["chart_ranking"]), fontsize=10)
    return _png(figure, plt)


def chart_matters(bulletin: Bulletin, *, dpi: int = 110) -> bytes | None:
    plt = _pyplot()
    top = bulletin.report.top_matters(8)
    if not top:
        return None
    figure, axes = plt.subplots(figsize=(8, max(2.4, 0.55 * len(top) + 1.2)), dpi=dpi)
    axes.barh(range(len(top)), [n for _, n in top], color="#3c7a4a")
    axes.set_yticks(range(len(top)), [f"{m.name_zh} {m.name_bo}" for m, _ in top])
    for index, (_, count) in enumerate(top):
        axes.text(count, index, f" {count}", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_title(both(WORDS["chart_matters"]), fontsize=10)
    return _png(figure, plt)


CHARTS = {"rates": chart_rates, "ranking": chart_ranking, "matters": chart_matters}


def _png(figure, plt) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


# ---------------------------------------------------------------- the page


def _both_html(msgid: str, tag: str = "span", **params) -> str:
    return "".join(f'<{tag} lang="{"zh-Hans" if lang == "zh" else "bo"}">'
                   f"{html.escape(translate(lang, msgid, **params))}</{tag}>" for lang in LANGUAGES)


def _names_html(zh: str, bo: str) -> str:
    return f'<span lang="zh-Hans">{html.escape(zh)}</span><span lang="bo">{html.escape(bo)}</span>'


def figure_rows(bulletin: Bulletin) -> list[tuple[str, str, dict[str, tuple[str, str, str]]]]:
    """(key, msgid, {language: (this month, last month, change)}) for the key-figures table."""
    rows = []
    for key, msgid, kind in KEY_FIGURES:
        now = value_of(bulletin.report.total, key, bulletin.report.weights)
        before = value_of(bulletin.previous.total, key, bulletin.report.weights)
        rows.append((key, msgid, {lang: (shown(lang, now, kind), shown(lang, before, kind), change(lang, now, before, kind))
                                  for lang in LANGUAGES}))
    return rows


def render_html(bulletin: Bulletin, base: str) -> str:
    """The bilingual page; `base` is the bulletin's own path, e.g. /bulletin/CODE/2026-11."""
    node, report = bulletin.node, bulletin.report
    footer = "".join(f'<p lang="{"zh-Hans" if lang == "zh" else "bo"}">' + html.escape(translate(
        lang, WORDS["as_of"], time=digits(lang, indicators_local(report.as_of)))) + "</p>" for lang in LANGUAGES)
    figures = "".join(
        f"<tr><th>{_both_html(msgid)}</th>" + "".join(f"<td>{html.escape(v)}</td>" for v in values["zh"]) + "</tr>"
        for key, msgid, values in figure_rows(bulletin)
    )
    bottom = {n.code for n in report.bottom_three()}
    ranking = "".join(
        f'<tr class="{"bottom" if n.code in bottom else ""}"><td>{index + 1 if score is not None else DASH}</td>'
        f"<td>{_names_html(n.name_zh, n.name_bo)}</td><td>{DASH if score is None else f'{score:.1f}'}</td>"
        f"<td>{shown('zh', f.rate('on_time_closed_rate'), 'rate')}</td><td>{shown('zh', f.rate('satisfaction_rate'), 'rate')}</td></tr>"
        for index, (n, f, score) in enumerate(report.ranked())
    )
    bottom_names = ", ".join(f"{n.name_zh} ({n.name_bo})" for n in report.bottom_three())
    matters = "".join(f"<tr><td>{_names_html(m.name_zh, m.name_bo)}</td><td>{count}</td></tr>"
                      for m, count in report.top_matters())
    spots = "".join(f"<tr><td>{_names_html(g.name_zh, g.name_bo)}</td><td>{count}</td></tr>"
                    for g, count in report.hot_spots())
    none = f'<tr><td colspan="2">{_both_html(WORDS["none"])}</td></tr>'
    charts = "".join(f'<figure><img src="{base}/chart/{name}.png" alt="{html.escape(both(WORDS["chart_" + name]))}"></figure>'
                     for name in CHARTS if name != "ranking" or report.children)
    ranking_section = ""
    if report.children:
        ranking_section = f"""<section><h2>{_both_html(WORDS["ranking"])}</h2>
<table><thead><tr><th>{_both_html(WORDS["rank"])}</th><th>{_both_html(WORDS["unit"])}</th><th>{_both_html(WORDS["score"])}</th>
<th>{_both_html("On-time closure rate")}</th><th>{_both_html("Satisfaction rate")}</th></tr></thead><tbody>{ranking}</tbody></table>
<p class="bottom-three"><strong>{_both_html(WORDS["bottom"])}</strong> {html.escape(bottom_names) if bottom_names else _both_html(WORDS["no_bottom"])}</p></section>"""
    return f"""<!doctype html>
<html lang="zh-Hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(node.name_zh)} {html.escape(bulletin.month)} · {html.escape(node.name_bo)}</title>
<link rel="stylesheet" href="/static/bulletin.css"></head>
<body><main class="bulletin">
<header><h1>{_both_html(WORDS["title"])}</h1>
<p class="unit">{_names_html(node.name_zh, node.name_bo)}</p>
<p class="month"><span lang="zh-Hans">{html.escape(month_name("zh", bulletin.period))}</span><span lang="bo">{html.escape(month_name("bo", bulletin.period))}</span></p>
<p class="links"><a href="{base}.pdf">PDF</a></p></header>
<section><h2>{_both_html(WORDS["figures"])}</h2>
<table class="figures"><thead><tr><th></th><th>{_both_html(WORDS["this_month"])}</th><th>{_both_html(WORDS["last_month"])}</th><th>{_both_html(WORDS["change"])}</th></tr></thead><tbody>{figures}</tbody></table></section>
{ranking_section}
<section><h2>{_both_html(WORDS["matters"])}</h2><table><thead><tr><th></th><th>{_both_html(WORDS["reports"])}</th></tr></thead>
<tbody>{matters or none}</tbody></table></section>
<section><h2>{_both_html(WORDS["hot_spots"])}</h2><table><thead><tr><th></th><th>{_both_html(WORDS["repeats"])}</th></tr></thead>
<tbody>{spots or none}</tbody></table></section>
<section class="charts"><h2>{_both_html(WORDS["charts"])}</h2>{charts}</section>
<footer>{footer}</footer>
</main></body></html>"""


def indicators_local(moment: datetime) -> str:
    from storage.timeutil import local

    return local(moment).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------- the PDF


def render_pdf(bulletin: Bulletin) -> bytes:
    """A4 pages drawn by matplotlib (it shapes Tibetan stacks with Noto Serif Tibetan): the key figures
    table, the ranking with the bottom three, matters and hot spots, then the charts."""
    plt = _pyplot()
    from matplotlib.backends.backend_pdf import PdfPages
    from PIL import Image

    node, report = bulletin.node, bulletin.report
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": f"{node.name_zh} {bulletin.month}", "Creator": "gridbot"}) as pdf:
        page = plt.figure(figsize=(8.27, 11.69))
        y = 0.95
        page.text(0.5, y, both(WORDS["title"]), ha="center", fontsize=16, weight="bold", color="#8c1d18")
        y -= 0.035
        page.text(0.5, y, f"{node.name_zh} · {node.name_bo}", ha="center", fontsize=12)
        y -= 0.03
        page.text(0.5, y, f"{month_name('zh', bulletin.period)} · {month_name('bo', bulletin.period)}", ha="center", fontsize=11)
        y -= 0.045
        page.text(0.06, y, both(WORDS["figures"]), fontsize=12, weight="bold")
        y -= 0.012
        header = [both(WORDS["this_month"]), both(WORDS["last_month"]), both(WORDS["change"])]
        rows, labels = [], []
        for key, msgid, values in figure_rows(bulletin):
            labels.append(f"{translate('zh', msgid)}\n{translate('bo', msgid)}")
            rows.append([values["zh"][0], values["zh"][1], values["zh"][2]])
        height = 0.036 * (len(rows) + 1)
        axes = page.add_axes([0.38, y - height, 0.56, height])
        axes.axis("off")
        table = axes.table(cellText=rows, rowLabels=labels, colLabels=[h.replace(" · ", "\n") for h in header],
                           loc="upper center", cellLoc="center", bbox=[0, 0, 1, 1])
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
        page.text(0.06, 0.03, f"{translate('zh', WORDS['as_of'], time=indicators_local(report.as_of))}\n"
                              f"{translate('bo', WORDS['as_of'], time=digits('bo', indicators_local(report.as_of)))}",
                  fontsize=7, color="#555")
        pdf.savefig(page)
        plt.close(page)

        page = plt.figure(figsize=(8.27, 11.69))
        y = 0.95
        if report.children:
            page.text(0.06, y, both(WORDS["ranking"]), fontsize=12, weight="bold")
            y -= 0.012
            ranked = report.ranked()[:15]
            bottom = {n.code for n in report.bottom_three()}
            cells = [[DASH if s is None else str(i + 1), unit_label(n), DASH if s is None else f"{s:.1f}"]
                     for i, (n, f, s) in enumerate(ranked)]
            height = 0.03 * (len(cells) + 1)
            axes = page.add_axes([0.06, y - height, 0.88, height])
            axes.axis("off")
            table = axes.table(cellText=cells, colLabels=[both(WORDS["rank"]), both(WORDS["unit"]), both(WORDS["score"])],
                               colWidths=[0.15, 0.65, 0.2], loc="upper center", cellLoc="center", bbox=[0, 0, 1, 1])
            table.auto_set_font_size(False)
            table.set_fontsize(8)
            for index, (n, _, _) in enumerate(ranked):
                if n.code in bottom:
                    for column in range(3):
                        table[index + 1, column].set_facecolor("#f6d5d5")
            y -= height + 0.03
            named = report.bottom_three()
            for lang in LANGUAGES:
                names = "、".join(n.name_zh for n in named) if lang == "zh" else " ། ".join(n.name_bo for n in named)
                line = f"{translate(lang, WORDS['bottom'])}{'：' if lang == 'zh' else ' '}" + (
                    names or translate(lang, WORDS["no_bottom"]))
                page.text(0.06, y, line, fontsize=9, color="#8c1d18" if named else "#333")
                y -= 0.025
            y -= 0.03
        for title, items, column in (
            (WORDS["matters"], [(f"{m.name_zh} {m.name_bo}", n) for m, n in report.top_matters()], WORDS["reports"]),
            (WORDS["hot_spots"], [(unit_label(g), n) for g, n in report.hot_spots()], WORDS["repeats"]),
        ):
            page.text(0.06, y, both(title), fontsize=12, weight="bold")
            y -= 0.012
            cells = [[label, str(count)] for label, count in items] or [[both(WORDS["none"]), ""]]
            height = 0.03 * (len(cells) + 1)
            axes = page.add_axes([0.06, y - height, 0.88, height])
            axes.axis("off")
            table = axes.table(cellText=cells, colLabels=["", both(column)], colWidths=[0.8, 0.2], loc="upper center",
                               cellLoc="center", bbox=[0, 0, 1, 1])
            table.auto_set_font_size(False)
            table.set_fontsize(8)
            y -= height + 0.05
        for name, draw in CHARTS.items():
            png = draw(bulletin, dpi=150)
            if png is None:
                continue
            image = Image.open(io.BytesIO(png))
            width = 0.88
            height = width * image.height / image.width * (8.27 / 11.69)
            if y - height < 0.03:
                pdf.savefig(page)
                plt.close(page)
                page = plt.figure(figsize=(8.27, 11.69))
                y = 0.95
            axes = page.add_axes([0.06, y - height, width, height])
            axes.imshow(image)
            axes.axis("off")
            y -= height + 0.03
        pdf.savefig(page)
        plt.close(page)
    return buffer.getvalue()


def write(bulletin: Bulletin, folder: Path) -> tuple[Path, Path]:
    """Write the page (with its charts beside it) and the PDF into `folder`; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"bulletin-{bulletin.node.code}-{bulletin.month}"
    charts_dir = folder / f"{stem}-charts"
    charts_dir.mkdir(exist_ok=True)
    for name, draw in CHARTS.items():
        png = draw(bulletin)
        if png is not None:
            (charts_dir / f"{name}.png").write_bytes(png)
    page = render_html(bulletin, base=stem).replace(f'src="{stem}/chart/', f'src="{stem}-charts/')
    css = Path(__file__).resolve().parent / "web" / "static" / "bulletin.css"
    page = page.replace('href="/static/bulletin.css"', 'href="bulletin.css"')
    (folder / "bulletin.css").write_text(css.read_text(encoding="utf-8"), encoding="utf-8")
    html_path = folder / f"{stem}.html"
    html_path.write_text(page, encoding="utf-8")
    pdf_path = folder / f"{stem}.pdf"
    pdf_path.write_bytes(render_pdf(bulletin))
    return html_path, pdf_path
