"""The run-log schema. Bump SCHEMA_VERSION on any change to a table's columns; readers check it."""

from __future__ import annotations

import pyarrow as pa

# 1.1: llm_calls.cached_tokens (prefix-cache hits). Minor versions only add columns; readers of the same major
# version read older files (missing columns come back as nulls).
SCHEMA_VERSION = "1.1"
SCHEMA_VERSION_KEY = b"agentsim.schema_version"
TABLE_KEY = b"agentsim.table"

EVENTS = pa.schema(
    [
        pa.field("event_id", pa.int64(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("sim_time", pa.float64(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("target", pa.string()),
        pa.field("payload", pa.string()),  # JSON text
        pa.field("parent_event_id", pa.int64()),
        pa.field("request_id", pa.string()),
    ]
)

LLM_CALLS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("alias", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("attempt", pa.int16(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("request_hash", pa.string(), nullable=False),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("completion_tokens", pa.int64(), nullable=False),
        pa.field("cached_tokens", pa.int64()),
        pa.field("latency_s", pa.float64(), nullable=False),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("prompt", pa.string()),  # JSON messages, when logging.record_prompts
        pa.field("completion_text", pa.string()),
        pa.field("logprobs", pa.list_(pa.float32())),
    ]
)

AGENTS = pa.schema(
    [
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("group", pa.string(), nullable=False),
        pa.field("persona", pa.string()),  # JSON
    ]
)

METRICS = pa.schema(
    [
        pa.field("step", pa.int32(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("agent_id", pa.string()),
    ]
)

#: Wall-clock measurements: the only table that differs between two runs with a deterministic backend.
TIMINGS = pa.schema(
    [
        pa.field("step", pa.int32(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("wall_s", pa.float64(), nullable=False),
        pa.field("llm_s", pa.float64(), nullable=False),
        pa.field("requests", pa.int64(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "events": EVENTS,
    "llm_calls": LLM_CALLS,
    "agents": AGENTS,
    "metrics": METRICS,
    "timings": TIMINGS,
}
DETERMINISTIC_TABLES = ("events", "llm_calls", "agents", "metrics")
