"""The benchmark harness's own arithmetic and configuration, so its figures can be trusted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import loadgen, querycount, report, scenario, servers

ROOT = Path(__file__).resolve().parents[2]


def _turn(first: float, done: float, **fields: object) -> loadgen.TurnResult:
    return loadgen.TurnResult(session=0, sent=10.0, first=10.0 + first, done=10.0 + done, **fields)  # type: ignore[arg-type]


def _stats(queries: int, sql_s: float = 0.0) -> dict[str, object]:
    return {
        "queries": {"total": queries, "INSERT sophie_chat_chatmessage": queries},
        "sql_s": {"total": sql_s},
        "db_units": {"seconds": sql_s, "count": 1},
    }


def test_summary_subtracts_the_models_own_time_and_keeps_cache_hits_apart() -> None:
    load = loadgen.LoadResult(load_s=10.0, connect_all_s=0.5)
    load.turns = [
        _turn(0.310, 0.930, source="ai", deltas=20),
        _turn(0.320, 0.950, source="ai", deltas=20),
        _turn(0.004, 0.006, source="cache", deltas=3),
        _turn(0.300, 0.900, source="ai", error="deltas_differ_from_text"),
    ]
    usage = {
        "before": {"cpu_s": 1.0, "rss_kb": 1000.0, "hwm_kb": 1000.0},
        "connected": {"cpu_s": 2.0, "rss_kb": 3000.0, "hwm_kb": 3000.0},
        "after": {"cpu_s": 2.4, "rss_kb": 3000.0, "hwm_kb": 4096.0},
        "meta": {"connected": 2},
    }
    stats = {"before": _stats(0), "connected": _stats(8), "after": _stats(16, 0.02)}

    figures = scenario.summarize(load, usage, stats)  # type: ignore[arg-type]

    assert figures["errors"] == 1
    assert figures["error_kinds"] == {"deltas_differ_from_text": 1}
    assert figures["added_ttft_ms"]["p50"] == 15.0  # 310 and 320 ms against the model's 300
    assert figures["added_total_ms"]["p50"] == 40.0  # 930 and 950 ms against 900
    assert figures["cache_first_delta_ms"]["n"] == 1
    assert figures["cache_first_delta_ms"]["p50"] == 4.0
    assert figures["server_cpu_ms_per_turn"] == 100.0  # 0.4 s over 4 turns
    assert figures["rss_per_connected_session_kb"] == 1000.0
    assert figures["queries_per_connect"] == 4.0
    assert figures["queries_per_turn"] == 2.0
    assert figures["server_peak_rss_mb"] == 4.0


def test_percentiles_interpolate() -> None:
    values = [float(v) for v in range(1, 101)]
    assert scenario.pct(values, 50) == 50.5
    assert scenario.pct(values, 95) == 95.05
    assert scenario.pct([], 95) is None


def test_queries_are_grouped_by_statement_and_table() -> None:
    kind = querycount._kind
    assert kind('SELECT "a"."id" FROM "sophie_chat_chatsession" WHERE 1') == (
        "SELECT sophie_chat_chatsession"
    )
    assert kind('INSERT INTO "sophie_chat_chatmessage" ("seq") VALUES (1)') == (
        "INSERT sophie_chat_chatmessage"
    )
    assert kind('UPDATE "sophie_chat_chatsession" SET last_seq = 2') == (
        "UPDATE sophie_chat_chatsession"
    )


def test_the_nginx_test_config_is_the_documented_one_on_loopback() -> None:
    config = servers.nginx_config(8080, [9001, 9002])
    assert "listen 127.0.0.1:8080;" in config
    assert "server 127.0.0.1:9001;" in config
    assert "server 127.0.0.1:9002;" in config
    assert "ssl_certificate" not in config
    assert "return 301" not in config
    # What the chat socket needs from the proxy, straight from docs/deploy/nginx.conf.
    for directive in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Host $http_host;",
    ):
        assert directive in config
    assert config.count("{") == config.count("}")


def test_the_standard_answer_is_sixty_tokens() -> None:
    from tests.openai_server import _tokens

    assert len(_tokens(loadgen.ANSWER)) == scenario.TOKENS == 60


def test_markdown_and_rst_tables_have_a_row_per_target() -> None:
    figures = {
        "connected": 1,
        "turns": 1,
        "turns_per_s": 1.0,
        "errors": 0,
        "added_ttft_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
        "added_total_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
        "cache_first_delta_ms": {"n": 0},
        "server_cpu_ms_per_turn": 1.0,
        "server_peak_rss_mb": 1.0,
        "rss_per_connected_session_kb": 1.0,
        "connect_all_s": 0.1,
        "queries_per_connect": 1.0,
        "queries_per_turn": 1.0,
        "db_unit_ms_per_turn": 1.0,
        "db_thread_busy": 0.1,
        "deltas_per_reply": 1.0,
        "server_cpu_share": 0.1,
        "server_runqueue_wait_share": 0.1,
        "client_cpu_share": 0.1,
    }
    results = {
        "started_at": "2026-01-01T00:00:00+00:00",
        "commit": "abc",
        "versions": {"django": "5.2"},
        "machine": {"python": "3.11", "cpus": 2},
        "workload": {"ttft_s": 0.3, "tokens": 60, "tokens_per_s": 100.0},
        "configs": [
            {
                "name": "uvicorn-postgres-1-std",
                "config": {},
                "targets": {"ours": figures, "baseline": figures},
                "ttft_p95_ratio": 1.0,
            }
        ],
    }
    assert report.markdown(results).count("| uvicorn-postgres-1-std |") == 2
    assert report.rst(results).count("   * - uvicorn-postgres-1-std") == 2


@pytest.mark.slow
def test_the_sdk_transport_benchmark_measures_both_transports_and_stops() -> None:
    args = ["--concurrency", "2", "--rounds", "1", "--repeat", "1", "--tokens", "5"]
    done = subprocess.run(
        [sys.executable, "benchmarks/sdk_transport.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for transport in ("httpx", "aiohttp"):
        assert any(line.split()[:1] == [transport] and "5 chunks/request" in line for line in lines)
        assert any(line.startswith(f"{transport:<8} median") for line in lines)
