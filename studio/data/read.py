"""Read a data file into a `Table` of records, whatever its type and encoding.

JSONL, JSON (an array, or a wrapper object holding exactly one list of rows), CSV, TSV, Parquet,
Excel (.xlsx through openpyxl; .xls, and OpenDocument .ods, through python-calamine: every sheet that
holds rows is looked at, see `_workbook_table`) and plain text. Text files are decoded by sniffing: a BOM first, then strict UTF-8,
then GB18030 or Big5 when they read as common Han characters, then charset-normalizer's
candidates, the one that reads most like real text winning (see `decode_bytes`). Nothing here
writes anything, and the input is only ever opened for reading.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import functools
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import StudioError
from studio.messages import Msg

TEXT_TYPES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
              ".txt": "txt", ".md": "txt", ".text": "txt"}
BINARY_TYPES = {".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx", ".xls": "xls", ".ods": "ods"}
WORKBOOKS = ("xlsx", "xls", "ods")

DEFAULT_UPLOAD_MB = 200


def upload_limit() -> int:
    """Bytes one uploaded file may have. The one place the cap is decided: Gradio's own cap at launch,
    the reader's check and the Data tab's hint all ask here. A public Space's safe-mode cap (20 MB,
    or the Space's STUDIO_MAX_UPLOAD_MB; a free Space has 16 GB to share), else STUDIO_MAX_UPLOAD_MB,
    else 200 MB."""
    from studio.policy import safe_mode

    mode = safe_mode()
    if mode.enabled and mode.max_upload_mb > 0:
        return int(mode.max_upload_mb * 2**20)
    try:
        mb = float(os.environ.get("STUDIO_MAX_UPLOAD_MB", "").strip() or DEFAULT_UPLOAD_MB)
    except ValueError:
        mb = DEFAULT_UPLOAD_MB
    return int((mb if mb > 0 else DEFAULT_UPLOAD_MB) * 2**20)


def size_words(n: int) -> str:
    """A file size as people read it: "200 MB", "1.5 MB", "12 KB"."""
    mb = n / 2**20
    if mb >= 1:
        return f"{mb:.3g} MB" if mb < 100 else f"{mb:.0f} MB"
    return f"{max(1, round(n / 1024))} KB"


# Keys that hold one conversation, never a list of rows: {"messages": [...]} is a single record.
_MESSAGE_KEYS = {"messages", "conversations", "conversation", "chosen", "rejected", "history"}


@dataclass
class Table:
    """Records as read, before any format is guessed."""
    rows: list[dict]
    columns: list[str]  # every key seen, in order of first appearance
    numbers: list[int]  # where each record starts in the file, 1-based (see `number_label`)
    file_type: str  # jsonl | json | csv | tsv | parquet | xlsx | txt
    number_label: str = "line"  # line | row | item: what `numbers` count
    encoding: str | None = None
    skipped: list[dict] = field(default_factory=list)  # {"number", "reason", "raw"}: input that is not a record
    source: str = ""
    # A workbook's sheets, read or not: {"name", "rows", "columns", "read"} (+ "first", "last" when several
    # sheets are read together and numbered on). Empty for every other file type.
    sheets: list[dict] = field(default_factory=list)

    @property
    def input_rows(self) -> int:
        return len(self.numbers) + len(self.skipped)


def read_file(path: str | Path, max_bytes: int | None = None, sheet: str | None = None) -> Table:
    """Read any supported file. Raises StudioError with one plain sentence for anything unusable. `sheet`
    names the workbook sheet to read (with every sheet whose columns agree with it); by default the first
    sheet that holds rows."""
    p = Path(path)
    if not p.exists():
        raise StudioError("data.error.no_file", path=str(p))
    if p.is_dir():
        raise StudioError("data.error.folder", path=str(p))
    size = p.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise StudioError("data.error.too_big", name=p.name, size=size_words(size), limit=size_words(max_bytes))
    if size == 0:
        raise StudioError("data.error.empty_file", name=p.name)
    suffix = p.suffix.lower()
    if sheet and BINARY_TYPES.get(suffix) not in WORKBOOKS:
        raise StudioError("data.error.not_workbook", name=p.name, sheet=sheet)
    if suffix in BINARY_TYPES:
        kind = BINARY_TYPES[suffix]
        readers = {"parquet": lambda: _read_parquet(p), "xlsx": lambda: _read_xlsx(p, sheet)}
        table = readers.get(kind, lambda: _read_calamine(p, kind, sheet))()
    else:
        text, encoding = decode_bytes(p.read_bytes(), p.name)
        if not text.strip():
            raise StudioError("data.error.whitespace", name=p.name)
        kind = TEXT_TYPES.get(suffix) or _sniff_type(text, p.name)
        table = _READERS[kind](text, p.name)
        table.encoding = encoding
    table.source = p.name
    if not table.rows:
        raise StudioError("data.error.no_rows", name=p.name)
    return table


# ---- decoding -----------------------------------------------------------------------------------

_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
# Half-width katakana and controls are what a wrong CJK guess decodes into: short GBK or Big5
# files often read as valid Shift-JIS, but real Japanese text almost never uses half-width kana.
_IMPLAUSIBLE = re.compile(r"[\uff61-\uff9f\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\ue000-\uf8ff]")
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_HAN}\uac00-\ud7a3]")
# A wrong CJK guess mixes scripts inside a word (Hangul touching Han), leaves lone Hangul jamo,
# or, for Korean read as Chinese, puts single spaces between Han characters.
_ODD_PAIRS = re.compile(f"[\uac00-\ud7a3][{_HAN}]|[{_HAN}][\uac00-\ud7a3]|[\u3131-\u318e]|[{_HAN}] (?=[{_HAN}])")


def decode_bytes(data: bytes, name: str = "the file") -> tuple[str, str]:
    """(text, encoding). Windows line endings stay in the text; readers handle them."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                break
    has_nul = b"\x00" in data[:4096]
    if not has_nul:  # NUL bytes are valid UTF-8, but they mean UTF-16 or binary data
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
        # Most of our users' non-UTF-8 files are Chinese. Short ones are valid in several CJK
        # encodings at once and charset-normalizer's guess is then a coin toss (a four-character
        # GBK file "reads" as Korean), so GB18030, then Big5, win whenever they decode into
        # common Han characters.
        han = [(_oddness(text), text, enc) for enc in ("gb18030", "big5") if (text := _try_decode(data, enc))]
        best = min(han, key=lambda c: c[0], default=None)  # on a tie, gb18030
        if best and best[0] <= 0.1:
            return best[1], best[2]
    import charset_normalizer
    from charset_normalizer.md import mess_ratio

    # A UTF-16/32 guess without a BOM is only believed when NUL bytes show it (ASCII in UTF-16):
    # short GBK or Big5 bytes often decode as valid UTF-16 nonsense.
    encodings = [r.encoding for r in charset_normalizer.from_bytes(data)]
    encodings = [e for e in dict.fromkeys(encodings + ["gb18030", "big5"])
                 if has_nul or not e.startswith(("utf_16", "utf_32"))]
    candidates = []
    for enc in encodings:
        if (text := _try_decode(data, enc)) is not None:
            sample = text[:20000]
            candidates.append((mess_ratio(sample, 1.0) + _oddness(sample), text, enc))
    if not candidates or has_nul and not any(c[2].startswith("utf_16") for c in candidates):
        raise StudioError("data.error.binary", name=name)
    # On a tie, Windows-1252 (Western Europe): charset-normalizer lists cp1250 first for "café".
    _, text, enc = min(candidates, key=lambda c: (c[0], c[2] != "cp1252"))
    sample = text[:20000]
    if len(_IMPLAUSIBLE.findall(sample)) / max(1, len(sample)) > 0.05:
        raise StudioError("data.error.binary", name=name)
    return text, enc


def _try_decode(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def _oddness(text: str) -> float:
    """How unlike real text a decoding is, per non-ASCII character: implausible characters, rare
    Han or Hangul characters (a wrong CJK guess lands all over the code table, real text mostly
    on the few thousand common characters) and scripts mixed up."""
    text = text[:20000]
    wide = sum(1 for c in text if ord(c) > 127)
    if not wide:
        return 0.0
    rare = sum(1 for c in _CJK.findall(text) if not _common_cjk(c))
    return (len(_IMPLAUSIBLE.findall(text)) + 0.5 * rare + len(_ODD_PAIRS.findall(text))) / wide


@functools.lru_cache(maxsize=65536)
def _common_cjk(c: str) -> bool:
    """Han in the first level of GB2312 (3,755 common simplified characters), Big5 (5,401 common
    traditional ones) or JIS X 0208 (2,965 common kanji); Hangul in KS X 1001 (the 2,350
    syllables that cover nearly all Korean; Python's euc_kr spells any other as 8 bytes)."""
    if "\uac00" <= c <= "\ud7a3":
        return len(_try_encode(c, "euc_kr") or b"") == 2
    gb = _try_encode(c, "gb2312")
    b5 = _try_encode(c, "big5")
    sj = _try_encode(c, "shift_jis")
    return bool(gb and 0xB0 <= gb[0] <= 0xD7 or b5 and (0xA4 <= b5[0] < 0xC6 or b5[0] == 0xC6 and b5[1] <= 0x7E)
                or sj and len(sj) == 2 and 0x889F <= int.from_bytes(sj, "big") <= 0x9872)


def _try_encode(c: str, enc: str) -> bytes | None:
    try:
        return c.encode(enc)
    except UnicodeEncodeError:
        return None


def _sniff_type(text: str, name: str) -> str:
    head = text.lstrip()[:1]
    if head in "[{":
        return "json"
    first = text.split("\n", 1)[0]
    if "\t" in first:
        return "tsv"
    if "," in first and first.count('"') % 2 == 0 and len(text.split("\n", 2)) > 1:
        return "csv"
    return "txt"


# ---- the readers --------------------------------------------------------------------------------

def lines_of(text: str) -> list[str]:
    """The lines of a JSONL or text file: split on line feeds only (a trailing CR of CRLF dropped).
    str.splitlines() also splits on U+0085, U+2028, U+2029, form feed and vertical tab, which a JSON
    string may hold as they are (mojibake of Chinese read as Latin-1 is full of U+0085): a record
    would be cut in two and both halves lost."""
    if "\n" not in text and "\r" in text:  # classic Mac line ends: CR alone
        text = text.replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def _loads(text: str):
    """JSON as writers leave it: control characters (tab, form feed, vertical tab) raw inside a string
    are kept rather than the whole record lost (strict JSON wants them escaped); cleaning strips them."""
    return json.loads(text, strict=False)


def _read_jsonl(text: str, name: str) -> Table:
    rows, numbers, skipped = [], [], []
    for i, line in enumerate(lines_of(text), 1):
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except json.JSONDecodeError as e:
            skipped.append({"number": i, "reason": "unparseable", "detail": Msg("data.detail.not_json", error=e.msg),
                            "raw": line[:500]})
            continue
        if not isinstance(obj, dict):
            skipped.append({"number": i, "reason": "unparseable", "detail": Msg("data.detail.not_object"),
                            "raw": line[:500]})
            continue
        rows.append(obj)
        numbers.append(i)
    if not rows and text.lstrip().startswith("["):  # a JSON array saved as .jsonl
        return _read_json(text, name)
    if not rows and skipped:
        raise StudioError("data.error.no_json_line", name=name, line=skipped[0]["number"], detail=skipped[0]["detail"])
    return Table(rows, _columns(rows), numbers, "jsonl", "line", skipped=skipped)


def _read_json(text: str, name: str) -> Table:
    try:
        obj = _loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):  # one object per line: JSONL saved as .json
            return _read_jsonl(text, name)
        raise StudioError("data.error.bad_json", name=name, line=e.lineno, error=e.msg) from None
    if isinstance(obj, dict):
        lists = [k for k, v in obj.items() if k.lower() not in _MESSAGE_KEYS and _is_rows(v)]
        if len(lists) != 1:
            raise StudioError("data.error.wrapper_several" if lists else "data.error.wrapper_none", name=name,
                              keys=[str(k) for k in list(obj)[:10]])
        obj = obj[lists[0]]
    if not isinstance(obj, list):
        raise StudioError("data.error.single_value", name=name, type=type(obj).__name__)
    rows = [r for r in obj if isinstance(r, dict)]
    numbers = [i for i, r in enumerate(obj, 1) if isinstance(r, dict)]
    skipped = [{"number": i, "reason": "unparseable", "detail": Msg("data.detail.not_object"),
                "raw": json.dumps(r, ensure_ascii=False)[:500]}
               for i, r in enumerate(obj, 1) if not isinstance(r, dict)]
    if not rows and obj:
        raise StudioError("data.error.list_of_values", name=name, type=type(obj[0]).__name__)
    return Table(rows, _columns(rows), numbers, "json", "item", skipped=skipped)


def _is_rows(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v[:100])


def _read_delimited(text: str, name: str, delimiter: str | None = None) -> Table:
    if delimiter is None:
        first = text.split("\n", 1)[0]
        delimiter = max([",", "\t", ";"], key=first.count)
    # newline="" lets the csv module see \r\n and quoted multi-line cells as they are.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = None
    rows, numbers = [], []
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = _unique_headers(record)
            continue
        rows.append({h: (record[i] if i < len(record) else "") for i, h in enumerate(header)})
        numbers.append(reader.line_num)
    if header is None:
        raise StudioError("data.error.no_rows", name=name)
    kind = "tsv" if delimiter == "\t" else "csv"
    # line_num is the physical line where a record ends; a record's start is what users look for.
    starts = _record_starts(numbers, rows)
    return Table(rows, list(header), starts, kind, "line")


def _record_starts(ends: list[int], rows: list[dict]) -> list[int]:
    return [end - sum(str(v).count("\n") for v in row.values()) for end, row in zip(ends, rows)]


def _unique_headers(record: list[str]) -> list[str]:
    out, seen = [], {}
    for i, h in enumerate(record, 1):
        h = h.strip().lstrip("\ufeff") or f"column_{i}"
        if h in seen:
            seen[h] += 1
            h = f"{h}_{seen[h]}"
        else:
            seen[h] = 1
        out.append(h)
    return out


def _read_txt(text: str, name: str) -> Table:
    """One document per line; or one per paragraph when blank lines separate paragraphs that span
    several lines (at least one blank line per 20 lines: a stray blank line in a file of one
    document per line does not merge hundreds of documents)."""
    lines = lines_of(text)
    blocks, start, current = [], 0, []
    for i, line in enumerate(lines, 1):
        if line.strip():
            if not current:
                start = i
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    n_lines = sum(len(b) for _, b in blocks)
    if len(blocks) > 1 and any(len(b) > 1 for _, b in blocks) and len(blocks) * 20 > n_lines:
        docs = [(n, "\n".join(b)) for n, b in blocks]
    else:
        docs = [(n + i, line) for n, b in blocks for i, line in enumerate(b)]
    return Table([{"text": d} for _, d in docs], ["text"], [n for n, _ in docs], "txt", "line")


def _read_parquet(p: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(p).to_pylist()
    except Exception as e:  # pyarrow raises several types for a broken or non-parquet file
        raise StudioError("data.error.parquet", name=p.name, error=type(e).__name__) from None
    return Table(rows, _columns(rows), list(range(1, len(rows) + 1)), "parquet", "item")


def _read_xlsx(p: Path, sheet: str | None = None) -> Table:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as e:  # zipfile / openpyxl errors for a file that is not a workbook
        raise StudioError("data.error.xlsx", name=p.name, error=type(e).__name__) from None
    try:
        sheets = [_read_sheet(ws.title, ws.iter_rows(values_only=True)) for ws in wb.worksheets]
    finally:
        wb.close()
    return _workbook_table(p.name, sheets, "xlsx", sheet)


def _read_calamine(p: Path, kind: str, sheet: str | None = None) -> Table:
    """Legacy Excel (.xls) and OpenDocument (.ods) workbooks, through python-calamine; every sheet, as for .xlsx."""
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(p))
        sheets = [_read_sheet(name, ([_whole(v) for v in row] for row in
                                     wb.get_sheet_by_name(name).to_python(skip_empty_area=False)))
                  for name in wb.sheet_names]
    except Exception as e:  # calamine's errors for a file that is not a workbook
        raise StudioError("data.error.xlsx", name=p.name, error=type(e).__name__) from None
    return _workbook_table(p.name, sheets, kind, sheet)


def _whole(v):
    """.xls and .ods hold every number as a float: 3.0 in a cell typed as 3 reads as 3."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


@dataclass
class _Sheet:
    name: str
    header: list[str]
    rows: list[dict]
    numbers: list[int]  # the rows' numbers in the sheet, 1-based


def _read_sheet(name: str, values_by_row) -> _Sheet:
    """One sheet: the first row that holds anything is the header; blank rows are skipped."""
    header, rows, numbers = None, [], []
    for i, values in enumerate(values_by_row, 1):
        if not any(v is not None and str(v).strip() for v in values):
            continue
        if header is None:
            header = _unique_headers(["" if v is None else str(v) for v in values])
            continue
        rows.append({h: _cell(values[j]) if j < len(values) else "" for j, h in enumerate(header)})
        numbers.append(i)
    return _Sheet(str(name), header or [], rows, numbers)


def _workbook_table(name: str, sheets: list[_Sheet], kind: str, chosen_name: str | None = None) -> Table:
    """The rows of a workbook. Read: the chosen sheet (by default the first that holds rows) and every other
    sheet whose columns agree with it, one after the other. Sheets with other columns are left, and
    `Table.sheets` says so with their row counts (see `sheet_notes`): nothing is dropped without a word.
    Rows of one sheet keep their row numbers; rows of several sheets are numbered on from 1 (as items),
    and each sheet's range is kept, since row 2 of one sheet and row 2 of the next would share a number."""
    full = [s for s in sheets if s.rows]
    if not full:
        raise StudioError("data.error.xlsx_empty", name=name)
    if chosen_name is None:
        chosen = full[0]
    else:
        chosen = next((s for s in full if s.name == chosen_name), None)
        if chosen is None:
            raise StudioError("data.error.no_sheet", name=name, sheet=chosen_name, sheets=[s.name for s in full])
    read = [s for s in full if set(s.header) == set(chosen.header)]
    info = [{"name": s.name, "rows": len(s.rows), "columns": list(s.header), "read": any(s is r for r in read)}
            for s in sheets]
    if len(read) == 1:
        return Table(chosen.rows, chosen.header, chosen.numbers, kind, "row", sheets=info)
    rows: list[dict] = []
    for s in read:
        entry = next(e for e in info if e["name"] == s.name)
        entry["first"], entry["last"] = len(rows) + 1, len(rows) + len(s.rows)
        rows += s.rows
    return Table(rows, chosen.header, list(range(1, len(rows) + 1)), kind, "item", sheets=info)


def sheet_notes(table: Table) -> list[Msg]:
    """What a report says about a workbook of several sheets: the sheets read, the sheets left (with their
    row counts and how to choose one), and the empty ones. Nothing for a one-sheet workbook or other files."""
    if len(table.sheets) < 2:
        return []

    def item(s: dict) -> Msg:
        if "first" in s:
            return Msg("data.sheets.item_numbered", name=s["name"], rows=s["rows"], first=s["first"], last=s["last"])
        return Msg("data.sheets.item", name=s["name"], rows=s["rows"])

    read = [item(s) for s in table.sheets if s["read"]]
    left = [item(s) for s in table.sheets if not s["read"] and s["rows"]]
    empty = [s["name"] for s in table.sheets if not s["rows"]]
    notes = [Msg("data.sheets.read", sheets=read)]
    if left:
        notes.append(Msg("data.sheets.left", sheets=left))
    if empty:
        notes.append(Msg("data.sheets.empty", sheets=empty))
    return notes


def sheet_choices(table: Table) -> list[str]:
    """The sheets a person may choose between: those that hold rows, when not all of them are read."""
    full = [s for s in table.sheets if s["rows"]]
    return [s["name"] for s in full] if any(not s["read"] for s in full) else []


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    return v


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in seen:
                seen[k] = None
    return list(seen)


_READERS = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_delimited, "txt": _read_txt,
            "tsv": lambda text, name: _read_delimited(text, name, "\t")}
