"""The JavaScript SDK's generated operation table and types are those of today's /openapi.json."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx

from tests.clients._node import JS, node

GENERATED = ("api.gen.js", "api.gen.d.ts")


async def test_the_committed_generated_files_are_what_the_generator_writes_from_openapi_json(
    client: httpx.AsyncClient, tmp_path: Path,
) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps((await client.get("/openapi.json")).json()))
    await asyncio.to_thread(subprocess.run, [node(), str(JS / "tools" / "generate.mjs"), str(spec), str(tmp_path)],
                            check=True, timeout=30)
    for name in GENERATED:
        assert (tmp_path / name).read_text() == (JS / name).read_text(), (
            f"clients/js/{name} is stale: run `node clients/js/tools/generate.mjs openapi.json clients/js` "
            "with the server's /openapi.json")


async def test_the_operation_table_has_every_api_route_and_no_console_file(
    client: httpx.AsyncClient, tmp_path: Path,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    expected = {op["operationId"] for path, methods in doc["paths"].items() if not path.startswith("/console/")
                for op in methods.values()}
    script = f"import {{ OPERATIONS }} from {json.dumps(str(JS / 'api.gen.js'))}; " \
             "console.log(JSON.stringify(Object.values(OPERATIONS).map((op) => op.operationId)))"
    listed = await asyncio.to_thread(subprocess.run, [node(), "--input-type=module", "-e", script], check=True,
                                     capture_output=True, text=True, timeout=30)
    assert set(json.loads(listed.stdout)) == expected


async def test_the_declarations_type_check_and_reject_calls_that_contradict_the_api() -> None:
    tsc = JS / "node_modules" / "typescript" / "bin" / "tsc"
    assert tsc.exists(), "TypeScript is missing: `python3 dev.py test` installs it (npm ci in clients/js)"
    checked = await asyncio.to_thread(subprocess.run, [node(), str(tsc), "-p", str(JS / "tsconfig.json")],
                                      capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
