"""``humanos-bridge sign``: headers for a hand-made call, matching the test vector."""

from __future__ import annotations

from pathlib import Path

import pytest

from humanos_bridge_local.cli import main

BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
SIGNATURE = "f7a8074de721ee70b3e10b608bebc1525104bbca35fbc9846cc6aeb408830cc4"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUMANOS_SIGNATURE_SECRET", "golden-secret")
    monkeypatch.setenv("HUMANOS_API_KEY", "key-1")


def test_sign_prints_one_header_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign", "--timestamp", "1757160000000", "--body", BODY]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Authorization: Bearer key-1",
        "X-Timestamp: 1757160000000",
        f"X-Signature: {SIGNATURE}",
        "Content-Type: application/json",
    ]


def test_sign_reads_the_exact_bytes_of_a_body_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(BODY.encode())
    main(["sign", "--timestamp", "1757160000000", "--body-file", str(body_file)])
    assert f"X-Signature: {SIGNATURE}" in capsys.readouterr().out


def test_sign_without_body_signs_the_timestamp(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sign", "--timestamp", "1757160000000"])
    lines = capsys.readouterr().out.splitlines()
    assert "Content-Type: application/json" not in lines and len(lines) == 3


def test_curl_is_ready_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "sign",
            "--timestamp",
            "1757160000000",
            "--body",
            BODY,
            "--curl",
            "https://api.humanos.id/request",
            "--api-version",
            "2026-05-17",
        ]
    )
    out = capsys.readouterr().out.strip()
    assert out.startswith("curl -sS -X POST https://api.humanos.id/request -H 'Authorization: Bearer key-1'")
    assert f"-H 'X-Signature: {SIGNATURE}'" in out and "-H 'API-Version: 2026-05-17'" in out
    assert out.endswith(f"--data-binary '{BODY}'")


def test_missing_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HUMANOS_SIGNATURE_SECRET")
    assert main(["sign", "--body", BODY]) == 2
    assert "HUMANOS_SIGNATURE_SECRET is not set" in capsys.readouterr().err


def test_unreadable_body_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign", "--body-file", str(tmp_path / "missing.json")]) == 2
    assert "cannot read --body-file" in capsys.readouterr().err
