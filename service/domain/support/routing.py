"""Routing: a pure, versioned function of (queue, agents, policy) to assignments that say why.

Order of the queue: priority (urgent first), then arrival. Each waiting session goes to an eligible
agent — available, connected, under `max_sessions`, with the session's skills and language, in its
target team (or the target agent) — chosen by the policy. Every assignment lists every agent
considered and why each was passed over, so "why did this agent get it?" has an answer later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}

Reason = Literal[
    "chosen", "offline", "disconnected", "at_capacity", "missing_skill", "language", "team", "not_target",
    "less_spare_capacity", "assigned_more_recently",
]
PolicyName = Literal["spare_capacity", "round_robin"]


@dataclass(frozen=True)
class Policy:
    """How eligible agents are ranked; `version` is recorded with every assignment."""

    name: PolicyName = "spare_capacity"
    version: str = "spare_capacity/1"


POLICIES: dict[str, Policy] = {
    "spare_capacity": Policy("spare_capacity", "spare_capacity/1"),
    "round_robin": Policy("round_robin", "round_robin/1"),
}
DEFAULT_POLICY = POLICIES["spare_capacity"]


@dataclass(frozen=True)
class AgentState:
    """What routing knows of an agent. `last_assigned` orders agents by their latest assignment (0: never)."""

    agent_id: str
    status: str
    max_sessions: int
    active: int
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    connected: bool = True
    last_assigned: int = 0

    @property
    def spare(self) -> int:
        return self.max_sessions - self.active


@dataclass(frozen=True)
class Waiting:
    """A session waiting for an agent. `arrival` orders sessions of one priority (smaller: earlier)."""

    session_id: str
    priority: str
    arrival: int
    skills: frozenset[str] = frozenset()
    language: str | None = None
    team_id: str | None = None
    agent_id: str | None = None  # a transfer to one agent: only they may take it


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    reasons: tuple[Reason, ...]
    spare: int


@dataclass(frozen=True)
class Assignment:
    session_id: str
    agent_id: str
    policy_version: str
    candidates: tuple[Candidate, ...]


def queue_order(queue: Iterable[Waiting]) -> list[Waiting]:
    """The queue as routing serves it: priority first, then arrival."""
    return sorted(queue, key=lambda w: (PRIORITY_RANK.get(w.priority, 2), w.arrival, w.session_id))


def ineligibility(agent: AgentState, session: Waiting) -> list[Reason]:
    """Why `agent` may not take `session` now (empty: eligible)."""
    reasons: list[Reason] = []
    if agent.status != "available":
        reasons.append("offline")
    elif not agent.connected:
        reasons.append("disconnected")
    if agent.spare <= 0:
        reasons.append("at_capacity")
    if not session.skills <= agent.skills:
        reasons.append("missing_skill")
    if session.language is not None and session.language not in agent.languages:
        reasons.append("language")
    if session.team_id is not None and session.team_id not in agent.teams:
        reasons.append("team")
    if session.agent_id is not None and session.agent_id != agent.agent_id:
        reasons.append("not_target")
    return reasons


def _rank(policy: Policy, agent: AgentState) -> tuple[int, int, str]:
    if policy.name == "round_robin":
        return (agent.last_assigned, 0, agent.agent_id)
    return (-agent.spare, agent.last_assigned, agent.agent_id)


def _passed_over(policy: Policy, agent: AgentState, chosen: AgentState) -> Reason:
    if policy.name == "spare_capacity" and agent.spare < chosen.spare:
        return "less_spare_capacity"
    return "assigned_more_recently"


def route(
    queue: Iterable[Waiting], agents: Sequence[AgentState], policy: Policy = DEFAULT_POLICY, *, clock: int = 0
) -> list[Assignment]:
    """Assign every waiting session some eligible agent can take, in queue order; agents' loads grow as it goes.

    `clock` is the `last_assigned` value the first assignment gives its agent (then clock+1, …): an
    ever-growing counter supplied by the caller, so the same inputs give the same answer.
    """
    state = {a.agent_id: a for a in agents}
    order = [a.agent_id for a in agents]
    assignments: list[Assignment] = []
    for session in queue_order(queue):
        if not any(a.spare > 0 for a in state.values()):
            break
        verdicts = {aid: ineligibility(state[aid], session) for aid in order}
        eligible = [state[aid] for aid in order if not verdicts[aid]]
        if not eligible:
            continue
        chosen = min(eligible, key=lambda a: _rank(policy, a))
        candidates = tuple(
            Candidate(aid, ("chosen",) if aid == chosen.agent_id
                      else tuple(verdicts[aid]) or (_passed_over(policy, state[aid], chosen),), state[aid].spare)
            for aid in order
        )
        clock += 1
        state[chosen.agent_id] = replace(chosen, active=chosen.active + 1, last_assigned=clock)
        assignments.append(Assignment(session.session_id, chosen.agent_id, policy.version, candidates))
    return assignments


def queue_position(queue: Iterable[Waiting], session_id: str) -> int:
    """The session's 1-based place in queue order (0 when it is not waiting)."""
    for n, waiting in enumerate(queue_order(queue), start=1):
        if waiting.session_id == session_id:
            return n
    return 0


def could_serve(agent: AgentState, session: Waiting) -> bool:
    """Whether the agent is eligible for the session but for being at capacity right now."""
    return set(ineligibility(agent, session)) <= {"at_capacity"}


def estimated_wait_minutes(position: int, serving_agents: int, handle_seconds: float) -> int:
    """ceil(position * handle_seconds / agents who could serve it / 60); no such agent counts as one."""
    if position <= 0:
        return 0
    return math.ceil(position * handle_seconds / max(serving_agents, 1) / 60)
