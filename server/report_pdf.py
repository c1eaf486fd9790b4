"""The shift report as a printable A4 PDF (ReportLab, with the Bitstream Vera fonts ReportLab ships: nothing
is fetched). It draws the same ``ShiftReport`` the API serves: totals, lines, an hourly stacked chart and table,
purity, alerts, device availability, models and labelled periods."""

from __future__ import annotations

import io
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from server.reports import Counted, ShiftReport

FONT, BOLD = "FarzVera", "FarzVera-Bold"
CLASS_COLOURS = {
    "cardboard": "#a0522d",
    "glass": "#2a9d8f",
    "metal": "#6c757d",
    "paper": "#e9c46a",
    "plastic": "#1d6fb8",
    "trash": "#b23b1e",
}
SPARE = ["#7b2cbf", "#f4a261", "#588157", "#d62828"]
ACCENT = colors.HexColor("#1d6b45")


def _fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
        pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    return {
        "body": base,
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=16, leading=20, textColor=ACCENT),
        "h2": ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=11, leading=15, spaceBefore=8, spaceAfter=3, keepWithNext=1),
        "muted": ParagraphStyle("muted", parent=base, textColor=colors.HexColor("#6a716d")),
    }


def _table(rows: list[list[object]], widths: list[float] | None = None, highlight: list[int] | None = None) -> Table:
    table = Table([[("" if v is None else str(v)) for v in r] for r in rows], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 8.5),
        ("FONT", (0, 0), (-1, 0), BOLD, 8.5),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#e0e3df")),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    style += [("TEXTCOLOR", (0, r), (-1, r), colors.HexColor("#b23b1e")) for r in highlight or []]
    table.setStyle(TableStyle(style))
    return table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _clock(iso: str | None) -> str:
    return "open" if iso is None else datetime.fromisoformat(iso).strftime("%H:%M")


def _counts_rows(block: Counted) -> list[list[object]]:
    classes = sorted({*block.counts.get("in", {}), *block.counts.get("out", {})})
    rows: list[list[object]] = [["class", "in", "out", "share of in"]]
    rows += [[c, block.counts["in"].get(c, 0), block.counts["out"].get(c, 0), _pct(block.shares.get(c))] for c in classes]
    rows.append(["all", block.total_in, block.total_out, _pct(1.0) if block.total_in else "–"])
    return rows


def _hour_chart(report: ShiftReport, classes: list[str]) -> Drawing:
    drawing = Drawing(170 * mm, 62 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 10 * mm, 120 * mm, 48 * mm
    chart.data = [[h.counts.get(c, 0) for h in report.hours] for c in classes]
    chart.categoryAxis.categoryNames = [datetime.fromisoformat(h.start).strftime("%H:%M") for h in report.hours]
    chart.categoryAxis.style = "stacked"
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 45 if len(report.hours) > 10 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(report.hours) > 10 else "n"
    chart.valueAxis.valueMin = 0
    chart.barSpacing = 1
    legend = Legend()
    legend.x, legend.y, legend.fontName, legend.fontSize = 138 * mm, 56 * mm, FONT, 7.5
    pairs = []
    for i, cls in enumerate(classes):
        colour = colors.HexColor(CLASS_COLOURS.get(cls, SPARE[i % len(SPARE)]))
        chart.bars[i].fillColor, chart.bars[i].strokeColor = colour, None
        pairs.append((colour, cls))
    legend.colorNamePairs = pairs
    drawing.add(chart)
    drawing.add(legend)
    return drawing


def render_pdf(report: ShiftReport) -> bytes:
    """The report as PDF bytes (A4, one or more pages)."""
    _fonts()
    st = _styles()
    shift = report.shift
    start, end = datetime.fromisoformat(shift.start), datetime.fromisoformat(shift.end)
    story: list[Flowable] = [
        Paragraph(f"Shift report · {escape(report.site.name)}", st["title"]),
        Paragraph(
            f"Shift <b>{escape(shift.name)}</b> of {shift.date}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} "
            f"({report.site.tz}, {shift.hours:g} h)" + (" · <b>in progress</b>" if shift.in_progress else ""),
            st["body"],
        ),
        Paragraph(
            f"Site {escape(report.site.id)} · generated {datetime.fromisoformat(report.generated):%Y-%m-%d %H:%M} by farz", st["muted"]
        ),
        Paragraph("Totals per class", st["h2"]),
        _table(_counts_rows(report.totals), [45 * mm, 25 * mm, 25 * mm, 30 * mm]),
    ]
    for line in report.lines:
        story += [Paragraph(f"Line {escape(line.line)}", st["h2"]), _table(_counts_rows(line), [45 * mm, 25 * mm, 25 * mm, 30 * mm])]
    classes = sorted({c for h in report.hours for c in h.counts})
    story.append(Paragraph("Per hour (items counted in)", st["h2"]))
    if report.hours:
        story.append(_hour_chart(report, classes))
        rows: list[list[object]] = [["hour", *classes, "all"]]
        rows += [[datetime.fromisoformat(h.start).strftime("%H:%M"), *(h.counts.get(c, 0) for c in classes), h.total] for h in report.hours]
        story.append(_table(rows))
    else:
        story.append(Paragraph("Nothing was counted in this shift.", st["muted"]))
    story.append(Paragraph("Purity against the targets (whole shift)", st["h2"]))
    if report.purity:
        rows = [["line", "target", "measured", "items", "result", "alerts", "min in breach"]]
        rows += [
            [
                p.line,
                p.summary,
                _pct(p.measured),
                p.items,
                "too few items" if p.met is None else "met" if p.met else "MISSED",
                p.alerts,
                p.breach_minutes,
            ]
            for p in report.purity
        ]
        missed = [i + 1 for i, p in enumerate(report.purity) if p.met is False]
        story.append(_table(rows, [18 * mm, 52 * mm, 20 * mm, 14 * mm, 24 * mm, 14 * mm, 24 * mm], missed))
    else:
        story.append(Paragraph("No targets are set on this site's lines.", st["muted"]))
    story.append(Paragraph("Alerts during the shift", st["h2"]))
    if report.alerts:
        rows = [["what", "from", "to", "value"]]
        rows += [
            [
                Paragraph(escape(f"{a.line + ': ' if a.line else ''}{a.summary}"), st["body"]),
                _clock(a.started),
                _clock(a.ended),
                f"{_pct(a.value)} of {a.items}" if a.kind == "purity" else f"{a.value:g}",
            ]
            for a in report.alerts
        ]
        story.append(_table(rows, [100 * mm, 18 * mm, 18 * mm, 30 * mm]))
    else:
        story.append(Paragraph("No alerts.", st["muted"]))
    story.append(Paragraph("Devices", st["h2"]))
    rows = [["device", "availability", "down (min)", "models in use"]]
    rows += [
        [d.device, _pct(d.availability), round(d.down_s / 60, 1), Paragraph("<br/>".join(escape(m) for m in d.models) or "–", st["body"])]
        for d in report.devices
    ]
    story.append(_table(rows, [28 * mm, 24 * mm, 22 * mm, 96 * mm]))
    if report.labels:
        story.append(Paragraph("Labelled periods", st["h2"]))
        rows = [["label", "period", "items", "shares"]]
        rows += [
            [
                Paragraph(escape(label.text + (f" ({label.line})" if label.line else "")), st["body"]),
                f"{_clock(label.start)}–{_clock(label.end)}",
                label.total,
                Paragraph(escape(", ".join(f"{c} {_pct(v)}" for c, v in label.shares.items()) or "–"), st["body"]),
            ]
            for label in report.labels
        ]
        story.append(_table(rows, [55 * mm, 25 * mm, 15 * mm, 75 * mm]))
    story.append(Spacer(1, 6 * mm))
    story.append(
        Paragraph("Counts come from the server's per-minute rollups; the dashboard and the API show the same figures.", st["muted"])
    )
    out = io.BytesIO()
    title = f"farz shift report {report.site.id} {shift.date} {shift.name}"
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm, title=title)
    doc.build(story)
    return out.getvalue()
