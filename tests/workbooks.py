"""Workbooks written by the tests: the two-sheet case of issue 21 ("First": instruction/output, 50 rows;
"Second": prompt/response, 70 rows) and one whose sheets share their columns."""

from __future__ import annotations

from pathlib import Path


def write_workbook(path: Path, sheets: dict[str, tuple[list[str], list[list]]]) -> Path:
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
