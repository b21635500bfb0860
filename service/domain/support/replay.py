"""What routing would have done: a tenant's desk history replayed under another policy, as a pure simulation.

The history is the desk's events in log order (agents' profiles and statuses, teams, sessions arriving,
being transferred, escalated and ended). After each one the policy routes, exactly as the service does;
an end frees whichever agent the simulation gave the session, and a session that ends while still
waiting in the simulation was abandoned. Recorded assignments are not replayed, only compared with.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.events import (
    Event,
    SupportAgentProfileSet,
    SupportAgentStatusChanged,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionTransferred,
    SupportTeamSaved,
)
from service.domain.support.routing import AgentState, Policy, Waiting, route


@dataclass(frozen=True)
class HistoryItem:
    """One desk event with where it came from: its session (for session streams), its time and position."""

    event: Event
    at: datetime
    position: int
    session_id: str | None = None


@dataclass
class Outcome:
    policy_version: str
    sessions: int = 0
    waits: list[float] = field(default_factory=list)
    per_agent: dict[str, int] = field(default_factory=dict)
    same_as_recorded: int = 0

    @property
    def wait_p50(self) -> float:
        return statistics.median(self.waits) if self.waits else 0.0

    @property
    def wait_max(self) -> float:
        return max(self.waits, default=0.0)


@dataclass
class _Sim:
    agents: dict[str, AgentState] = field(default_factory=dict)
    profile_teams: dict[str, frozenset[str]] = field(default_factory=dict)
    teams: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)  # members, skills
    waiting: dict[str, Waiting] = field(default_factory=dict)
    specs: dict[str, Waiting] = field(default_factory=dict)  # every open session's needs, waiting or not
    since: dict[str, datetime] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)
    first_agent: dict[str, str] = field(default_factory=dict)
    recorded: dict[str, str] = field(default_factory=dict)


def simulate(history: Iterable[HistoryItem], policy: Policy) -> Outcome:
    """Replay the desk history under `policy`: waits until first assignment, and assignments per agent."""
    sim = _Sim()
    outcome = Outcome(policy.version)
    clock = 0
    for item in history:
        _apply(sim, item, outcome)
        agents = [_with_teams(sim, a) for a in sim.agents.values()]
        for a in route(sim.waiting.values(), agents, policy, clock=clock + 1):
            clock += 1
            agent = sim.agents[a.agent_id]
            sim.agents[a.agent_id] = replace(agent, active=agent.active + 1, last_assigned=clock)
            sim.serving[a.session_id] = a.agent_id
            del sim.waiting[a.session_id]
            outcome.per_agent[a.agent_id] = outcome.per_agent.get(a.agent_id, 0) + 1
            if a.session_id not in sim.first_agent:
                sim.first_agent[a.session_id] = a.agent_id
                outcome.waits.append(max(0.0, (item.at - sim.since[a.session_id]).total_seconds()))
    outcome.same_as_recorded = sum(1 for s, a in sim.recorded.items() if sim.first_agent.get(s) == a)
    return outcome


def _with_teams(sim: _Sim, agent: AgentState) -> AgentState:
    member_of = frozenset(t for t, (members, _) in sim.teams.items() if agent.agent_id in members)
    return replace(agent, teams=sim.profile_teams.get(agent.agent_id, frozenset()) | member_of)


def _free(sim: _Sim, session_id: str) -> None:
    agent_id = sim.serving.pop(session_id, None)
    if agent_id is not None:
        agent = sim.agents[agent_id]
        sim.agents[agent_id] = replace(agent, active=agent.active - 1)


def _apply(sim: _Sim, item: HistoryItem, outcome: Outcome) -> None:
    ev, sid = item.event, item.session_id or ""
    if isinstance(ev, SupportAgentProfileSet):
        old = sim.agents.get(ev.agent_id, AgentState(ev.agent_id, "offline", 0, 0))
        sim.agents[ev.agent_id] = replace(old, max_sessions=ev.max_sessions, skills=frozenset(ev.skills),
                                          languages=frozenset(ev.languages))
        sim.profile_teams[ev.agent_id] = frozenset(ev.teams)
    elif isinstance(ev, SupportAgentStatusChanged) and ev.agent_id in sim.agents:
        sim.agents[ev.agent_id] = replace(sim.agents[ev.agent_id], status=ev.status)
    elif isinstance(ev, SupportTeamSaved):
        sim.teams[ev.team_id] = (frozenset(ev.members), frozenset(ev.required_skills))
    elif isinstance(ev, SupportSessionAssigned):
        sim.recorded.setdefault(ev.session_id, ev.agent_id)
    elif isinstance(ev, SupportSessionCreated):
        outcome.sessions += 1
        skills = frozenset(ev.skills) | (sim.teams[ev.team_id][1] if ev.team_id in sim.teams else frozenset())
        sim.waiting[ev.session_id] = sim.specs[ev.session_id] = Waiting(
            ev.session_id, ev.priority, item.position, skills, ev.language, ev.team_id)
        sim.since[ev.session_id] = item.at
    elif isinstance(ev, SupportSessionEnded):
        _free(sim, sid)
        sim.waiting.pop(sid, None)
        sim.specs.pop(sid, None)
    elif isinstance(ev, SupportSessionTransferred | SupportSessionEscalated):
        _transfer(sim, item, sid, ev)


def _transfer(sim: _Sim, item: HistoryItem, sid: str, ev: SupportSessionTransferred | SupportSessionEscalated) -> None:
    base = sim.specs.get(sid)
    if base is None:
        return  # ended, or never created in this history
    if isinstance(ev, SupportSessionTransferred):
        team, agent = (ev.target_id, None) if ev.target_type == "team" else (base.team_id, ev.target_id)
        changes: dict[str, object] = {"team_id": team, "agent_id": agent}
    else:
        changes = {"priority": ev.priority, "team_id": ev.team_id or base.team_id, "agent_id": None}
    _free(sim, sid)
    sim.waiting[sid] = sim.specs[sid] = replace(base, arrival=item.position, **changes)  # type: ignore[arg-type]
