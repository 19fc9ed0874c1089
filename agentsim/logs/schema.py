"""The run-log schema. Bump SCHEMA_VERSION on any change to a table's columns; readers check it."""

from __future__ import annotations

import pyarrow as pa

# 1.1: llm_calls.cached_tokens (prefix-cache hits). 1.2: the `interviews` side table. Minor versions only add
# columns or tables; readers of the same major version read older files (missing columns come back as nulls).
SCHEMA_VERSION = "1.2"
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

#: Questions put to a run's agents after the fact (agentsim/interviews.py), one row per answer. Written beside the
#: simulation's tables, never by the run's writer: each interview is a Parquet file of its own in `interviews/`
#: (agentsim.logs.writer.append_side_table), not recorded in parts.jsonl and not tied to a step commit, so asking
#: questions of a run (even one still being written) never changes its own tables.
INTERVIEWS = pa.schema(
    [
        pa.field("interview_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("at_step", pa.int32(), nullable=False),  # the step of what the agent was shown (0-based, as `step`)
        pa.field("asked_step", pa.int32()),  # the step asked for (--at); null: the latest
        pa.field("question", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("alias", pa.string(), nullable=False),  # the agent's model alias in the run
        pa.field("model", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("completion_tokens", pa.int64(), nullable=False),
        pa.field("latency_s", pa.float64(), nullable=False),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("created_at", pa.string(), nullable=False),  # ISO 8601, UTC
        pa.field("source", pa.string(), nullable=False),  # "llm_calls" | "checkpoint"
        pa.field("request_id", pa.string()),  # the run's request whose prompt was rebuilt
        pa.field("verified", pa.bool_()),  # checkpoint: the rebuilt prompt hashes as the recorded request did
        pa.field("messages", pa.string(), nullable=False),  # JSON: the conversation sent, question last
    ]
)

#: Tables written beside a run by something other than the run itself (see INTERVIEWS).
SIDE_TABLES: dict[str, pa.Schema] = {"interviews": INTERVIEWS}
