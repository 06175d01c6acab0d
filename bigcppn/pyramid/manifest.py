"""A pyramid's manifest: what makes two renders the same pyramid, and what a run may do to one that exists."""

from __future__ import annotations

import json

from ..config import Config, config_to_dict
from ..errors import UserError

__all__ = ["manifest_key", "judge_manifest", "MANIFEST_NAME", "LOCK_NAME"]

MANIFEST_NAME = "bigcppn.json"
LOCK_NAME = "bigcppn.lock"


def judge_manifest(raw: bytes, key: dict, overwrite: bool, where: str, pyramid: str) -> str:
    """What a run with ``key`` does to a pyramid whose manifest (at ``where``) holds ``raw``: "resume" (the same
    render) or "replace" (another render's, with ``overwrite``); UserError when it may not write there."""
    try:
        data = json.loads(raw.decode("utf-8"))
        if _a_renders_sidecar(data):  # `render -o NAME.dzi` wrote it: its tiles are no pyramid to resume
            if overwrite:
                return "replace"
            raise UserError(f"'{pyramid}' holds the DeepZoom output of a bigcppn render, not a pyramid; "
                            "add --overwrite to replace it, or choose another -o")
        old = {"config": data["config"], "pyramid": data["pyramid"]}
        old["config"].get("render", {}).pop("workers", None)
        old["config"].get("render", {}).pop("queue", None)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"'{where}' is not a bigcppn pyramid manifest; "
                        "remove the pyramid or choose another -o") from None
    if old == key:
        return "resume"
    if overwrite:
        return "replace"
    diff = sorted(k for k in ("config", "pyramid") if old[k] != key[k])
    what = ", ".join(
        f"{sect}.{k}" for sect in diff for k in sorted(set(old[sect]) | set(key[sect]))
        if old[sect].get(k) != key[sect].get(k))
    raise UserError(f"'{pyramid}' holds a pyramid of another render (differs in {what}); "
                    "add --overwrite to replace it, or choose another -o")


def _a_renders_sidecar(data) -> bool:
    """Whether a manifest's JSON is the provenance sidecar of ``render -o NAME.dzi`` (a config, no pyramid)."""
    return (isinstance(data, dict) and "pyramid" not in data and isinstance(data.get("config"), dict)
            and str(data.get("generator", "")).startswith("bigcppn"))


def manifest_key(cfg: Config, params: dict) -> dict:
    """What makes two pyramids the same: the config (less threads and queue depth) and the settings."""
    c = config_to_dict(cfg)
    # How many threads and how deep a queue change nothing in the pixels.
    c.get("render", {}).pop("workers", None)
    c.get("render", {}).pop("queue", None)
    return {"config": c, "pyramid": params}
