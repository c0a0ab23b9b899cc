"""Export a finished run: the LoRA adapter (folder and zip), a merged model, a model card, the exact
config to re-run it (one GPU or many), a push to the Hugging Face Hub, and optionally GGUF files
(f16, Q8_0, Q4_0) with an Ollama Modelfile and a parity check.

One concern a module:

    source.py    what the run is: base model id and dtype, data summary, tokenizer, portable config
    card.py      the model card (README.md), in the language asked for
    rerun.py     rerun/: config, accelerate config, COMMANDS.md; the launch commands
    adapter.py   adapter/ and its zip
    merge.py     merged/: the adapter folded into the base
    gguf.py      the merged model as GGUF (Llama architecture): f16, f32, and what gguf.quants can write
    ollama.py    the Ollama Modelfile: which file, the chat template, the stop tokens
    parity.py    each GGUF loaded back and compared with the merged model (next token, greedy answers)
    hub.py       the push to the Hugging Face Hub
    pipeline.py  export_run: all of the above in order, with one progress bar; ExportResult
    page.py      what the Export tab shows, as plain values (no gradio)
    cli.py       `studio export`

Functions that take a while take a `progress(fraction, message)` callback; the message is a Msg (the CLI
prints it in English, the tab in the reader's language). An export folder (`<run>/export/` by default):

    README.md              the model card
    adapter/               adapter_config.json, adapter_model.safetensors, tokenizer, chat template, README.md
    <run>-adapter.zip      adapter/ zipped, for a download button
    merged/                the adapter folded into the base: safetensors in the base's dtype, tokenizer, README.md
    <run>-<type>.gguf      the merged model for llama.cpp / Ollama, one file a type (Llama-architecture models only)
    Modelfile              for `ollama create NAME -f Modelfile`: FROM the Q8_0 file, template, stop tokens
    rerun/                 config.yaml, accelerate-<backend>.yaml, COMMANDS.md

Hub tokens: passed in, used for the request, and never stored, logged, returned or put in a message.
"""

from studio.export.adapter import export_adapter, zip_adapter, zip_folder
from studio.export.card import blind_test, card_preview, model_card, write_model_card
from studio.export.gguf import GGUF_TYPES, export_gguf, gguf_support, write_gguf
from studio.export.hub import push_to_hub
from studio.export.merge import merge_model
from studio.export.pipeline import ExportResult, default_out_dir, export_run
from studio.export.rerun import (ACCELERATE_DIR, BACKENDS, Rerun, accelerate_config_path, launch_command,
                                 train_command, write_rerun)
from studio.export.source import Progress, base_dtype, base_model_id, data_summary, portable_config

__all__ = ["ACCELERATE_DIR", "BACKENDS", "GGUF_TYPES", "ExportResult", "Progress", "Rerun", "accelerate_config_path",
           "base_dtype", "base_model_id", "blind_test", "card_preview", "data_summary", "default_out_dir",
           "export_adapter", "export_gguf", "export_run", "gguf_support", "launch_command", "merge_model",
           "model_card", "portable_config", "push_to_hub", "train_command", "write_gguf", "write_model_card",
           "write_rerun", "zip_adapter", "zip_folder"]
