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
    loads: list = field(default_factory=list)  # (fn, inputs, outputs) to run when a page opens

    @classmethod
    def create(cls, is_space: bool = False) -> "Context":
        return cls(data=gr.State({}), model=gr.State({}), run=gr.State({}), is_space=is_space)

    def on_load(self, fn: Callable, inputs=None, outputs=None) -> None:
        """Run `fn` when a page opens (the app registers it): text a tab writes with numbers in it is
        written then, in the reader's language, instead of once in English when the app is built."""
        self.loads.append((fn, inputs, outputs))
