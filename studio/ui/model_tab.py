"""The Model tab: pick a base model, see whether training it fits this machine, and what to change if not.

The handlers are plain functions over a plain settings dict (SETTING_NAMES) that return plain values:
`evaluate(settings, lang, hw)` gives the verdict, the breakdown figure, the recommendations and the
dict the Train tab reads from `ctx.model`; `apply_change(settings, change)` applies a recommendation.
`build(ctx)` only maps them to components, so the tests drive the tab without a browser.

Everything here is arithmetic on the model's config (studio.memory, about a millisecond per estimate),
so the verdict follows every control as it moves. Nothing is downloaded or loaded; a Hub id costs one
config.json fetch, remembered for the session.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import hardware, memory
from studio.config import EIGHT_BIT_OPTIMIZERS, MethodConfig, RunConfig, TrainingConfig, field_help
from studio.errors import StudioError, error_text
from studio.models import catalog
from studio.models.loading import needs_remote_code
from studio.space import check_model_name, remote_code_refusal, safe_mode
from studio.ui.i18n import lang_of, register, t, text

GiB = memory.GiB
MAX_RECS = 7  # recommendation buttons: the engine proposes at most ~8, some are left out here
QLORA_DEFAULT_GPU = 24  # GiB: what a QLoRA estimate is shown for on a machine without CUDA, unless one is chosen
TARGETS = ("auto", "8", "12", "16", "24", "40", "48", "80")
# The method control's values -> (RunConfig method, quant_bits)
METHOD_VALUES = {"full": ("full", 4), "lora": ("lora", 4), "qlora4": ("qlora", 4), "qlora8": ("qlora", 8)}
RANKS = (4, 8, 16, 32, 64, 128)
SETTING_NAMES = ("model", "target", "method", "precision", "batch_size", "grad_accum", "max_length",
                 "gradient_checkpointing", "lora_rank", "optimizer")
# Keys of a memory.Recommendation.change this tab can apply and the engine can train with. The 8-bit
# optimizers (bitsandbytes) run on CUDA only: offered only when the estimate is for an NVIDIA GPU.
APPLICABLE = {"model", "gradient_checkpointing", "batch_size", "grad_accum", "seq_len", "method", "quant_bits",
              "optimizer"}
# The optimizer control's choices (studio.config.OPTIMIZERS less SGD, which a beginner never needs here).
OPTIMIZER_CHOICES = ("adamw", "adamw_8bit", "paged_adamw_8bit")

# ---- strings -------------------------------------------------------------------------------------

register({
    "model.tab": ("2 · Model & hardware", "2 · 模型与硬件"),
    "model.pick": ("### Choose a base model", "### 选择基座模型"),
    "model.model": ("Base model", "基座模型"),
    "model.model.info": ("From the catalog: type to filter, or browse it below. Or a local folder or Hub id, on the right.",
                         "从模型目录中选择：可输入筛选，或在下方浏览。也可在右侧填写本地文件夹或 Hub id。"),
    "model.browse": ("Browse the catalog", "浏览模型目录"),
    "model.search": ("Search", "搜索"),
    "model.search.ph": ("e.g. chinese 7b, qwen, apache, base", "例如 chinese 7b、qwen、apache、base"),
    "model.custom": ("…or a local folder or Hugging Face Hub id", "……或本地模型文件夹、Hugging Face Hub id"),
    "model.custom.ph": ("/path/to/model-folder or owner/model, then Enter", "/模型/文件夹路径 或 owner/model，然后回车"),
    "model.setup": ("### How to train it", "### 训练方式"),
    "model.target": ("Check against", "按哪种设备检查"),
    "model.target.info": ("This machine, or a GPU you plan to rent or buy.", "本机，或你打算租用/购买的 GPU。"),
    "model.target.auto": ("This machine", "本机"),
    "model.target.8": ("GPU with 8 GiB (RTX 3070, 4060)", "8 GiB 显卡（RTX 3070、4060）"),
    "model.target.12": ("GPU with 12 GiB (RTX 3060, 4070)", "12 GiB 显卡（RTX 3060、4070）"),
    "model.target.16": ("GPU with 16 GiB (T4, RTX 4080)", "16 GiB 显卡（T4、RTX 4080）"),
    "model.target.24": ("GPU with 24 GiB (RTX 3090, 4090, A10, L4)", "24 GiB 显卡（RTX 3090、4090、A10、L4）"),
    "model.target.40": ("GPU with 40 GiB (A100 40GB)", "40 GiB 显卡（A100 40GB）"),
    "model.target.48": ("GPU with 48 GiB (A6000, L40S)", "48 GiB 显卡（A6000、L40S）"),
    "model.target.80": ("GPU with 80 GiB (A100 80GB, H100)", "80 GiB 显卡（A100 80GB、H100）"),
    "model.method": ("Method", "方法"),
    "model.method.full": ("Full fine-tuning", "全量微调"),
    "model.method.lora": ("LoRA", "LoRA"),
    "model.method.qlora4": ("QLoRA 4-bit", "QLoRA 4 位"),
    "model.method.qlora8": ("QLoRA 8-bit", "QLoRA 8 位"),
    "model.precision": ("Precision", "精度"),
    "model.batch_size": ("Batch size", "批量大小"),
    "model.grad_accum": ("Gradient accumulation", "梯度累积"),
    "model.max_length": ("Sequence length (tokens)", "序列长度（token）"),
    "model.gc": ("Gradient checkpointing", "梯度检查点"),
    "model.gc.auto": ("auto", "自动"),
    "model.gc.on": ("on", "开"),
    "model.gc.off": ("off", "关"),
    "model.lora_rank": ("LoRA rank", "LoRA 秩"),
    "model.optimizer": ("Optimizer", "优化器"),
    "model.optimizer.adamw": ("AdamW", "AdamW"),
    "model.optimizer.adamw_8bit": ("8-bit AdamW (NVIDIA GPU)", "8 位 AdamW（NVIDIA GPU）"),
    "model.optimizer.paged_adamw_8bit": ("Paged 8-bit AdamW (NVIDIA GPU)", "分页 8 位 AdamW（NVIDIA GPU）"),
    "model.optim_no_cuda": ("8-bit AdamW needs an NVIDIA GPU and bitsandbytes; this machine has none, so training "
                            "here will refuse it. Choose AdamW to train on this machine.",
                            "8 位 AdamW 需要 NVIDIA GPU 和 bitsandbytes，本机没有，所以无法在这里用它训练。要在本机训练请选择 AdamW。"),
    "model.use": ("Use this model for training", "用这个模型训练"),
    "model.used": ("✅ Sent to the Train tab: **{name}**, {method}, batch {batch} × {length} tokens ({verdict}).",
                   "✅ 已交给训练页：**{name}**，{method}，批量 {batch} × {length} token（{verdict}）。"),
    "model.recs_title": ("#### What to change", "#### 需要改什么"),
    "model.error": ("⚠️ **Cannot estimate this model.** {error}", "⚠️ **无法估算这个模型。** {error}"),
    "model.recs_none": ("Nothing to change: it fits.", "无需修改：放得下。"),
    "model.recs_help": ("Cheapest first; click one to apply it.", "按代价从小到大排列；点击即可应用。"),
    "model.recs_empty": ("No single change makes it fit; pick a smaller model or a GPU with more memory.",
                         "没有哪一项修改能让它放下；请换更小的模型或显存更大的 GPU。"),
    "model.pick_largest": ("Pick the largest model that fits", "选用放得下的最大模型"),
    "model.explain_title": ("What takes the memory", "内存都花在哪里"),
    "model.hw": ("🖥️ **This machine**: {summary}", "🖥️ **本机**：{summary}"),
    # verdicts
    "model.verdict.fits": ("✅ **Fits**: about **{need}** of {have} ({where}).",
                           "✅ **放得下**：约需 **{need}**，共 {have}（{where}）。"),
    "model.verdict.tight": ("⚠️ **Tight, but fits**: about **{need}** of {have} ({where}); more than 80% in use, so "
                            "other programs on the device could push it over.",
                            "⚠️ **偏紧，但放得下**：约需 **{need}**，共 {have}（{where}）；占用超过 80%，设备上的其他程序可能把它挤爆。"),
    "model.verdict.does not fit": ("❌ **Does not fit**: about **{need}** needed, {usable} usable (90% of {have}, {where}).",
                                   "❌ **放不下**：约需 **{need}**，可用 {usable}（{have} 的 90%，{where}）。"),
    "model.verdict.word.fits": ("fits", "放得下"),
    "model.verdict.word.tight": ("tight", "偏紧"),
    "model.verdict.word.does not fit": ("does not fit", "放不下"),
    "model.peak": ("Peak {gib} GiB · {verdict}", "峰值 {gib} GiB · {verdict}"),
    "model.where.gpu": ("GPU: {name}", "GPU：{name}"),
    "model.where.gpu_size": ("a GPU with {gib} GiB", "{gib} GiB 显存的 GPU"),
    "model.where.cpu": ("RAM: training on the CPU", "内存：在 CPU 上训练"),
    "model.where.mps": ("unified memory, Apple GPU", "统一内存，Apple GPU"),
    "model.in.gpu": ("on this machine's GPU", "在本机 GPU 上"),
    "model.in.gpu_size": ("in a GPU with {gib} GiB", "在 {gib} GiB 显卡上"),
    "model.in.cpu": ("in this machine's RAM", "在本机内存中"),
    "model.in.mps": ("in this Mac's unified memory", "在本机统一内存中"),
    "model.trainable": ("Trains **{trainable}** of {total} parameters ({share}).",
                        "训练 **{trainable}** 个参数，共 {total} 个（{share}）。"),
    "model.gc_auto_on": ("Gradient checkpointing (auto): **on**, because it does not fit without it.",
                         "梯度检查点（自动）：**开**，因为不开放不下。"),
    "model.gc_auto_off": ("Gradient checkpointing (auto): **off**, it fits without it and trains faster.",
                          "梯度检查点（自动）：**关**，不开也放得下，训练更快。"),
    "model.qlora_no_cuda": ("QLoRA needs an NVIDIA GPU (CUDA), and this machine has none, so it cannot train this "
                            "here. Shown: the estimate for a GPU with {gib} GiB (choose another size under "
                            "'Check against'), or choose LoRA.",
                            "QLoRA 需要 NVIDIA GPU（CUDA），本机没有，所以无法在这里训练。下面是按 {gib} GiB 显卡的估算"
                            "（可在“按哪种设备检查”中换成其他大小），或改用 LoRA。"),
    "model.qlora_target_only": ("QLoRA needs an NVIDIA GPU: this machine has none, so this estimate is for the "
                                "GPU chosen above.", "QLoRA 需要 NVIDIA GPU：本机没有，所以这是按上面所选 GPU 的估算。"),
    "model.fp16_no_cuda": ("FP16 training needs an NVIDIA GPU; on this machine choose auto, BF16 or FP32.",
                           "FP16 训练需要 NVIDIA GPU；本机请选自动、BF16 或 FP32。"),
    "model.cpu_weights": ("On a CPU the weights stay in FP32 (the compute may use BF16), so the estimate counts "
                          "4 bytes per weight.", "在 CPU 上权重保持 FP32（计算可能用 BF16），所以估算按每个权重 4 字节计。"),
    "model.largest": ("**Largest catalog model that fits** {where} with these settings: **{id}** ({size}, about {gib}).",
                      "**用这些设置{where}放得下的最大目录模型**：**{id}**（{size}，约 {gib}）。"),
    "model.largest_is_this": (" That is the one you chose.", "正是你选的这个。"),
    "model.largest_none": ("No catalog model fits {where} with these settings: try QLoRA, batch 1 or shorter sequences.",
                           "用这些设置，没有目录模型能{where}放下：试试 QLoRA、批量 1 或更短的序列。"),
    # model notes
    "model.kind.instruct": ("instruct (chat-tuned)", "对话模型（已做指令微调）"),
    "model.kind.base": ("base (pre-trained only)", "基座模型（仅预训练）"),
    "model.remote_code": ("⚠️ Needs remote code: transformers must run code shipped with this model "
                          "(trust_remote_code), which could do anything on the server. The studio refuses it unless "
                          "whoever runs the server started it with `studio ui --allow-remote-code` (never on a public "
                          "Space).", "⚠️ 需要远程代码：transformers 必须运行模型自带的代码（trust_remote_code），"
                          "这些代码可以在服务器上做任何事。除非服务器的管理者用 `studio ui --allow-remote-code` 启动工作室"
                          "（公开的 Space 上永远不行），否则工作室会拒绝它。"),
    "model.remote_code_allowed": ("⚠️ Needs remote code: transformers will run code shipped with this model "
                                  "(trust_remote_code), because this server was started with --allow-remote-code. "
                                  "Use it only if you trust the repository.",
                                  "⚠️ 需要远程代码：因为本服务器以 --allow-remote-code 启动，transformers 会运行这个模型自带的代码"
                                  "（trust_remote_code）。只有信任该仓库时才使用。"),
    "model.gated": ("🔒 Gated on the Hub: accept its licence on the model's page and log in with a token before "
                    "the download.", "🔒 Hub 上需申请访问：下载前请在模型页面接受许可并用 token 登录。"),
    "model.source.folder": ("a local folder", "本地文件夹"),
    "model.source.hub": ("the Hugging Face Hub (only its config.json was fetched)", "Hugging Face Hub（只获取了 config.json）"),
    "model.custom_line": ("**{name}**, from {source}: {params} parameters, architecture `{arch}`.",
                          "**{name}**，来自{source}：{params} 个参数，架构 `{arch}`。"),
    "model.template_yes": ("It has a chat template: treat it as an instruct model. Keep that template for your data.",
                           "它带有对话模板：按对话模型使用，数据请沿用该模板。"),
    "model.template_no": ("It has no chat template: treat it as a base model (plain text, or plenty of SFT data "
                          "in one simple template).", "它没有对话模板：按基座模型使用（纯文本继续预训练，或用大量格式统一的 SFT 数据）。"),
    "model.template_unknown": ("Base or instruct? An instruct model has a chat template (see its model card); a base "
                               "model only continues text.", "基座还是对话模型？对话模型带有对话模板（见模型卡）；基座模型只会续写文本。"),
    # table
    "model.col.id": ("Model", "模型"),
    "model.col.size": ("Size", "大小"),
    "model.col.kind": ("Kind", "类型"),
    "model.col.languages": ("Languages", "语言"),
    "model.col.licence": ("Licence", "许可"),
    "model.col.remote": ("Remote code", "远程代码"),
    "model.yes": ("yes", "是"),
    "model.no": ("no", "否"),
    # recommendations: one label per kind of change, and what each costs
    "model.rec.gc": ("turn on gradient checkpointing", "打开梯度检查点"),
    "model.rec.batch": ("batch size 1 with gradient accumulation {n}", "批量 1，梯度累积 {n}"),
    "model.rec.seq": ("shorter sequences ({old} → {new} tokens)", "缩短序列（{old} → {new} token）"),
    "model.rec.lora": ("train a LoRA adapter instead of all weights", "改为训练 LoRA 适配器，而不是全部权重"),
    "model.rec.qlora": ("use QLoRA (4-bit base model)", "改用 QLoRA（4 位基座模型）"),
    "model.rec.bits4": ("store the base model in 4 bits", "把基座模型存为 4 位"),
    "model.rec.optim": ("use the 8-bit AdamW optimizer", "改用 8 位 AdamW 优化器"),
    "model.rec.model": ("a smaller model: {id}", "换更小的模型：{id}"),
    "model.rec.all": ("all of the above together", "以上全部一起"),
    "model.rec.line": ("{label}: {old} → {new}, {verdict}", "{label}：{old} → {new}，{verdict}"),
    "model.cost.gc": ("about 20-30% slower, same quality", "慢约 20-30%，质量不变"),
    "model.cost.batch": ("slower steps, same quality", "每步更慢，质量不变"),
    "model.cost.seq": ("longer rows are cut; check the token-length histogram", "更长的行会被截断；请看数据页的长度分布"),
    "model.cost.lora": ("learns less than full fine-tuning", "学到的比全量微调少"),
    "model.cost.qlora": ("about 30% slower, slightly lower quality; NVIDIA GPU only", "慢约 30%，质量略降；仅限 NVIDIA GPU"),
    "model.cost.bits4": ("slightly lower quality", "质量略降"),
    "model.cost.optim": ("slightly less precise updates; NVIDIA GPU only", "更新略不精确；仅限 NVIDIA GPU"),
    "model.cost.model": ("a smaller model knows less", "更小的模型懂得更少"),
    "model.cost.all": ("the costs of each", "各项代价之和"),
    # what each part of the bar is (seed 004's beginner concepts)
    "model.part.weights": ("the model's own numbers. 2 bytes each in BF16 (a 7B model: about 14 GB), 4 in FP32, "
                           "about half a byte in 4-bit QLoRA.",
                           "模型自身的参数。BF16 每个 2 字节（7B 模型约 14 GB），FP32 为 4 字节，4 位 QLoRA 约半字节。"),
    "model.part.trainable": ("the LoRA adapter: small matrices beside the frozen model, like a sticky note on a "
                             "textbook instead of reprinting the book.",
                             "LoRA 适配器：冻结模型旁边的小矩阵，好比在教科书边上贴便利贴，而不是把整本书重印一遍。"),
    "model.part.gradients": ("for every number being trained, which way and how far to move it. Full fine-tuning "
                             "needs one per parameter (7B: about 14 GB); LoRA only for the adapter.",
                             "告诉每个被训练的参数往哪改、改多少。全量微调每个参数都要一份（7B 约 14 GB）；LoRA 只需适配器的。"),
    "model.part.optimizer": ("AdamW keeps two running averages (momentum) per trained number: twice the gradients "
                             "(7B full: about 28 GB). This is why full fine-tuning of 7B needs 60 GB and more.",
                             "AdamW 为每个被训练的参数记录两个动量：是梯度的两倍（7B 全量约 28 GB）。这就是 7B 全量微调要 60 GB 以上显存的原因。"),
    "model.part.activations": ("the scratch paper of the forward pass, kept for the backward pass. It grows with "
                               "batch size × sequence length; gradient checkpointing keeps only each layer's input "
                               "and recomputes the rest.",
                               "前向计算的“草稿纸”，留给反向传播用。随批量 × 序列长度增长；梯度检查点只保留每层的输入，其余重算。"),
    "model.part.logits": ("a score for every word of the vocabulary at every position, to compute the loss. Large "
                          "for big vocabularies (Qwen: 152K words).",
                          "每个位置对词表中每个词的打分，用来算损失。词表越大越占内存（Qwen 有 15 万多个词）。"),
    "model.part.overhead": ("the CUDA context and memory the allocator holds in reserve; on a CPU, the Python "
                            "process itself.", "CUDA 上下文和分配器预留的内存；在 CPU 上则是 Python 进程本身。"),
    "model.part.line": ("- **{label}: {size}**: {explain}", "- **{label}：{size}**：{explain}"),
    "model.explain": (
        "**Memory** (GPU memory, VRAM) is the fuel tank: everything above must fit in it, or training stops with "
        "'out of memory'. The studio counts 90% of it as usable.\n\n"
        "**Precision** is how each number is stored. **FP32**: 4 bytes, the most exact, slow. **BF16 / FP16**: "
        "2 bytes, half the memory and about twice as fast with almost the same quality: the usual choice on a GPU "
        "(BF16 needs an Ampere or newer GPU; FP16 works on older ones). **INT8 / INT4**: the frozen model "
        "compressed to 1 or ½ byte per number (QLoRA); the adapter on top still trains in 16-bit.\n\n"
        "**LoRA rank** is how many columns the adapter's small matrices have, so how much it can learn: 8-16 suits "
        "most tasks. Doubling it doubles the adapter but barely moves the total.\n\n"
        "**Batch size** is how many rows the model sees per step: more is faster but fills memory with "
        "activations. Batch 1 with gradient accumulation N learns like batch N, only slower. **Sequence length** "
        "is the longest row in tokens: memory grows with it, and longer rows are cut.",
        "**内存**（显存，VRAM）就是“油箱”：上面这些都得装进去，否则训练会报“Out of Memory（OOM）”。工作室把其中 90% 算作可用。\n\n"
        "**精度**决定每个数字怎么存。**FP32**：4 字节，最精细，但慢。**BF16 / FP16**：2 字节，空间减半、速度约翻倍，效果几乎不掉，"
        "是 GPU 上的主流选择（BF16 需要 Ampere 及更新的显卡；老显卡用 FP16）。**INT8 / INT4**：把冻结的模型压缩到每个数字 1 或 ½ 字节"
        "（QLoRA），上面的适配器仍按 16 位训练。\n\n"
        "**LoRA 秩**是适配器小矩阵的列数，也就是它能学多少：多数任务 8-16 即可。秩翻倍，适配器翻倍，但总内存几乎不变。\n\n"
        "**批量大小**是每一步看多少条数据：越大越快，但激活值会占满内存。批量 1 加梯度累积 N 的效果和批量 N 一样，只是更慢。"
        "**序列长度**是每条数据最多多少个 token：内存随之增长，超出的部分会被截断。"),
})
for _cls, _names in ((TrainingConfig, ("batch_size", "grad_accum", "max_length", "precision", "gradient_checkpointing",
                                       "optimizer")),
                     (MethodConfig, ("method", "lora_rank"))):
    for _n in _names:  # the help text is written once, in studio/config.py
        register({f"model.help.{_n}": (field_help(_cls, _n, "en"), field_help(_cls, _n, "zh"))})

TITLE = t("model.tab")


# ---- settings ------------------------------------------------------------------------------------

def default_settings() -> dict:
    """The tab's starting values: the same defaults as a fresh RunConfig, so both tabs agree."""
    d = RunConfig()
    return {"model": d.model.name, "target": "auto", "method": d.method.method, "precision": d.training.precision,
            "batch_size": d.training.batch_size, "grad_accum": d.training.grad_accum,
            "max_length": d.training.max_length, "gradient_checkpointing": d.training.gradient_checkpointing,
            "lora_rank": d.method.lora_rank, "optimizer": d.training.optimizer}


def _whole(v):
    """A whole number from a control (Number gives floats, Radio may give strings); anything else is passed on
    as is, so the engine names the problem in its own sentence."""
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return v
    return v


def normalise(settings: dict) -> dict:
    s = default_settings()
    s.update({k: v for k, v in (settings or {}).items() if k in SETTING_NAMES})
    s["model"] = str(s["model"] or "").strip()
    s["target"] = str(s["target"] or "auto")
    for k in ("batch_size", "grad_accum", "max_length", "lora_rank"):
        s[k] = _whole(s[k])
    gc = s["gradient_checkpointing"]
    s["gradient_checkpointing"] = ("on" if gc else "off") if isinstance(gc, bool) else str(gc or "auto").lower()
    s["optimizer"] = str(s["optimizer"] or "adamw").lower()
    return s


def apply_change(settings: dict, change: dict) -> dict:
    """The settings after a recommendation's `change` (keyword arguments of memory.estimate, plus `model`)."""
    s = normalise(settings)
    if "model" in change:
        s["model"] = change["model"]
    if "gradient_checkpointing" in change:
        s["gradient_checkpointing"] = "on" if change["gradient_checkpointing"] else "off"
    if "batch_size" in change:
        s["batch_size"] = int(change["batch_size"])
    if "grad_accum" in change:
        s["grad_accum"] = int(change["grad_accum"])
    if "seq_len" in change:
        s["max_length"] = int(change["seq_len"])
    if "lora_rank" in change:
        s["lora_rank"] = int(change["lora_rank"])
    if "precision" in change:
        s["precision"] = change["precision"]
    if "optimizer" in change:
        s["optimizer"] = change["optimizer"]
    if "method" in change or "quant_bits" in change:
        method, bits = METHOD_VALUES.get(s["method"], ("lora", 4))
        method, bits = change.get("method", method), int(change.get("quant_bits", bits))
        s["method"] = ("qlora4" if bits == 4 else "qlora8") if method == "qlora" else method
    return s


# ---- the model -----------------------------------------------------------------------------------

_HUB_CACHE: dict[str, tuple[float, object]] = {}  # Hub id -> (time, (dims, source) or StudioError)
_HUB_ERROR_TTL = 60.0  # seconds a failed fetch is remembered, so moving a slider does not refetch offline


def resolve_model(name: str) -> tuple[memory.ModelDims, str, catalog.CatalogEntry | None]:
    """(dims, source, catalog entry or None) for a catalog id, a local folder or a Hub id."""
    name = str(name or "").strip()
    entry = catalog.find(name) if name else None
    if entry is not None:
        return entry.dims, f"catalog: {entry.id}", entry
    p = Path(name).expanduser()
    if not name or p.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        dims, source = catalog.resolve_dims(name)  # folders are read every time: they may change
        return dims, source, None
    hit = _HUB_CACHE.get(name)
    if hit is None or (isinstance(hit[1], StudioError) and time.monotonic() - hit[0] > _HUB_ERROR_TTL):
        try:
            value = catalog.resolve_dims(name)
        except StudioError as e:
            value = e
        _HUB_CACHE[name] = hit = (time.monotonic(), value)
    if isinstance(hit[1], StudioError):
        raise hit[1]
    dims, source = hit[1]
    return dims, source, None


def _human_count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}".replace(f".0{unit}", unit)
    return f"{int(n)}"


def _chat_template(folder: Path) -> bool | None:
    """Whether a model folder ships a chat template (None when it cannot tell)."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tc = folder / "tokenizer_config.json"
    if not tc.is_file():
        return None
    try:
        return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return None


def model_notes(name: str, dims: memory.ModelDims, source: str, entry, lang: str = "en") -> str:
    """What the person should know about this model: language, licence, size, base vs instruct, remote code."""
    zh = lang == "zh"
    if entry is not None:
        lines = [f"**{entry.hub_id}** · {entry.size_label} · {text('model.kind.' + entry.kind, lang)} · "
                 f"{', '.join(entry.languages)} · {entry.licence}",
                 entry.notes_zh if zh else entry.notes]
        kind_note = entry.kind_note_zh if zh else entry.kind_note
        if kind_note:
            lines.append(f"*{text('model.kind.' + entry.kind, lang)}*: {kind_note}")
        if entry.needs_remote_code:
            lines.append(_remote_code_note(lang))
        if "gated" in entry.licence.lower():
            lines.append(text("model.gated", lang))
        return "\n\n".join(lines)
    folder = source.startswith("folder:")
    lines = [text("model.custom_line", lang, name=name, params=_human_count(dims.param_count), arch=dims.model_type,
                  source=text("model.source.folder" if folder else "model.source.hub", lang))]
    has_template = _chat_template(Path(name).expanduser()) if folder else None
    lines.append(text({True: "model.template_yes", False: "model.template_no", None: "model.template_unknown"}[has_template],
                      lang))
    if needs_remote_code(name):
        lines.append(_remote_code_note(lang))
    return "\n\n".join(lines)


def _remote_code_note(lang: str) -> str:
    return text("model.remote_code_allowed" if safe_mode().allow_remote_code else "model.remote_code", lang)


def catalog_frame(query: str = "", lang: str = "en") -> pd.DataFrame:
    """The catalog as a table, filtered by `query` (every word must match; see catalog.search)."""
    cols = [text(f"model.col.{c}", lang) for c in ("id", "size", "kind", "languages", "licence", "remote")]
    rows = [[e.id, e.size_label, text(f"model.kind.{e.kind}", lang).split(" (")[0].split("（")[0],
             ", ".join(e.languages), e.licence, text("model.yes" if e.needs_remote_code else "model.no", lang)]
            for e in catalog.search(query or "")]
    return pd.DataFrame(rows, columns=cols)


def row_model(query: str, index, value=None) -> str:
    """The catalog id of a clicked table cell. The row is looked up again on the server from the search words:
    the browser's own row data can lag behind the table it shows while search results arrive."""
    if isinstance(value, str) and catalog.find(value) is not None:
        return catalog.find(value).id
    try:
        row = int(index[0] if isinstance(index, (list, tuple)) else index)
    except (TypeError, ValueError):
        return ""
    entries = catalog.search(query or "")
    return entries[row].id if 0 <= row < len(entries) else ""


def catalog_choices() -> list[tuple[str, str]]:
    return [(e.label("en"), e.id) for e in catalog.load()]


# ---- the estimate --------------------------------------------------------------------------------

def hardware_md(hw: dict, lang: str = "en") -> str:
    return text("model.hw", lang, summary=hardware.summary_line(hw, lang))


def placement(target: str, method: str, precision: str, hw: dict, lang: str = "en") -> dict:
    """Where the estimate is checked: {"device", "capacity", "where", "where_in" (two phrasings of the device),
    "precision" (for the estimate), "notes"}."""
    notes: list[str] = []
    has_cuda = bool(hw.get("cuda"))
    if target in ("", "auto", None):
        device = hardware.default_device(hw)
        if method == "qlora" and device != "cuda":
            notes.append(text("model.qlora_no_cuda", lang, gib=QLORA_DEFAULT_GPU))
            device, capacity = "cuda", QLORA_DEFAULT_GPU * GiB
            where = text("model.where.gpu_size", lang, gib=QLORA_DEFAULT_GPU)
            where_in = text("model.in.gpu_size", lang, gib=QLORA_DEFAULT_GPU)
        else:
            capacity = hardware.capacity_bytes(hw, device)
            if device == "cuda":
                where = text("model.where.gpu", lang, name=hw["gpus"][0]["name"])
            else:
                where = text(f"model.where.{device}", lang)
            where_in = text("model.in." + ("gpu" if device == "cuda" else device), lang)
        gpu_bf16 = bool(hw.get("gpus") and hw["gpus"][0].get("bf16"))
    else:
        try:
            gib = float(target)
        except ValueError:
            raise StudioError(f"'{target}' is not a memory size; choose this machine or a GPU size.",
                              f"“{target}”不是内存大小；请选择“这台机器”或一个 GPU 显存大小。") from None
        device, capacity = "cuda", int(gib * GiB)
        where = text("model.where.gpu_size", lang, gib=f"{gib:g}")
        where_in = text("model.in.gpu_size", lang, gib=f"{gib:g}")
        gpu_bf16 = True  # the cards offered are Ampere or newer, except T4/V100 (fp16): bf16 and fp16 cost the same
        if method == "qlora" and not has_cuda:
            notes.append(text("model.qlora_target_only", lang))
    prec = str(precision or "auto").lower()
    if prec == "fp16" and device != "cuda":
        notes.append(text("model.fp16_no_cuda", lang))
    if device == "cuda":
        est_prec = ("bf16" if gpu_bf16 else "fp16") if prec == "auto" else prec
    else:
        # studio.engine.device loads the weights in fp32 on a CPU or MPS (bf16 only as autocast), and the
        # estimator has no "fp32 weights with 16-bit compute" for LoRA: count fp32, the safe side.
        est_prec = "fp32"
        if prec in ("bf16", "fp16"):
            notes.append(text("model.cpu_weights", lang))
    return {"device": device, "capacity": capacity, "where": where, "where_in": where_in, "precision": est_prec,
            "notes": notes}


def estimate(dims: memory.ModelDims, s: dict, hw: dict, lang: str = "en") -> tuple[memory.Estimate, dict]:
    """The estimate for these settings, with gradient checkpointing 'auto' resolved as the engine does
    (on only when the run does not fit without it). Returns (estimate, placement + {"gc_on", "gc_auto"})."""
    if s["method"] not in METHOD_VALUES:
        raise StudioError(f"Unknown method '{s['method']}'. Choose full, LoRA, QLoRA 4-bit or QLoRA 8-bit.",
                          f"未知的方法“{s['method']}”。请选择全量微调、LoRA、QLoRA 4 位或 QLoRA 8 位。")
    method, bits = METHOD_VALUES[s["method"]]
    pl = placement(s["target"], method, s["precision"], hw, lang)
    kw = dict(batch_size=s["batch_size"], seq_len=s["max_length"], grad_accum=s["grad_accum"],
              precision=pl["precision"], lora_rank=s["lora_rank"], target_modules="all-linear", quant_bits=bits,
              optimizer=s["optimizer"], device=pl["device"], capacity_bytes=pl["capacity"], loss=memory.engine_loss())
    if s["optimizer"] in EIGHT_BIT_OPTIMIZERS and not hw.get("cuda"):
        pl["notes"].append(text("model.optim_no_cuda", lang))
    gc = s["gradient_checkpointing"]
    if gc not in ("auto", "on", "off"):
        raise StudioError("Gradient checkpointing must be auto, on or off.", "梯度检查点必须是 auto、on 或 off。")
    if gc == "auto":
        est = memory.estimate(dims, method, gradient_checkpointing=False, **kw)
        gc_on = bool(pl["capacity"]) and est.total_bytes > memory.FIT_SHARE * pl["capacity"]
        if gc_on:
            est = memory.estimate(dims, method, gradient_checkpointing=True, **kw)
    else:
        gc_on = gc == "on"
        est = memory.estimate(dims, method, gradient_checkpointing=gc_on, **kw)
    return est, {**pl, "gc_on": gc_on, "gc_auto": gc == "auto"}


@functools.lru_cache(maxsize=1)
def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def verdict_md(est: memory.Estimate, info: dict, lang: str = "en") -> str:
    cap = est.capacity_bytes or 0
    lines = [text(f"model.verdict.{est.verdict}", lang, need=_gib(est.total_bytes), have=_gib(cap),
                  usable=_gib(cap * memory.FIT_SHARE), where=info["where"])]
    if est.trainable_params:
        share = est.trainable_params / max(1, est.param_count)
        lines.append(text("model.trainable", lang, trainable=_human_count(est.trainable_params),
                          total=_human_count(est.param_count), share=f"{100 * share:.2f}%" if share < 0.1 else f"{100 * share:.0f}%"))
    if info.get("gc_auto"):
        lines.append(text("model.gc_auto_on" if info["gc_on"] else "model.gc_auto_off", lang))
    lines += [f"ℹ️ {n}" for n in info.get("notes", [])]
    return "\n\n".join(lines)


def components_md(est: memory.Estimate, lang: str = "en") -> str:
    """Each part of the bar with its size and one plain sentence on what it is."""
    zh = lang == "zh"
    lines = []
    for key, value in est.breakdown.items():
        if value <= 0:
            continue
        lines.append(text("model.part.line", lang, label=memory.BREAKDOWN_LABELS[key][1 if zh else 0],
                          size=memory.format_bytes(value), explain=text(f"model.part.{key}", lang)))
    return "\n".join(lines)


def _rec_kind(change: dict, settings: dict) -> str:
    kinds = []
    if "model" in change:
        kinds.append("model")
    if "gradient_checkpointing" in change:
        kinds.append("gc")
    if "batch_size" in change or "grad_accum" in change:
        kinds.append("batch")
    if "seq_len" in change:
        kinds.append("seq")
    if "optimizer" in change:
        kinds.append("optim")
    if change.get("method") == "lora":
        kinds.append("lora")
    elif change.get("method") == "qlora":
        kinds.append("qlora")
    elif "quant_bits" in change:
        kinds.append("bits4")
    return kinds[0] if len(kinds) == 1 else "all"


def recommendations(dims: memory.ModelDims, est: memory.Estimate, s: dict, hw: dict, lang: str = "en") -> list[dict]:
    """The engine's recommendations this tab can apply, cheapest first, each re-estimated exactly as applying
    it will show: [{"text", "change", "verdict", "total_bytes"}]. A change that moves the check to another
    device (QLoRA on a machine without CUDA is shown for a GPU) is left out: it would not make it fit here."""
    out: list[dict] = []
    seen: list[dict] = []
    for r in memory.recommendations(dims, est, catalog_models=catalog.load()):
        change = {k: v for k, v in r.change.items() if k in APPLICABLE}
        if not change or change in seen:
            continue
        seen.append(change)
        new_s = apply_change(s, change)
        try:
            new_dims = resolve_model(new_s["model"])[0] if "model" in change else dims
            new, _ = estimate(new_dims, new_s, hw, lang)
        except StudioError:
            continue
        if new.device != est.device or new.capacity_bytes != est.capacity_bytes or new.total_bytes >= est.total_bytes:
            continue
        kind = _rec_kind(change, s)
        label = text(f"model.rec.{kind}", lang, n=change.get("grad_accum", ""), old=s["max_length"],
                     new=change.get("seq_len", ""), id=change.get("model", ""))
        line = text("model.rec.line", lang, label=label, old=_gib(est.total_bytes), new=_gib(new.total_bytes),
                    verdict=text(f"model.verdict.word.{new.verdict}", lang))
        out.append({"text": f"{line} ({text(f'model.cost.{kind}', lang)})", "change": change,
                    "verdict": new.verdict, "total_bytes": new.total_bytes})
    return out[:MAX_RECS]


def largest_model(est: memory.Estimate, s: dict, info: dict, lang: str = "en") -> dict:
    """The catalog model with the most parameters that fits with this method and setup: {"id", "md"}."""
    setup = dict(est.setup)
    if info.get("gc_auto"):
        setup["gradient_checkpointing"] = True  # auto turns it on when a model needs it
    where = info["where_in"]
    found = memory.largest_fitting_model(catalog.load(), est.capacity_bytes, setup) if est.capacity_bytes else None
    if found is None:
        return {"id": "", "md": text("model.largest_none", lang, where=where)}
    entry, e = found
    md = text("model.largest", lang, where=where, id=entry.id, size=entry.size_label, gib=_gib(e.total_bytes))
    current = catalog.find(s["model"])
    if current is not None and current.hub_id == entry.hub_id:  # "embedded" is SmolLM2-135M-Instruct too
        md += text("model.largest_is_this", lang)
        return {"id": "", "md": md}
    return {"id": entry.id, "md": md}


def model_context(s: dict, est: memory.Estimate | None, info: dict | None = None) -> dict:
    """What the Train tab reads from ctx.model (see studio/ui/context.py)."""
    method, bits = METHOD_VALUES.get(s["method"], ("lora", 4))
    gc = {"on": True, "off": False}.get(s["gradient_checkpointing"], "auto")
    return {"name": s["model"], "method": method, "precision": s["precision"], "batch_size": s["batch_size"],
            "grad_accum": s["grad_accum"], "max_length": s["max_length"], "gradient_checkpointing": gc,
            "lora_rank": s["lora_rank"], "target_modules": "all-linear", "quant_bits": bits,
            "optimizer": s["optimizer"],
            "verdict": est.verdict if est else None, "estimate_gib": round(est.total_gib, 2) if est else None,
            "checked_for": (info or {}).get("where", ""),
            # The Train tab asks for trust_remote_code only for a model that needs it; starting refuses it
            # unless the server allows it (studio.space.check_remote_code).
            "needs_remote_code": needs_remote_code(s["model"])}


def evaluate(settings: dict, lang: str = "en", hw: dict | None = None) -> dict:
    """Everything the tab shows for these settings. Keys: ok, settings, hardware_md, and either error (one
    plain sentence) or estimate, verdict, verdict_md, figure, components_md, notes_md, recommendations,
    recs_md, largest, model_ctx."""
    s = normalise(settings)
    hw = hardware.detect() if hw is None else hw
    out: dict = {"ok": False, "settings": s, "hardware_md": hardware_md(hw, lang)}
    try:
        check_model_name(s["model"])  # on a public Space: no folder outside the app's own (studio.paths.confine)
        dims, source, entry = resolve_model(s["model"])
        est, info = estimate(dims, s, hw, lang)
    except StudioError as e:
        out.update(error=error_text(e, lang), verdict_md=text("model.error", lang, error=error_text(e, lang)))
        return out
    recs = recommendations(dims, est, s, hw, lang)
    if est.verdict == "fits":
        recs_md = text("model.recs_none", lang)
    elif recs:
        recs_md = text("model.recs_help", lang)
    else:
        recs_md = text("model.recs_empty", lang)
    recs_md = text("model.recs_title", lang) + "\n\n" + recs_md
    title = text("model.peak", lang, gib=f"{est.total_gib:.1f}", verdict=text(f"model.verdict.word.{est.verdict}", lang))
    out.update(ok=True, estimate=est, verdict=est.verdict, verdict_md=verdict_md(est, info, lang),
               figure=memory.breakdown_figure(est, lang, title=title), components_md=components_md(est, lang),
               notes_md=model_notes(s["model"], dims, source, entry, lang), recommendations=recs, recs_md=recs_md,
               largest=largest_model(est, s, info, lang), model_ctx=model_context(s, est, info))
    return out


def use_message(res: dict, lang: str = "en") -> str:
    if not res["ok"]:
        return res["verdict_md"]
    m = res["model_ctx"]
    if m.get("needs_remote_code") and not safe_mode().allow_remote_code:
        return "⛔ " + remote_code_refusal(m["name"]).text(lang)
    method = text("model.method." + {"full": "full", "lora": "lora"}.get(m["method"], f"qlora{m['quant_bits']}"), lang)
    return text("model.used", lang, name=m["name"], method=method, batch=m["batch_size"], length=m["max_length"],
                verdict=text(f"model.verdict.word.{m['verdict']}", lang))


# ---- the tab -------------------------------------------------------------------------------------

def build(ctx) -> dict:
    # detect() imports torch (seconds, once): start it now so the first page load does not wait for it.
    threading.Thread(target=hardware.detect, daemon=True).start()
    d = default_settings()
    recs_state = gr.State([])  # the change dicts behind the recommendation buttons
    largest_state = gr.State("")

    gr.Markdown(t("model.pick"))
    with gr.Row(equal_height=True):
        model_dd = gr.Dropdown(catalog_choices(), value=d["model"], allow_custom_value=True, filterable=True, scale=3,
                               label=t("model.model"), info=t("model.model.info"), elem_id="model-name")
        custom = gr.Textbox(label=t("model.custom"), placeholder=t("model.custom.ph"), submit_btn=True, scale=2,
                            elem_id="model-custom")
    with gr.Accordion(t("model.browse"), open=False, elem_id="model-browse"):
        search = gr.Textbox(label=t("model.search"), placeholder=t("model.search.ph"), elem_id="model-search")
        table = gr.Dataframe(catalog_frame(), interactive=False, wrap=True, max_height=360, elem_id="model-catalog",
                             column_widths=["22%", "8%", "10%", "24%", "26%", "10%"])

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
            notes_md = gr.Markdown(elem_id="model-notes")
            hw_md = gr.Markdown(elem_id="model-hardware")
            gr.Markdown(t("model.setup"))
            target = gr.Dropdown([(t(f"model.target.{k}"), k) for k in TARGETS], value="auto",
                                 label=t("model.target"), info=t("model.target.info"), elem_id="model-target")
            method = gr.Radio([(t(f"model.method.{k}"), k) for k in METHOD_VALUES], value=d["method"],
                              label=t("model.method"), info=t("model.help.method"), elem_id="model-method")
            precision = gr.Radio([("auto", "auto"), ("BF16", "bf16"), ("FP16", "fp16"), ("FP32", "fp32")],
                                 value=d["precision"], label=t("model.precision"), info=t("model.help.precision"),
                                 elem_id="model-precision")
            with gr.Row():
                # No minimum on purpose: a bad value gets the engine's sentence in the verdict, not a silent clamp.
                batch = gr.Number(d["batch_size"], precision=0, label=t("model.batch_size"),
                                  info=t("model.help.batch_size"), elem_id="model-batch")
                accum = gr.Number(d["grad_accum"], precision=0, label=t("model.grad_accum"),
                                  info=t("model.help.grad_accum"), elem_id="model-accum")
            max_length = gr.Number(d["max_length"], precision=0, label=t("model.max_length"),
                                   info=t("model.help.max_length"), elem_id="model-length")
            gc = gr.Radio([(t(f"model.gc.{k}"), k) for k in ("auto", "on", "off")], value=d["gradient_checkpointing"],
                          label=t("model.gc"), info=t("model.help.gradient_checkpointing"), elem_id="model-gc")
            rank = gr.Radio(list(RANKS), value=d["lora_rank"], label=t("model.lora_rank"),
                            info=t("model.help.lora_rank"), elem_id="model-rank")
            optimizer = gr.Radio([(t(f"model.optimizer.{k}"), k) for k in OPTIMIZER_CHOICES], value=d["optimizer"],
                                 label=t("model.optimizer"), info=t("model.help.optimizer"), elem_id="model-optimizer")
            use_btn = gr.Button(t("model.use"), variant="primary", elem_id="model-use")
            use_md = gr.Markdown(elem_id="model-used")

        with gr.Column(scale=3, min_width=480):
            verdict = gr.Markdown(elem_id="model-verdict")
            plot = gr.Plot(show_label=False, elem_id="model-plot")
            recs_md = gr.Markdown(elem_id="model-recs")
            rec_btns = [gr.Button(visible=False, size="sm", elem_id=f"model-rec-{i}") for i in range(MAX_RECS)]
            largest_md = gr.Markdown(elem_id="model-largest")
            largest_btn = gr.Button(t("model.pick_largest"), visible=False, size="sm", elem_id="model-largest-btn")
            with gr.Accordion(t("model.explain_title"), open=True, elem_id="model-explain"):
                parts_md = gr.Markdown(elem_id="model-parts")
                gr.Markdown(t("model.explain"))

    controls = [model_dd, target, method, precision, batch, accum, max_length, gc, rank, optimizer]

    def settings_of(values) -> dict:
        return dict(zip(SETTING_NAMES, values))

    def view(res: dict) -> dict:
        out = {verdict: res["verdict_md"], hw_md: res["hardware_md"]}
        if not res["ok"]:
            out.update({plot: gr.Plot(value=None, visible=False), recs_md: "", recs_state: [], largest_md: "", largest_state: "",
                        largest_btn: gr.Button(visible=False), parts_md: "", notes_md: ""})
            out.update({b: gr.Button(visible=False) for b in rec_btns})
            return out  # ctx.model keeps the last choice that worked
        recs = res["recommendations"]
        out.update({plot: gr.Plot(value=res["figure"], visible=True), recs_md: res["recs_md"], recs_state: [r["change"] for r in recs],
                    largest_md: res["largest"]["md"], largest_state: res["largest"]["id"],
                    largest_btn: gr.Button(visible=bool(res["largest"]["id"])), parts_md: res["components_md"],
                    notes_md: res["notes_md"], ctx.model: res["model_ctx"]})
        for i, b in enumerate(rec_btns):
            out[b] = gr.Button(recs[i]["text"], visible=True) if i < len(recs) else gr.Button(visible=False)
        return out

    outputs = [verdict, hw_md, plot, recs_md, recs_state, largest_md, largest_state, largest_btn, parts_md, notes_md,
               ctx.model, *rec_btns]

    def on_change(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
                  request: gr.Request):
        s = settings_of((model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v))
        return view(evaluate(s, lang_of(request)))

    # triggers=None: on page load and on every change of any control (an estimate takes about a millisecond).
    gr.on(None, on_change, controls, outputs, trigger_mode="always_last", show_progress="hidden")

    def on_search(q, request: gr.Request):
        return catalog_frame(q, lang_of(request))

    # On page load (headers in the browser's language) and on every change of the search words.
    gr.on(None, on_search, [search], table, trigger_mode="always_last", show_progress="hidden")

    def on_row(query, evt: gr.SelectData):
        return row_model(query, evt.index, evt.value) or gr.skip()

    table.select(on_row, search, model_dd)

    def on_custom(value):
        value = (value or "").strip()
        return value or gr.skip()

    custom.submit(on_custom, custom, model_dd)

    def make_apply(i: int):
        def apply(changes, *values):
            if i >= len(changes):
                return {}
            new = apply_change(settings_of(values), changes[i])
            return {c: new[n] for n, c in zip(SETTING_NAMES, controls)}
        return apply

    for i, b in enumerate(rec_btns):
        b.click(make_apply(i), [recs_state, *controls], controls)

    largest_btn.click(lambda mid: mid or gr.skip(), largest_state, model_dd)

    def on_use(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
               request: gr.Request):
        lang = lang_of(request)
        res = evaluate(settings_of((model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v,
                                    optimizer_v)), lang)
        out = {use_md: use_message(res, lang)}
        if res["ok"]:
            out[ctx.model] = res["model_ctx"]
        return out

    use_btn.click(on_use, controls, [use_md, ctx.model])

    return {"model": model_dd, "target": target, "method": method, "precision": precision, "batch_size": batch,
            "grad_accum": accum, "max_length": max_length, "gradient_checkpointing": gc, "lora_rank": rank,
            "optimizer": optimizer, "verdict": verdict, "plot": plot, "recommendations": rec_btns, "use": use_btn}
