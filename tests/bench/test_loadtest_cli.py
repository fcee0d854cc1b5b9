"""`arun bench` end to end against the simulator: every subcommand, the JSON and the plot,
faults mid-run, the manager path, bad input, the cost prompt, and `compare` passing its
arguments through. No timing assertions: only counts, classes and shapes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from arun.cli import main as arun_main

SimControl = Any  # the `sim` fixture of conftest.py: url, fault(), stats()

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-bench-SECRET-0123456789abcdef"
REPLY_WORDS = 8  # conftest.REPLY_WORDS: every simulated answer has that many words
LEVEL_KEYS = {
    "requests", "completed", "failed", "duration_s", "request_throughput", "output_throughput", "input_throughput",
    "total_token_throughput", "total_input_tokens", "total_output_tokens", "output_tokens_source", "ttft_ms",
    "tpot_ms", "itl_ms", "e2e_ms", "errors", "rate_limit_waits", "client_cpu",
}  # fmt: skip


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        rc = arun_main(["bench", *args])
    except SystemExit as exc:  # argparse errors and --help
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _creds(tmp_path: Path, **fields: str) -> str:
    path = tmp_path / "creds.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return str(path)


def _openai(tmp_path: Path, sim: SimControl) -> list[str]:
    creds = _creds(tmp_path, openai_api_key=SECRET, openai_api_base=sim.url)
    return ["--provider", "openai", "--model", "gpt-4o-mini", "--credentials", creds, "--max-tokens", str(REPLY_WORDS)]


def test_no_arguments_runs_the_simulator_demo_with_a_legend(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = bench(capsys)
    assert rc == 0, err
    assert "built-in simulator" in out and "nothing is charged" in out
    header = next(line for line in out.splitlines() if "c=1" in line)
    assert header.split() == ["c=1", "c=8", "c=32"]
    for row in ("requests ok / failed", "requests/s", "output tokens/s", "TTFT ms p50/p90/p99", "TPOT ms p50/p90/p99",
                "ITL ms p50/p90/p99", "E2E ms p50/p90/p99", "client CPU ms/request", "rate-limit waits"):  # fmt: skip
        assert row in out, row
    assert "100 / 0" in out and "What the figures mean" in out


def test_run_json_holds_every_metric_and_the_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    out_json = tmp_path / "out.json"
    rc, out, err = bench(capsys, "run", *_openai(tmp_path, sim), "--concurrency", "1,4", "--requests", "20",
                         "--slo", "ttft=2s,e2e=10s", "--json", str(out_json), "--no-progress")  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["target"] == {"provider": "openai", "model": "gpt-4o-mini", "via": "runtime", "tenant": None,
                             "policy": False, "simulator": False, "local": True}  # fmt: skip
    assert doc["settings"]["concurrency"] == [1, 4] and doc["settings"]["requests"] == 20
    assert doc["settings"]["slo"] == {"ttft_ms": 2000.0, "e2e_ms": 10000.0} and doc["settings"]["stream"] is True
    assert doc["estimate"]["requests"] == 41 and doc["estimate"]["currency"] == "USD"  # 2 levels x 20 + the probe
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 4]
    for lv in doc["levels"]:
        assert LEVEL_KEYS | {"goodput", "concurrency"} <= set(lv)
        assert (lv["completed"], lv["failed"], lv["errors"]) == (20, 0, {})
        assert lv["total_output_tokens"] == 20 * REPLY_WORDS and lv["output_tokens_source"] == "usage"
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            assert set(lv[key]) == {"mean", "p50", "p90", "p99"} and lv[key]["p50"] <= lv[key]["p99"]
        assert lv["request_throughput"] > 0 and lv["client_cpu"]["ms_per_request"] > 0
    assert "estimate for openai/gpt-4o-mini at 127.0.0.1 (a local address: not asked)" in out  # priced, yet no prompt
    for text in (out, err, out_json.read_text()):
        assert SECRET not in text


def test_credentials_from_environment_variables(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("ARUN_BENCH_CRED_OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ARUN_BENCH_CRED_OPENAI_API_BASE", sim.url)
    rc, out, err = bench(capsys, "run", "--provider", "openai", "--model", "gpt-4o-mini", "--no-stream",
                         "--concurrency", "2", "--requests", "6", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert sim.stats()["by_key"] == {SECRET: 7}  # the probe and six measured requests, with the variable's key
    assert "6 / 0" in out and SECRET not in out + err


def test_open_loop_rate_sweep(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    out_json = tmp_path / "rate.json"
    rc, out, err = bench(capsys, "run", *_openai(tmp_path, sim), "--rate", "200,400", "--requests", "15",
                         "--max-concurrency", "8", "--json", str(out_json))  # fmt: skip
    assert rc == 0, err
    levels = json.loads(out_json.read_text())["levels"]
    assert [(lv["rate"], lv["max_concurrency"], lv["completed"]) for lv in levels] == [(200.0, 8, 15), (400.0, 8, 15)]
    assert "rate=200/s" in out and "open loop (Poisson arrivals)" in out


def test_plot_is_written_when_asked(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib extra (pip install 'arun[plot]')")
    png = tmp_path / "out.png"
    rc, out, err = bench(capsys, "run", *_openai(tmp_path, sim), "--concurrency", "1,2", "--requests", "5", "--plot", str(png))
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in out


def test_plot_without_matplotlib_names_the_extra(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rc, _, err = bench(capsys, "run", *_openai(tmp_path, sim), "--requests", "2", "--plot", str(tmp_path / "p.png"))
    assert rc == 2 and "--plot needs matplotlib: pip install 'arun[plot]'" in err


def test_embed_subcommand_on_the_bench_owned_simulator(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json = tmp_path / "embed.json"
    rc, out, err = bench(capsys, "embed", "--simulator", "--batch-size", "16", "--concurrency", "1,3", "--requests", "10",
                         "--json", str(out_json))  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["target"]["provider"] == "openai" and doc["target"]["simulator"] is True
    for lv in doc["levels"]:
        assert set(lv) >= LEVEL_KEYS and (lv["completed"], lv["items"], lv["results"]) == (10, 160, 160)
        assert lv["items_throughput"] > 0 and lv["total_input_tokens"] > 0
    assert "texts/s" in out and "vectors/s" in out


def test_rerank_subcommand(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    creds = _creds(tmp_path, api_key="jina_bench_key", base_url=sim.url + "/v1")
    out_json = tmp_path / "rerank.json"
    rc, out, err = bench(capsys, "rerank", "--provider", "jina", "--model", "jina-reranker-v2-base-multilingual",
                         "--credentials", creds, "--docs", "8", "--top-n", "3", "--concurrency", "2", "--requests", "10",
                         "--json", str(out_json))  # fmt: skip
    assert rc == 0, err
    (lv,) = json.loads(out_json.read_text())["levels"]
    assert (lv["completed"], lv["items"], lv["results"]) == (10, 80, 30)
    assert "documents/s" in out



def test_rerank_dataset_is_sent_and_counted_for_the_estimate(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    from arun.tokenizers import count_tokens

    lines = [("capital of France", ["Paris is the capital", "Berlin is a city", "Rome"]), ("a query", ["one document"])]
    data = tmp_path / "rerank.jsonl"
    data.write_text("".join(json.dumps({"query": q, "documents": d}) + "\n" for q, d in lines))
    creds = _creds(tmp_path, api_key="jina_bench_key", base_url=sim.url + "/v1")
    out_json = tmp_path / "rerank.json"
    rc, out, err = bench(capsys, "rerank", "--provider", "jina", "--model", "jina-reranker-v2-base-multilingual",
                         "--credentials", creds, "--dataset", str(data), "--concurrency", "1", "--requests", "4",
                         "--json", str(out_json))  # fmt: skip
    assert rc == 0, err
    assert "2 queries from" in out and sim.stats()["total"] == 5  # the probe and four measured requests
    per_request = round(sum(count_tokens(t) for q, d in lines for t in [q, *d]) / len(lines))
    document = json.loads(out_json.read_text())
    assert document["estimate"]["requests"] == 5 and document["estimate"]["input_tokens"] == 5 * per_request
    (lv,) = document["levels"]
    assert (lv["completed"], lv["items"]) == (4, 3 + 1 + 3 + 1)

def test_a_stream_cut_mid_run_is_counted_as_its_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    sim.fault(times=1)  # the probe gets an untouched answer,
    sim.fault(times=4, disconnect_after=3)  # the next four streams are cut after three events
    out_json = tmp_path / "cut.json"
    rc, out, err = bench(capsys, "run", *_openai(tmp_path, sim), "--concurrency", "1", "--requests", "12", "--json", str(out_json))
    assert rc == 0, err
    (lv,) = json.loads(out_json.read_text())["levels"]
    assert lv["errors"] == {"InvokeStreamInterruptedError": 4}
    assert (lv["completed"], lv["failed"]) == (8, 4)
    assert lv["total_output_tokens"] == 8 * REPLY_WORDS  # no partial answer counted as a short success
    assert "errors: InvokeStreamInterruptedError" in out


async def _tenant(store: str, url: str) -> str:
    from arun.manager import ModelManager

    async with ModelManager.open(store, "memory://") as manager:
        tenant = await manager.create_tenant("bench")
        creds = {"openai_api_key": SECRET, "openai_api_base": url, "max_in_flight": "1"}
        await manager.save_provider_credentials(tenant.id, "openai", creds)
        return str(tenant.id)


@pytest.mark.parametrize("stream", [True, False])
def test_tenant_through_the_manager_reports_policy_waits(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl,
                                                         stream: bool) -> None:  # fmt: skip
    store = f"sqlite:///{tmp_path / 'arun.db'}"
    tenant = asyncio.run(_tenant(store, sim.url))
    sim.fault(times=50, first_byte_delay=0.02)  # every answer takes a while, so the 1-in-flight limit makes others wait
    out_json = tmp_path / "tenant.json"
    rc, out, err = bench(capsys, "run", "--tenant", tenant, "--store", store, "--policy", "--provider", "openai",
                         "--model", "gpt-4o-mini", "--max-tokens", str(REPLY_WORDS), "--concurrency", "4",
                         "--requests", "8", "--json", str(out_json), *([] if stream else ["--no-stream"]))  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["target"]["via"] == "manager" and doc["target"]["policy"] is True and doc["target"]["tenant"] == tenant
    (lv,) = doc["levels"]
    assert (lv["completed"], lv["errors"]) == (8, {})
    assert lv["rate_limit_waits"]["requests"] > 0 and lv["rate_limit_waits"]["seconds"] > 0
    assert SECRET not in out + err + out_json.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--provider", "nope", "--model", "m"], "--provider 'nope': unknown provider (known: "),
        (["run", "--provider", "openai", "--model", "gpt-nope"], "--model 'gpt-nope': provider 'openai' has no llm model"),
        (["run", "--simulator", "--rate", "-5"], "argument --rate: '-5': expected positive request rates"),
        (["run", "--simulator", "--rate", "0"], "argument --rate: '0': expected positive"),
        (["run", "--simulator", "--concurrency", "8,-1"], "argument --concurrency: '8,-1'"),
        (["run", "--simulator", "--requests", "0"], "argument --requests: '0': expected a positive whole number"),
        (["run", "--simulator", "--slo", "ttft=5"], "argument --slo: ttft: '5' is not a duration"),
        (["run", "--simulator", "--no-stream", "--slo", "ttft=1s"], "--slo ttft/tpot need a streamed run"),
        (["run", "--simulator", "--concurrency", "2", "--max-concurrency", "4"], "--max-concurrency applies to --rate"),
        (["run", "--simulator", "--tenant", "t"], "--simulator cannot be combined with --tenant"),
        (["run", "--provider", "openai"], "--model is required"),
        (["run", "--model", "m"], "--provider is required (or --simulator"),
        (["embed", "--provider", "anthropic", "--model", "x"], "--provider 'anthropic' has no text-embedding models"),
        (["run", "--smoke"], "unrecognized arguments: --smoke"),
        (["--smoke"], "--smoke: name a subcommand first"),
        (["run", "--provider", "openai", "--model", "gpt-4o", "--tenant", "no-such-tenant", "--store", "sqlite:///{tmp}/a.db"],
         "TenantNotFoundError: Tenant 'no-such-tenant' not found"),
    ],
)
def test_bad_input_gets_a_message_naming_the_argument(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      args: list[str], message: str) -> None:  # fmt: skip
    rc, _out, err = bench(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert rc == 2 and message in err, err


def test_a_dataset_line_that_is_not_json_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('"fine"\n{"prompt": "also fine"}\n{"prompt": oops}\n')
    rc, _, err = bench(capsys, "run", *_openai(tmp_path, sim), "--dataset", str(data))
    assert rc == 2 and f"--dataset {data} line 3: not JSON" in err
    assert sim.stats()["total"] == 0  # nothing was sent


def test_dataset_prompts_are_sent(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('"first prompt"\n[{"role": "system", "content": "terse"}, {"role": "user", "content": "second"}]\n')
    rc, out, err = bench(capsys, "run", *_openai(tmp_path, sim), "--dataset", str(data), "--concurrency", "1", "--requests", "4")
    assert rc == 0, err
    assert "2 prompts from" in out and "4 / 0" in out and sim.stats()["total"] == 5


def test_a_failing_first_request_stops_before_measuring(capsys: pytest.CaptureFixture[str], tmp_path: Path, sim: SimControl) -> None:
    creds = _creds(tmp_path, openai_api_key="invalid-key", openai_api_base=sim.url)
    rc, _out, err = bench(capsys, "run", "--provider", "openai", "--model", "gpt-4o-mini", "--credentials", creds, "--requests", "50")
    assert rc == 1 and "the first request failed, so nothing was measured: InvokeAuthorizationError" in err
    assert sim.stats()["total"] == 1


def test_a_paid_remote_run_without_a_terminal_refuses_and_names_yes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    creds = _creds(tmp_path, openai_api_key=SECRET, openai_api_base="https://api.example.invalid/v1")
    rc, out, err = bench(capsys, "run", "--provider", "openai", "--model", "gpt-4o", "--credentials", creds, "--requests", "10")
    assert rc == 2
    assert "estimate for openai/gpt-4o at api.example.invalid: 11 requests" in out
    assert "pass --yes to run it" in err and SECRET not in out + err


def test_help_lists_the_subcommands_and_the_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = bench(capsys, "--help")
    assert rc == 0 and "{run,embed,rerank,compare}" in out and "What the figures mean" in out
    rc, out, _ = bench(capsys, "run", "--help")
    assert rc == 0 and "--concurrency" in out and "ARUN_BENCH_CRED_" in out and "openai_api_compatible" in out


def test_compare_passes_its_arguments_through(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = bench(capsys, "compare", "--help")
    assert rc == 0 and "usage: benchmarks.run" in out and "--smoke" in out
    rc, _, err = bench(capsys, "compare", "--no-such-flag")
    assert rc == 2 and "benchmarks.run: error: unrecognized arguments: --no-such-flag" in err


def test_compare_outside_a_checkout_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("benchmarks", "benchmarks.run"):  # as if the package held no benchmarks/ folder
        monkeypatch.setitem(sys.modules, name, None)
    rc, _, err = bench(capsys, "compare", "--smoke")
    assert rc == 2 and "from a checkout of the repository" in err and "arun bench run" in err


def test_compare_smoke_through_the_command_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "arun.cli", "bench", "compare", "--smoke", "--no-progress", "--out", str(tmp_path)],
                       cwd=str(REPO), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert rows and all(row["ok"] for row in rows)
