"""Workbooks written by the tests: the two-sheet case of issue 21 ("First": instruction/output, 50 rows;
"Second": prompt/response, 70 rows) and one whose sheets share their columns; as .xlsx (openpyxl), .xls
(xlwt) or OpenDocument .ods (written here: a zip holding content.xml), by the path's suffix."""

from __future__ import annotations

from pathlib import Path


def write_workbook(path: Path, sheets: dict[str, tuple[list[str], list[list]]]) -> Path:
    if path.suffix == ".xls":
        return _write_xls(path, sheets)
    if path.suffix == ".ods":
        return _write_ods(path, sheets)
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, (header, rows) in sheets.items():
        ws = wb.create_sheet(name)
        if header:
            ws.append(header)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def _write_xls(path: Path, sheets: dict) -> Path:
    import xlwt

    wb = xlwt.Workbook()
    for name, (header, rows) in sheets.items():
        ws = wb.add_sheet(name)
        for i, values in enumerate(([header] if header else []) + rows):
            for j, v in enumerate(values):
                ws.write(i, j, v)
    wb.save(str(path))
    return path


def _write_ods(path: Path, sheets: dict) -> Path:
    import zipfile
    from xml.sax.saxutils import escape

    def cell(v) -> str:
        if isinstance(v, (int, float)):
            return f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
        return f'<table:table-cell office:value-type="string"><text:p>{escape(str(v))}</text:p></table:table-cell>'

    tables = "".join(
        f'<table:table table:name="{escape(name)}">'
        + "".join("<table:table-row>" + "".join(cell(v) for v in values) + "</table:table-row>"
                  for values in ([header] if header else []) + rows)
        + ("" if header else "<table:table-row><table:table-cell/></table:table-row>")
        + "</table:table>" for name, (header, rows) in sheets.items())
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
               f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def two_sheets(path: Path) -> Path:
    """Sheets whose columns differ: only one is read at a time."""
    return write_workbook(path, {
        "First": (["instruction", "output"],
                  [[f"How do I file expense claim {i}?", f"Send receipt {i} to finance within {i % 9 + 1} days."]
                   for i in range(50)]),
        "Second": (["prompt", "response"],
                   [[f"What is the leave rule number {i}?", f"Rule {i}: ask your manager {i % 7 + 1} days ahead."]
                    for i in range(70)]),
    })


def agreeing_sheets(path: Path) -> Path:
    """Sheets with the same columns (in another order on the second) and an empty notes sheet."""
    return write_workbook(path, {
        "Notes": ([], []),
        "Q1": (["instruction", "output"], [[f"Question {i} of Q1?", f"Answer {i} of the first quarter."]
                                           for i in range(30)]),
        "Q2": (["output", "instruction"], [[f"Answer {i} of the second quarter.", f"Question {i} of Q2?"]
                                           for i in range(20)]),
    })
