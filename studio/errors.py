"""One exception for problems the user can fix: its message is a plain sentence, in English and in
Chinese, shown as is (CLI: one line on stderr, exit 1; UI: a message in the page, in the reader's
language). Anything else is a bug.

    raise StudioError("No data file at {path}.", "找不到数据文件 {path}。")
    e.text("zh")  # the Chinese sentence; str(e) is the English one
"""


class StudioError(Exception):
    def __init__(self, en: str, zh: str = ""):
        super().__init__(en)
        self.en = en
        self.zh = zh or en

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en


def error_text(e: BaseException, lang: str = "en") -> str:
    """The sentence to show for any exception: a StudioError in the reader's language, else its str."""
    return e.text(lang) if isinstance(e, StudioError) else str(e)


class Sentence(str):
    """A plain sentence that is a `str` in one language (English unless `lang="zh"`) and carries both:
    `.en`, `.zh`, `.text(lang)`. For messages returned rather than raised (config problems, log lines),
    so callers that treat them as strings keep working."""

    en: str
    zh: str

    def __new__(cls, en: str, zh: str = "", lang: str = "en"):
        zh = zh or en
        self = super().__new__(cls, zh if lang == "zh" else en)
        self.en, self.zh = en, zh
        return self

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def __reduce__(self):  # pickles and deep-copies as a Sentence, not as a plain str
        return (Sentence, (self.en, self.zh, "zh" if str.__str__(self) == self.zh != self.en else "en"))


def joined(sentences, lang: str = "en") -> str:
    """Sentences as one paragraph: separated by a space in English, run together in Chinese."""
    return ("" if lang == "zh" else " ").join(s.text(lang) if isinstance(s, (Sentence, StudioError)) else str(s)
                                                for s in sentences)


def from_os_error(e: BaseException) -> StudioError | None:
    """A full disk or a folder the app may not write to, as a sentence; None for other errors."""
    import errno

    if not isinstance(e, OSError):
        return None
    where = e.filename or ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StudioError(f"The disk is full{f' (writing {where})' if where else ''}. Free some space, then try "
                           "again; a stopped training run resumes from its last checkpoint.",
                           f"磁盘已满{f'（写入 {where} 时）' if where else ''}。请腾出一些空间后重试；停止的训练可以从最近的检查点继续。")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StudioError(f"The app may not write to {where or 'this folder'}. Choose a folder you can write to "
                           "(set STUDIO_HOME or STUDIO_RUNS_DIR), or fix its permissions.",
                           f"应用没有权限写入 {where or '这个文件夹'}。请换一个可写的文件夹（设置 STUDIO_HOME 或 "
                           "STUDIO_RUNS_DIR），或修改它的权限。")
    return None
