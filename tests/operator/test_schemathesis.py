"""Schemathesis (a fuzzer nobody here wrote) against the admin API of a running service, driven
by the service's own OpenAPI document: every answer must match the document (status, content
type, headers, body schema), no request may get a 5xx, input the document forbids must be
refused with a 4xx, and a request without the token must not be served.

Not checked: that every input the document allows is accepted. Some rules span fields ("a
mailbox, or groups and/or a server") or need state (a cursor this API handed out), which JSON
Schema cannot say; those inputs get a 400 naming the field, which the document lists.

`make test` runs a bounded number of examples per operation; `make fuzz` a longer run
(SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_SEED).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_process import ServiceProcess, free_port, service_env

TOKEN = "fuzz-token-0123456789"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261201")


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(
        SYNC_DATABASE_URL=db_url,
        SYNC_API_TOKEN=TOKEN,
        SYNC_ROLES="api",
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
        SYNC_SECRET_DIR=str(tmp_path),
        SYNC_OUTBOUND_DENY_PRIVATE="true",  # servers the fuzzer adds connect nowhere
        # the Graph notification receiver is served (and documented) too
        SYNC_GRAPH_NOTIFICATION_URL="https://sync.example/api/v1/graph/notifications",
        SYNC_GRAPH_CLIENT_STATE="fuzz-client-state",
    )
    proc = ServiceProcess(env, tmp_path / "service.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.terminate()


def _document(service: ServiceProcess, into: Path) -> Path:
    from urllib.request import Request, urlopen

    req = Request(f"http://127.0.0.1:{service.port}/openapi.json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urlopen(req, timeout=10) as resp:
        doc = json.loads(resp.read())
    assert "/api/v1/graph/notifications" in doc["paths"]  # fuzzed with the rest
    path = into / "openapi.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_api_keeps_to_its_document_under_fuzzing(
    service: ServiceProcess, tmp_path: Path
) -> None:
    document = _document(service, tmp_path)
    cmd = [
        str(SCHEMATHESIS), "run", str(document),
        "--url", f"http://127.0.0.1:{service.port}",
        "-H", f"Authorization: Bearer {TOKEN}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "1",
        "--request-timeout", "20", "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    generated = [line for line in report.splitlines() if " generated" in line]
    assert generated and "0 generated" not in generated[-1], report[-2000:]
    log = service.output()
    assert "Traceback" not in log, log[-4000:]
