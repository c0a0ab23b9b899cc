"""An Ollama `Modelfile` beside the GGUF files: which file to run, the chat template in Ollama's Go
template language, the default system prompt and the stop tokens.

The template is recognized, not translated: the model's Jinja template is rendered on a probe
conversation and matched against the chat formats a Llama-architecture GGUF can have (ChatML, as in
SmolLM2 and Qwen; Llama 3). An unknown format gets no TEMPLATE line: Ollama then uses the template it
reads from the GGUF itself, which carries the original one.
"""

from __future__ import annotations

from pathlib import Path

from studio.files import atomic_write_text

MODELFILE = "Modelfile"
_PROBE = "\x01probe\x01"

TEMPLATES = {
    "chatml": ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
               "<|im_start|>assistant\n"),
    "llama3": ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
               "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"),
}
_MARKERS = {"chatml": ("<|im_start|>user\n", "<|im_start|>system\n", "<|im_end|>"),
            "llama3": ("<|start_header_id|>user<|end_header_id|>\n\n",
                       "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>")}
# Tokens that end a turn in these formats; the ones the vocabulary has become stop parameters.
_STOPS = ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>")


def chat_format(tok) -> tuple[str | None, str]:
    """(the format's name or None, the default system prompt the template adds when none is given)."""
    try:
        text = tok.apply_chat_template([{"role": "user", "content": _PROBE}], tokenize=False,
                                       add_generation_prompt=True)
    except Exception:
        return None, ""
    for name, (user, system, end) in _MARKERS.items():
        if user + _PROBE in text:
            default_system = ""
            if system in text.split(user + _PROBE)[0]:
                default_system = text.split(system, 1)[1].split(end, 1)[0]
            return name, default_system
    return None, ""


def stop_tokens(tok) -> list[str]:
    vocab = tok.get_vocab()
    found = [t for t in (tok.eos_token, *_STOPS) if t and t in vocab]
    return list(dict.fromkeys(found))


def _quoted(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def modelfile_text(tok, gguf_name: str, others: list[str] = ()) -> str:
    name, system = chat_format(tok)
    lines = [f"FROM ./{gguf_name}"]
    lines += [f"# FROM ./{other}" for other in others]
    if name:
        lines.append(f"TEMPLATE {_quoted(TEMPLATES[name])}")
    if system:
        lines.append(f"SYSTEM {_quoted(system)}")
    lines += [f'PARAMETER stop "{s}"' for s in stop_tokens(tok)]
    return "\n".join(lines) + "\n"


def write_modelfile(model_dir: str | Path, gguf_files: list[Path]) -> Path:
    """`Modelfile` beside the GGUF files, FROM the first of them (the others as comments): run it with
    `ollama create NAME -f Modelfile` in that folder."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    folder = Path(gguf_files[0]).parent
    path = folder / MODELFILE
    atomic_write_text(path, modelfile_text(tok, Path(gguf_files[0]).name, [Path(f).name for f in gguf_files[1:]]))
    return path
