"""Feedback on a run: validated like TCC's SDK, posted as JSON, never raises for the network."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tcc_otel._config import FEEDBACK_PATH, Config, is_loopback
from tcc_otel._log import logger
from tcc_otel._schema._redact import redact_text, redact_url
from tcc_otel._schema._values import clean_text, warn_dropped
from tcc_otel._version import __version__

SCORES = ("thumbs_up", "thumbs_down")
"""Accepted feedback scores."""
MAX_TEXT = 2000
"""Longest feedback text accepted, in characters."""


def build_payload(run_id: str, score: Any, text: Any, method: str) -> dict[str, str]:
    """The JSON body TCC expects: ``runId`` and the given ``score``/``text``.

    Raises:
        ValueError: neither score nor text is given, or the text is over 2,000 characters.
    """
    if score is None and text is None:
        raise ValueError(f"{method} needs a score ({' or '.join(SCORES)}) or a text, or both.")
    payload = {"runId": str(run_id)}
    if text is not None:
        text = clean_text(str(text))
        if len(text) > MAX_TEXT:
            raise ValueError(
                f"{method}: the feedback text is {len(text)} characters; the limit is {MAX_TEXT}."
            )
        payload["text"] = text
    if score is not None:
        if score in SCORES:
            payload["score"] = score
        else:
            warn_dropped(method, f"the score must be one of {', '.join(SCORES)}", score)
    return payload


def post_feedback(url: str, api_key: str | None, payload: dict[str, str], timeout: float) -> bool:
    """POST ``payload``; ``True`` on a 2xx answer, ``False`` (logged) on anything else."""
    headers = {"Content-Type": "application/json", "User-Agent": f"tcc-otel/{__version__}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # any network failure: report, never raise into the agent
        logger.warning(
            "feedback for run %s was not sent to %s: %s",
            payload["runId"],
            redact_url(url),
            redact_text(str(exc), api_key or ""),
        )
        return False
    if 200 <= status < 300:
        return True
    logger.warning(
        "feedback for run %s was refused by %s with HTTP %d",
        payload["runId"],
        redact_url(url),
        status,
    )
    return False


def send_feedback(
    config: Config, run_id: str, score: Any, text: Any, method: str, key: str | None, base: str
) -> bool:
    """Validate and post feedback for ``run_id`` to the feedback URL of ``base`` (the
    configured one, or a run's own) with ``key``; ``True`` if the endpoint accepted it.

    Raises:
        ValueError: neither score nor text is given, or the text is over 2,000 characters.
    """
    payload = build_payload(run_id, score, text, method)
    if len(payload) == 1:
        logger.warning("%s: nothing valid to send for run %s", method, payload["runId"])
        return False
    url = config.feedback_url
    if base and base != config.base_url:  # a run with its own URL
        url = base + FEEDBACK_PATH
    if not key and not is_loopback(url):
        logger.warning("feedback for run %s was not sent: TCC_API_KEY is not set", payload["runId"])
        return False
    return post_feedback(url, key, payload, config.export_timeout)
