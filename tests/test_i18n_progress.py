"""Every progress message the export engine gives is a Sentence (English and Chinese), so the Export tab
shows it in the reader's language and the CLI in English.

An AST scan of studio/export.py: each `progress(fraction, message)` call (and `p(...)`, a step's share of
the bar) passes `Sentence(english, chinese)` or forwards a message it was given; never a plain string.
"""

import ast
import re
from pathlib import Path

from studio.errors import Sentence

EXPORT = Path(__file__).resolve().parents[1] / "studio" / "export.py"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
PROGRESS_NAMES = {"progress", "p"}


def _literal_text(node) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return ""


def _progress_calls():
    src = EXPORT.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(src, str(EXPORT))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PROGRESS_NAMES
                and len(node.args) >= 2):
            yield ast.get_source_segment(src, node), node.args[1]


def test_every_export_progress_message_is_a_sentence():
    calls = list(_progress_calls())
    assert len(calls) >= 18  # the scan really finds them
    bad = []
    for where, msg in calls:
        if isinstance(msg, ast.Name):  # a message forwarded from a step (export_run's sub-progress)
            continue
        if not (isinstance(msg, ast.Call) and isinstance(msg.func, ast.Name) and msg.func.id == "Sentence"
                and len(msg.args) >= 2 and _literal_text(msg.args[0]).strip()
                and CJK.search(_literal_text(msg.args[1]))):
            bad.append(f"line {msg.lineno}: {where}")
    assert not bad, "progress messages without a Chinese sentence:\n" + "\n".join(bad)


def test_a_sentence_reads_as_english_and_carries_chinese():
    s = Sentence("Export finished", "导出完成")
    assert s == "Export finished" and s[:6] == "Export" and s.text("zh") == "导出完成"
