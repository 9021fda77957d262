"""The team's traces stay whole: in the default mode, under the application's global SDK
provider, its exporter gets tcc_otel's run, step and tool-call spans along with its own spans
inside them, and TCC's endpoint (a loopback receiver keeping duplicates) gets each span once."""

from __future__ import annotations

import json
import os
import select
import signal
from collections import Counter

import pytest
from helpers.team import TeamTracing, orphans, scope_of, tree

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

HANG_GUARD = 60.0
"""Seconds after which a forked child is considered hung (a guard, not a measurement)."""
TEAM_TREE = {
    "POST /agent": None,
    "invoke_agent": "POST /agent",
    "chat": "invoke_agent",
    "openai.chat": "chat",
    "POST /v1/chat/completions": "openai.chat",
    "execute_tool search": "invoke_agent",
    "search.query": "execute_tool search",
    "GET /search": "search.query",
}
"""Every span of ``serve_request()`` and its parent, as the team's exporter should get them."""
OURS = ("invoke_agent", "chat", "execute_tool search")


def serve_request(team: TeamTracing, run_id: str = "run-t") -> None:
    """A request span around a run with a step and a tool call; inside each, the team's
    instrumentation starts a span with a child (as an LLM client over HTTP would)."""
    app = team.tracer
    with app.start_as_current_span("POST /agent"), tcc.run(run_id=run_id) as run:
        run.prompt("q")
        with run.step(step_id="step-1") as step:
            with (
                app.start_as_current_span("openai.chat"),
                app.start_as_current_span("POST /v1/chat/completions"),
            ):
                pass
            step.prompt("p").response("r")
        with run.tool_call("search", tool_call_id="call-1") as call:
            with (
                app.start_as_current_span("search.query"),
                app.start_as_current_span("GET /search"),
            ):
                pass
            call.args("x").result("y")
        run.response("a")


def counts(spans: list[ReceivedSpan]) -> dict[str, int]:
    """How many times each span (by name) arrived."""
    return dict(Counter(span.name for span in spans))


class TestTeamTrace:
    def test_the_team_gets_a_whole_tree(
        self, team: TeamTracing, client: Client, receiver: Receiver
    ) -> None:
        """The team's exporter gets every span once, each under its parent: the request, the
        run, its step and tool call, and the team's own spans inside them; tcc_otel's spans
        carry the attributes TCC gets, the team's resource and tcc_otel's scope."""
        tcc.configure(base_url=receiver.url)
        serve_request(team)
        assert tcc.flush(10.0)
        spans = team.spans
        assert (tree(spans), orphans(spans), len(spans)) == (TEAM_TREE, [], len(TEAM_TREE))
        received = {span.span_id: span for span in receiver.spans}
        ours = [span for span in spans if scope_of(span) == "tcc_otel"]
        assert sorted(span.name for span in ours) == sorted(OURS)
        for span in ours:
            assert span.context is not None
            sent = received[f"{span.context.span_id:016x}"]
            assert (span.name, dict(span.attributes or {}), span.resource) == (
                sent.name,
                sent.attributes,
                team.provider.resource,
            )

    def test_tcc_gets_each_span_once(
        self, team: TeamTracing, client: Client, receiver: Receiver
    ) -> None:
        """TCC's endpoint gets each run, step and tool-call span and each team span inside the
        run exactly once, and not the request span outside it."""
        tcc.configure(base_url=receiver.url)
        serve_request(team)
        assert tcc.flush(10.0)
        assert counts(receiver.spans) == {name: 1 for name in TEAM_TREE if name != "POST /agent"}

    def test_opt_out(
        self,
        team: TeamTracing,
        client: Client,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With ``TCC_SHARE_SPANS=false`` the team's exporter gets no tcc_otel span (its
        spans inside the run are orphans again); TCC still gets each span once."""
        monkeypatch.setenv("TCC_SHARE_SPANS", "false")
        tcc.configure(base_url=receiver.url)
        serve_request(team)
        assert tcc.flush(10.0)
        spans = team.spans
        assert (
            [span.name for span in spans if scope_of(span) == "tcc_otel"],
            sorted(orphans(spans)),
            counts(receiver.spans),
        ) == (
            [],
            ["openai.chat", "search.query"],
            {name: 1 for name in TEAM_TREE if name != "POST /agent"},
        )

    def test_never_on_the_callers_thread(
        self, team: TeamTracing, client: Client, receiver: Receiver
    ) -> None:
        """The team's processors get the team's spans on the caller's thread, as always, and
        tcc_otel's spans on tcc_otel's batcher thread, never the caller's."""
        tcc.configure(base_url=receiver.url)
        serve_request(team)
        assert tcc.flush(10.0)
        threads = dict(team.threads.ended)
        assert {name: threads[name] for name in OURS} == dict.fromkeys(OURS, "tcc_otel-batch")
        assert {threads[name] for name in TEAM_TREE if name not in OURS} == {"MainThread"}

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_forked_child_shares(
        self, team: TeamTracing, client: Client, receiver: Receiver
    ) -> None:
        """A forked child's runs reach the child's copy of the team's exporter, whole, and
        TCC once each; the parent's spans stay the parent's."""
        tcc.configure(base_url=receiver.url)
        serve_request(team, "run-parent")
        assert tcc.flush(10.0)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what its team exporter got, then leave at once
            code = 1
            try:
                os.close(read)
                team.exporter.clear()
                serve_request(team, "run-child")
                report = {"flushed": tcc.flush(10.0), "tree": tree(team.spans)}
                os.write(write, json.dumps(report).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        ready, _, _ = select.select([read], [], [], HANG_GUARD)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        report = json.loads(os.read(read, 1 << 20) or b"{}")
        os.close(read)
        _, status = os.waitpid(pid, 0)
        by_run = Counter(span.attributes.get("tcc.runId") for span in receiver.spans)
        assert (os.waitstatus_to_exitcode(status), report, dict(by_run)) == (
            0,
            {"flushed": True, "tree": TEAM_TREE},
            {"run-parent": 7, "run-child": 7},
        )
