"""genstack: the generative-AI stack that runs on your own machine.

The public API is what ``__all__`` lists; everything else is private and may
change. Imports are cheap: the names of the higher layers (ingest, search,
ask, chat, summaries, tasks, evaluation) load on first use, and models load on
their first request.
"""

import importlib as _importlib


from .config import Settings, load_settings
from .errors import (
    ContextLengthExceeded,
    GenstackError,
    InvalidParameter,
    ModelIntegrityError,
    ModelNotFound,
    ModelNotInstalled,
    UnsupportedModelFormat,
)
from .generation import Chunk, Completion, GenerationRequest, Message, SamplingParams, TextStream, Usage
from .models.base import Model
from .models.memory import MemoryEstimate, estimate_memory
from .models.registry import REGISTRY, ModelSpec, get_model

__version__ = "0.1.0"

#: names loaded on first use: {name: (module, attribute)}
_LAZY = {
    # documents in: load, split, embed, store
    "ingest": ("genstack.ingestion", "ingest"),
    "IngestReport": ("genstack.ingestion", "IngestReport"),
    "get_embedder": ("genstack.embeddings", "get_embedder"),
    "Embedder": ("genstack.embeddings.base", "Embedder"),
    "open_collection": ("genstack.stores.collections", "open_collection"),
    "list_collections": ("genstack.stores.collections", "list_collections"),
    "delete_collection": ("genstack.stores.collections", "delete_collection"),
    "VectorStore": ("genstack.stores.base", "VectorStore"),
    # search
    "search": ("genstack.retrieval", "search"),
    "Retriever": ("genstack.retrieval", "Retriever"),
    # grounded answers, chat, summaries, classic tasks
    "ask": ("genstack.rag.pipeline", "ask"),
    "Asker": ("genstack.rag.pipeline", "Asker"),
    "Pipeline": ("genstack.rag.pipeline", "Pipeline"),
    "RagConfig": ("genstack.rag.config", "RagConfig"),
    "RagRequest": ("genstack.rag.pipeline", "RagRequest"),
    "Answer": ("genstack.rag.answer", "Answer"),
    "ChatSession": ("genstack.rag.chat", "ChatSession"),
    "summarize": ("genstack.rag.summaries", "summarize"),
    "sentiment": ("genstack.rag.tasks", "sentiment"),
    "classify": ("genstack.rag.tasks", "classify"),
    "extract": ("genstack.rag.tasks", "extract"),
    "translate": ("genstack.rag.tasks", "translate"),
    # evaluation
    "evaluate_rag": ("genstack.evaluation.rag", "evaluate_rag"),
    "load_rag_dataset": ("genstack.evaluation.rag", "load_rag_dataset"),
    "evaluate_task": ("genstack.evaluation.bench", "evaluate_task"),
    "evaluate_beir": ("genstack.evaluation.retrieval", "evaluate_beir"),
    "perplexity": ("genstack.evaluation.perplexity", "perplexity"),
    "compute_metric": ("genstack.evaluation.metrics", "compute"),
    "evaluate_agent": ("genstack.evaluation.agent", "evaluate_agent"),
    "load_agent_tasks": ("genstack.evaluation.agent", "load_agent_tasks"),
    "evaluate_task_set": ("genstack.evaluation.tasks", "evaluate_task_set"),
    "load_task_set": ("genstack.evaluation.tasks", "load_task_set"),
    # the arena
    "Arena": ("genstack.arena.battles", "Arena"),
    "ArenaDB": ("genstack.arena.store", "ArenaDB"),
    "Leaderboard": ("genstack.arena.ratings", "Leaderboard"),
    "leaderboard": ("genstack.arena.ratings", "leaderboard"),
    # synthetic data
    "synth_qa": ("genstack.synth.qa", "synth_qa"),
    "synth_task": ("genstack.synth.task", "synth_task"),
    "synth_extract": ("genstack.synth.extract", "synth_extract"),
    # tuning
    "tune_sft": ("genstack.tune.sft", "sft"),
    "SFTConfig": ("genstack.tune.sft", "SFTConfig"),
    "tune_dpo": ("genstack.tune.dpo", "dpo"),
    "DPOConfig": ("genstack.tune.dpo", "DPOConfig"),
    "TuneResult": ("genstack.tune.run", "TuneResult"),
    "tune_report": ("genstack.tune.report", "tune_report"),
    # agents and tools
    "Agent": ("genstack.agents.loop", "Agent"),
    "run_agent": ("genstack.agents.loop", "run_agent"),
    "Tool": ("genstack.agents.tools", "Tool"),
    "Function": ("genstack.agents.calling", "Function"),
    "ToolCall": ("genstack.agents.calling", "ToolCall"),
    "respond_with_tools": ("genstack.agents.calling", "respond"),
    # safety and capabilities
    "GuardPolicy": ("genstack.guard.policy", "GuardPolicy"),
    "capabilities": ("genstack.models.capabilities", "capabilities"),
    "UnsupportedCapability": ("genstack.models.capabilities", "UnsupportedCapability"),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'genstack' has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "__version__",
    # configuration
    "Settings",
    "load_settings",
    # generation
    "get_model",
    "Model",
    "SamplingParams",
    "Message",
    "GenerationRequest",
    "Chunk",
    "Completion",
    "TextStream",
    "Usage",
    # models
    "REGISTRY",
    "ModelSpec",
    "estimate_memory",
    "MemoryEstimate",
    # documents, collections, search
    "ingest", "IngestReport", "get_embedder", "Embedder", "open_collection", "list_collections",
    "delete_collection", "VectorStore", "search", "Retriever",
    # grounded answers, chat, summaries, tasks
    "ask", "Asker", "Pipeline", "RagConfig", "RagRequest", "Answer", "ChatSession", "summarize",
    "sentiment", "classify", "extract", "translate",
    # evaluation
    "evaluate_rag", "load_rag_dataset", "evaluate_task", "evaluate_beir", "perplexity", "compute_metric",
    "evaluate_agent", "load_agent_tasks", "evaluate_task_set", "load_task_set",
    # the arena
    "Arena", "ArenaDB", "Leaderboard", "leaderboard",
    # synthetic data
    "synth_qa", "synth_task", "synth_extract",
    # tuning
    "tune_sft", "SFTConfig", "tune_dpo", "DPOConfig", "TuneResult", "tune_report",
    # agents and tools
    "Agent", "run_agent", "Tool", "Function", "ToolCall", "respond_with_tools",
    # safety and capabilities
    "GuardPolicy", "capabilities", "UnsupportedCapability",
    # errors
    "GenstackError",
    "InvalidParameter",
    "ContextLengthExceeded",
    "ModelNotFound",
    "ModelNotInstalled",
    "ModelIntegrityError",
    "UnsupportedModelFormat",
]
