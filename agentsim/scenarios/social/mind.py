"""The social user's mind: builds the prompt from the user's persona (name, bio, interests, stance), its memory of
its own recent actions and the view the platform gives it (feed, search results, time), and remembers what it
did. Under Ray it runs in the shard that owns the user."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agentsim.core.types import Decision, Observation
from agentsim.scenarios.social.actions import DESCRIPTIONS, fields
from agentsim.scenarios.social.config import SocialConfig
from agentsim.scenarios.social.world import UserView

SYSTEM = (
    "You are a user of {platform}, a social media platform. Each time you log in you see your feed and take "
    "exactly one action. Stay in character: act as the person your profile describes would.\n\n"
    "Actions you may take:\n{actions}\n\n"
    'Answer with one JSON object holding "action" and the fields that action needs (listed above); '
    "post_id and user_id must be ones shown to you."
)


def lean(s: float) -> str:
    if abs(s) < 0.2:
        return "undecided"
    strength = "strongly " if abs(s) > 0.6 else ""
    return f"{strength}{'in favour' if s > 0 else 'against'}"


class SocialMind:
    def __init__(self, config: SocialConfig):
        self.platform = "X" if config.mode == "x" else "Reddit"
        self.topic = config.topic
        self.keep = config.memory
        self.cap = config.max_post_chars
        self._systems: dict[tuple[str, ...], str] = {}

    def system(self, allowed: tuple[str, ...]) -> str:
        s = self._systems.get(allowed)
        if s is None:
            s = self._systems[allowed] = SYSTEM.format(platform=self.platform, actions="\n".join(f"- {a}: {DESCRIPTIONS[a]}" for a in allowed))
        return s

    def messages(self, persona: dict[str, Any], memory: Any, obs: Observation) -> list[dict[str, str]]:
        v = obs.data
        when = datetime.fromtimestamp(v.sim_time, UTC).strftime("%A %H:%M")
        lines = [
            f"You are {persona.get('name', v.user_id)} (@{v.user_id}). Profile: {persona.get('bio', '')} "
            f"Interests: {', '.join(persona.get('interests', v.interests))}.",
            f"Your view on {self.topic}: {lean(float(persona.get('stance', v.stance)))}.",
            f"It is {when}.",
        ]
        if memory:
            lines.append("Your recent activity:\n" + "\n".join(f"- {m}" for m in memory))
        if v.info:
            lines.append(v.info)
        if v.feed:
            lines.append("Your feed:")
            for it in v.feed:
                mark = " (you already shared this)" if it.post_id in getattr(v, "reposted", ()) else ""
                lines.append(f"[post {it.post_id}] @{it.author} ({it.likes} likes, {it.dislikes} dislikes){mark}: {it.text}")
                lines.extend(f"    [comment {c}] @{a}: {t}" for c, a, t in it.comments)
        else:
            lines.append("Your feed is empty.")
        ids = [it.post_id for it in v.feed] + [c for it in v.feed for c, _, _ in it.comments]
        if ids:
            lines.append(f"Post and comment ids you can use: {', '.join(map(str, ids))}.")
        users = (obs.validation_context or {}).get("users")
        if users:
            # Quoted as JSON strings: an id may hold commas, spaces or any script, and must reach the model whole.
            lines.append(f"Users you can name (user_id): {json.dumps(sorted(users)[:20], ensure_ascii=False)}.")
        lines.append("Choose one action.")
        return [{"role": "system", "content": self.system(v.allowed)}, {"role": "user", "content": "\n".join(lines)}]

    def remember(self, memory: Any, obs: Observation, decision: Decision) -> Any:
        """The user's last `memory` actions, as it chose them (whether or not the platform could apply them)."""
        if not self.keep or not isinstance(obs.data, UserView) or not decision.valid or decision.action is None:
            return memory
        a = fields(decision.action)
        act: str = a.action  # type: ignore[attr-defined]
        pid = getattr(a, "post_id", None)
        uid = getattr(a, "user_id", None)
        content = (getattr(a, "content", None) or getattr(a, "query", None) or "").strip()[: self.cap]
        what = act + (f" post {pid}" if pid is not None and act != "create_post" else "") + (f" @{uid}" if uid else "")
        if content:
            what += f': "{content[:80]}"'
        return (list(memory or []) + [what])[-self.keep :]
