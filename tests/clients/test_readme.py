"""Every line of the README's quick start, run as a newcomer would, against a real broker."""
import json
import os
import re
import subprocess

from conftest import fjord_bin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def quick_start_lines():
    """Every command of the sh blocks of the Quick start section, in order."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the quick start has a fjord block and a kcat block"
    return [line for block in blocks for line in block.splitlines()
            if line.strip() and not line.startswith("#")]


def run(line, broker):
    line = line.replace("127.0.0.1:9092", broker.bootstrap)
    line = re.sub(r"(^|\| )fjord ", lambda m: f"{m.group(1)}{fjord_bin()} ", line)
    env = dict(os.environ, FJORD_BOOTSTRAP=broker.bootstrap)
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], capture_output=True, text=True,
                          env=env, timeout=120)


def test_quick_start_runs_line_by_line(make_broker):
    broker = make_broker()
    lines = quick_start_lines()
    assert any(l.startswith("fjord topic create") for l in lines), lines
    outputs = []
    for line in lines:
        result = run(line, broker)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        outputs.append(result.stdout)
    by_line = dict(zip(lines, outputs))
    consumed = [json.loads(l) for l in by_line["fjord consume demo --format json"].splitlines()]
    assert sorted(r["value"] for r in consumed) == ["hello", "world"]
    assert sorted(r["key"] for r in consumed) == ["k1", "k2"]
    group_run = by_line["fjord consume demo --group readers --from-beginning --count 2"]
    assert sorted(group_run.split()) == ["hello", "world"]
    described = by_line["fjord group describe readers"]
    assert "State:     Empty" in described and "demo" in described
    kcat_consume = next(out for line, out in by_line.items() if line.startswith("kcat") and " -C " in line)
    assert kcat_consume.split() == ["a", "b"]
