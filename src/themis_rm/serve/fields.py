"""One description per serve setting, shared by :class:`ServeSettings` and the ``themis serve`` options.

Kept free of third-party imports so ``themis --help`` works without the ``serve`` extra installed.
"""

from __future__ import annotations

HELP: dict[str, str] = {
    "model": "Reward model: hub id or local directory.",
    "criteria": "Criteria of /get_reward (with --rerender) and the default of /v1/score: a name or alias "
    "(runtime, security, ...), a comma list, 'full' or 'none'.",
    "prompts": "Prompt pack: 'official', 'open' or a JSON/TOML file. Default: $THEMIS_PROMPTS, then 'official'.",
    "criteria_file": "TOML with user-defined [[criteria]] added to the pack.",
    "dtype": "auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.",
    "device": "auto, cpu, cuda, cuda:1, ...",
    "max_length": "Token budget per sequence: structured items lose the end of their response, raw strings "
    "their beginning (the end, where the reward is read, is kept).",
    "batch_tokens": "Padded tokens per forward pass (default 16k on CPU, 64k on GPU).",
    "engine": "auto (shared-prefix reuse when it pays), prefix or padded.",
    "adapter": "How the model yields a reward: seqcls, head or lm-logprob.",
    "adapter_spec": "JSON spec for --adapter head or lm-logprob.",
    "prompt_overflow": "When a prompt leaves no room for the response: 'truncate' or 'error'.",
    "host": "Interface to bind. Loopback by default; put a proxy with TLS in front before exposing it.",
    "port": "TCP port.",
    "api_key": "Bearer token every request except GET /health must carry (env THEMIS_SERVE_API_KEY keeps it "
    "out of the process list).",
    "served_model_name": "Model name echoed by /classify and /v1/score (default: --model).",
    "rerender": "/get_reward: split each chat-formatted query into prompt and response and render them again "
    "with the reward model's own template and criterion prompt, instead of scoring the string as sent. "
    "Default: on when --criteria is not 'none' (the only way /get_reward can apply criteria), else off.",
    "assistant_marker": "/get_reward --rerender: the policy template's assistant header; the response starts "
    "after its last occurrence (when no 'prompts' are sent). Must contain the word 'assistant'.",
    "end_markers": "/get_reward --rerender: end-of-turn and padding strings stripped from the end of each turn.",
    "max_batch_items": "Most sequences one cross-request batch gathers.",
    "max_batch_tokens": "Most real tokens one cross-request batch gathers (default: --batch-tokens).",
    "max_wait_ms": "How long the oldest waiting request may hold an idle model for others to join its batch. "
    "0 (default): never; requests that arrive while the model works form the next batch (continuous batching).",
    "max_queue_items": "Most sequences waiting for the model; beyond it requests get 429 with Retry-After.",
    "max_items_per_request": "Most sequences one request may carry (items x criteria); beyond it: 413.",
    "max_body_bytes": "Largest request body accepted; beyond it: 413.",
    "request_timeout_s": "Seconds a request may take from arrival to answer; beyond it: 503 with Retry-After.",
    "retry_after_s": "Seconds sent in Retry-After with 429 and 503 answers.",
    "shutdown_timeout_s": "Seconds a graceful shutdown waits for in-flight requests and batches to finish.",
    "log_level": "uvicorn log level: critical, error, warning, info, debug.",
}
