"""Password hashes: argon2id with OWASP's baseline parameters, computed on threads of their own."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """argon2id hashing off the event loop, at most `workers` hashes at a time (each holds its memory_cost)."""

    def __init__(self, hasher: PasswordHasher | None = None, *, workers: int = 2) -> None:
        # OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~50 ms here. argon2-cffi's default
        # (64 MiB, 3 passes, 4 lanes) takes ~0.6 s on a 2-core box, which invites login floods to starve it.
        self.hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of `password` (salted; encodes its own parameters)."""
        return await self._run(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no stored hash a dummy is checked, so timing tells nothing."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            stored = self._dummy
            password = ""  # never matches: the dummy's password is random and non-empty
        try:
            return bool(await self._run(self.hasher.verify, stored, password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than the current ones."""
        return self.hasher.check_needs_rehash(stored)

    async def _run(self, fn: Any, *args: str) -> Any:
        # argon2's C code releases the GIL, so the worker threads hash in parallel with the event loop.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Let the hashing threads go once the hashes in progress are done."""
        self._executor.shutdown(wait=False)
