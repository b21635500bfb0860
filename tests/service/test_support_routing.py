"""service/domain/support/routing.py and sessions.py: the pure routing policy and the status transitions.

A hypothesis state machine drives a desk the way the service does — every change that can free
capacity or add demand is followed by `route` — over random arrivals, status changes, disconnects,
capacity changes, ends, transfers and escalations, and checks after every step: no agent is given a
session at capacity, no eligible agent is left idle while a matching session waits, sessions of one
priority are served in arrival order, and no session is ever lost.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from schemas.errors import InvalidTransition, SessionClosed
from service.domain.support.routing import (
    POLICIES,
    PRIORITY_RANK,
    AgentState,
    Waiting,
    estimated_wait_minutes,
    ineligibility,
    queue_order,
    queue_position,
    route,
)
from service.domain.support.sessions import allowed_actions, transition

AGENTS = ("a1", "a2", "a3", "a4")
SKILLS = ("billing", "tech")
LANGS = ("en", "es")
TEAMS = ("t1", "t2")


class Desk(RuleBasedStateMachine):
    """A model desk: agents, waiting sessions, sessions with agents, ended sessions."""

    @initialize(policy=st.sampled_from(sorted(POLICIES)),
                caps=st.lists(st.integers(0, 3), min_size=len(AGENTS), max_size=len(AGENTS)),
                skills=st.lists(st.frozensets(st.sampled_from(SKILLS)), min_size=len(AGENTS), max_size=len(AGENTS)))
    def setup(self, policy: str, caps: list[int], skills: list[frozenset[str]]) -> None:
        self.policy = POLICIES[policy]
        self.agents = {
            aid: AgentState(aid, "available", cap, 0, skill, frozenset({"en"} if i % 2 else {"en", "es"}),
                            frozenset({TEAMS[i % 2]}))
            for i, (aid, cap, skill) in enumerate(zip(AGENTS, caps, skills, strict=True))
        }
        self.waiting: dict[str, Waiting] = {}
        self.serving: dict[str, str] = {}  # session -> agent
        self.ended: set[str] = set()
        self.created: list[str] = []
        self.arrivals = 0
        self.clock = 0
        self.over_capacity: list[str] = []
        self.out_of_order: list[tuple[str, str]] = []

    def _route(self) -> None:
        before = dict(self.agents)
        waiting_before = list(self.waiting.values())
        assignments = route(self.waiting.values(), list(self.agents.values()), self.policy, clock=self.clock + 1)
        for a in assignments:
            agent = self.agents[a.agent_id]
            if agent.active >= agent.max_sessions:
                self.over_capacity.append(a.agent_id)
            self.clock += 1
            self.agents[a.agent_id] = replace(agent, active=agent.active + 1, last_assigned=self.clock)
            assert {c.agent_id for c in a.candidates} == set(AGENTS)
            assert [c.agent_id for c in a.candidates if c.reasons == ("chosen",)] == [a.agent_id]
            self.serving[a.session_id] = a.agent_id
            del self.waiting[a.session_id]
        # FIFO within priority: a session still waiting that came before an assigned one in queue order was
        # not one the assigned session's agent could take (for a reason other than capacity).
        order = {w.session_id: n for n, w in enumerate(queue_order(waiting_before))}
        for a in assignments:
            for w in self.waiting.values():
                if order[w.session_id] < order[a.session_id]:
                    reasons = set(ineligibility(before[a.agent_id], w)) - {"at_capacity"}
                    if not reasons:
                        self.out_of_order.append((w.session_id, a.session_id))

    def _free(self, session_id: str) -> None:
        agent_id = self.serving.pop(session_id)
        agent = self.agents[agent_id]
        self.agents[agent_id] = replace(agent, active=agent.active - 1)

    @rule(priority=st.sampled_from(sorted(PRIORITY_RANK)), skills=st.frozensets(st.sampled_from(SKILLS), max_size=1),
          language=st.none() | st.sampled_from(LANGS), team=st.none() | st.sampled_from(TEAMS))
    def arrive(self, priority: str, skills: frozenset[str], language: str | None, team: str | None) -> None:
        self.arrivals += 1
        sid = f"s{self.arrivals}"
        self.created.append(sid)
        self.waiting[sid] = Waiting(sid, priority, self.arrivals, skills, language, team)
        self._route()

    @rule(agent=st.sampled_from(AGENTS), status=st.sampled_from(("available", "away", "offline")))
    def set_status(self, agent: str, status: str) -> None:
        self.agents[agent] = replace(self.agents[agent], status=status)
        self._route()

    @rule(agent=st.sampled_from(AGENTS), connected=st.booleans())
    def connection(self, agent: str, connected: bool) -> None:
        self.agents[agent] = replace(self.agents[agent], connected=connected)
        self._route()

    @rule(agent=st.sampled_from(AGENTS), cap=st.integers(0, 3))
    def capacity(self, agent: str, cap: int) -> None:
        self.agents[agent] = replace(self.agents[agent], max_sessions=cap)
        self._route()

    @precondition(lambda self: bool(self.serving))
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.serving)))
        self._free(sid)
        self.ended.add(sid)
        self._route()

    @precondition(lambda self: bool(self.waiting))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.waiting)))
        del self.waiting[sid]
        self.ended.add(sid)

    @precondition(lambda self: bool(self.serving))
    @rule(data=st.data(), to_team=st.booleans())
    def transfer(self, data: st.DataObject, to_team: bool) -> None:
        sid = data.draw(st.sampled_from(sorted(self.serving)))
        self._free(sid)
        self.arrivals += 1
        target_team = data.draw(st.sampled_from(TEAMS)) if to_team else None
        target_agent = None if to_team else data.draw(st.sampled_from(AGENTS))
        self.waiting[sid] = Waiting(sid, "normal", self.arrivals, team_id=target_team, agent_id=target_agent)
        self._route()

    @precondition(lambda self: bool(self.serving) or bool(self.waiting))
    @rule(data=st.data())
    def escalate(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted({*self.serving, *self.waiting})))
        if sid in self.serving:
            self._free(sid)
        self.waiting.pop(sid, None)
        self.arrivals += 1
        self.waiting[sid] = Waiting(sid, "urgent", self.arrivals, team_id="t1")
        self._route()

    @invariant()
    def no_agent_is_given_a_session_at_capacity(self) -> None:
        assert self.over_capacity == []

    @invariant()
    def no_eligible_agent_is_idle_while_a_matching_session_waits(self) -> None:
        idle = [(w.session_id, a.agent_id) for w in self.waiting.values() for a in self.agents.values()
                if not ineligibility(a, w)]
        assert idle == []

    @invariant()
    def within_a_priority_sessions_are_served_in_arrival_order(self) -> None:
        assert self.out_of_order == []

    @invariant()
    def every_session_is_waiting_served_or_ended(self) -> None:
        places = [(s in self.waiting) + (s in self.serving) + (s in self.ended) for s in self.created]
        assert all(p == 1 for p in places)

    @invariant()
    def loads_are_the_sessions_served(self) -> None:
        for agent in self.agents.values():
            assert agent.active == sum(1 for a in self.serving.values() if a == agent.agent_id)


TestDesk = Desk.TestCase
TestDesk.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def test_spare_capacity_prefers_the_most_spare_then_the_longest_since_an_assignment() -> None:
    agents = [AgentState("a", "available", 3, 1, last_assigned=1), AgentState("b", "available", 3, 1, last_assigned=5),
              AgentState("c", "available", 2, 1)]
    [first, second] = route([Waiting("s1", "normal", 1), Waiting("s2", "normal", 2)], agents)
    assert (first.agent_id, second.agent_id) == ("a", "b")
    reasons = {c.agent_id: c.reasons for c in first.candidates}
    assert reasons == {"a": ("chosen",), "b": ("assigned_more_recently",), "c": ("less_spare_capacity",)}


def test_round_robin_prefers_the_longest_since_an_assignment_whatever_the_spare() -> None:
    agents = [AgentState("a", "available", 9, 0, last_assigned=7), AgentState("b", "available", 2, 1, last_assigned=3)]
    [only] = route([Waiting("s1", "normal", 1)], agents, POLICIES["round_robin"])
    assert (only.agent_id, only.policy_version) == ("b", "round_robin/1")


def test_urgent_sessions_go_first_then_the_longest_waiting() -> None:
    queue = [Waiting("late-low", "low", 1), Waiting("urgent", "urgent", 3), Waiting("normal", "normal", 2)]
    assert [w.session_id for w in queue_order(queue)] == ["urgent", "normal", "late-low"]
    assert queue_position(queue, "late-low") == 3
    assert queue_position(queue, "gone") == 0


def test_the_wait_estimate_is_position_times_handle_time_over_serving_agents() -> None:
    assert estimated_wait_minutes(3, 2, 300) == 8  # ceil(3 * 300 / 2 / 60) = ceil(7.5)
    assert estimated_wait_minutes(1, 0, 90) == 2
    assert estimated_wait_minutes(0, 4, 300) == 0


@pytest.mark.parametrize(("status", "action", "after"), [
    ("queued", "assign", "active"), ("transferred", "assign", "active"), ("active", "hold", "on_hold"),
    ("on_hold", "resume", "active"), ("active", "transfer", "transferred"), ("on_hold", "escalate", "transferred"),
    ("active", "end", "resolved"), ("queued", "message", "queued"), ("resolved", "rate", "resolved"),
])
def test_transition_leads_where_the_table_says(status: str, action: str, after: str) -> None:
    assert transition(status, action) == after  # type: ignore[arg-type]


def test_an_end_without_resolution_closes_and_an_ended_session_refuses_writes() -> None:
    assert transition("active", "end", resolution="abandoned") == "closed"
    with pytest.raises(SessionClosed):
        transition("closed", "message")
    with pytest.raises(InvalidTransition) as raised:
        transition("queued", "hold")
    assert raised.value.extra["allowed"] == allowed_actions("queued") == ["end", "escalate", "message", "transfer"]
