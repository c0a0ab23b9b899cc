"""What the tabs share within one browser session: the data chosen in the Data tab, the model and
method chosen in the Model tab, and the run chosen for comparing and exporting. Plain dicts in
`gr.State`, created once by the app and handed to every tab's `build(ctx)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gradio as gr


@dataclass
class Context:
    data: gr.State  # {"train_file", "eval_file" (or ""), "format": "sft"|"preference"|"text", "rows": n, "zh_share"}
    model: gr.State  # {"name", "method", "precision", "batch_size", "max_length", "gradient_checkpointing", "lora_rank", "verdict"}
    run: gr.State  # {"run_dir": path} the run picked for comparing and exporting
    is_space: bool = False
    restores: list = field(default_factory=list)  # (fn, outputs): what each tab shows when a page opens
    tab: gr.Tab | None = None  # the tab being built (set by the app around each build(ctx)): its .select

    @classmethod
    def create(cls, is_space: bool = False) -> "Context":
        return cls(data=gr.State({}), model=gr.State({}), run=gr.State({}), is_space=is_space)

    def on_restore(self, fn: Callable[[dict, str, str], dict], outputs: list) -> None:
        """`fn(workspace, lang, session) -> {component: value}` runs when a page opens, all tabs' in one event (the app
        registers it): the person's work comes back from their workspace (studio/workspace.py), and text
        with numbers in it is written in the reader's language, not once in English when the app is built.
        One event, so no tab's change handlers run between one tab's restore and another's."""
        self.restores.append((fn, outputs))
