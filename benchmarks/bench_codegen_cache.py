"""How much of a Brian2 process's start the persistent codegen cache saves.

    python benchmarks/bench_codegen_cache.py [--models CUBA,COBAHH,STDP] [--repeat N]

For Brian2's CUBA, COBAHH and STDP examples (shortened runs), each measurement in a fresh
process: set-up seconds (network construction plus ``run(0*ms)``) and whole-process seconds
(interpreter start to exit, including a short run), on the numpy target with the codegen
cache off, cold and warm; on Brian2's cython target with its extensions compiled (warm),
without and with a warm codegen cache; and on the sobuild target (off, cold, warm) when
``prefs.codegen.target = 'sobuild'`` works. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "CUBA": """
taum = 20*ms; taue = 5*ms; taui = 10*ms; Vt = -50*mV; Vr = -60*mV; El = -49*mV
eqs = '''
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
'''
P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms, method='exact')
P.v = 'Vr + rand() * (Vt - Vr)'
P.ge = 0*mV
P.gi = 0*mV
we = (60*0.27/10)*mV
wi = (-20*4.5/10)*mV
Ce = Synapses(P, P, on_pre='ge += we')
Ci = Synapses(P, P, on_pre='gi += wi')
Ce.connect('i<3200', p=0.02)
Ci.connect('i>=3200', p=0.02)
s_mon = SpikeMonitor(P)
""",
    "COBAHH": """
area = 20000*umetre**2
Cm = (1*ufarad*cm**-2) * area
gl = (5e-5*siemens*cm**-2) * area
El = -60*mV; EK = -90*mV; ENa = 50*mV
g_na = (100*msiemens*cm**-2) * area
g_kd = (30*msiemens*cm**-2) * area
VT = -63*mV
taue = 5*ms; taui = 10*ms
Ee = 0*mV; Ei = -80*mV
we = 6*nS; wi = 67*nS
eqs = Equations('''
dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-
         g_na*(m*m*m)*h*(v-ENa)-
         g_kd*(n*n*n*n)*(v-EK))/Cm : volt
dm/dt = alpha_m*(1-m)-beta_m*m : 1
dn/dt = alpha_n*(1-n)-beta_n*n : 1
dh/dt = alpha_h*(1-h)-beta_h*h : 1
dge/dt = -ge*(1./taue) : siemens
dgi/dt = -gi*(1./taui) : siemens
alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
''')
P = NeuronGroup(4000, model=eqs, threshold='v>-20*mV', refractory=3*ms,
                method='exponential_euler')
Pe = P[:3200]
Pi = P[3200:]
Ce = Synapses(Pe, P, on_pre='ge+=we')
Ci = Synapses(Pi, P, on_pre='gi+=wi')
Ce.connect(p=0.02)
Ci.connect(p=0.02)
P.v = 'El + (randn() * 5 - 5)*mV'
P.ge = '(randn() * 1.5 + 4) * 10.*nS'
P.gi = '(randn() * 12 + 20) * 10.*nS'
trace = StateMonitor(P, 'v', record=[1, 10, 100])
""",
    "STDP": """
N = 1000
taum = 10*ms; taupre = 20*ms; taupost = taupre
Ee = 0*mV; vt = -54*mV; vr = -60*mV; El = -74*mV; taue = 5*ms
F = 15*Hz
gmax = .01
dApre = .01
dApost = -dApre * taupre / taupost * 1.05
dApost *= gmax
dApre *= gmax
eqs_neurons = '''
dv/dt = (ge * (Ee-v) + El - v) / taum : volt
dge/dt = -ge / taue : 1
'''
poisson_input = PoissonGroup(N, rates=F)
neurons = NeuronGroup(1, eqs_neurons, threshold='v>vt', reset='v = vr', method='euler')
S = Synapses(poisson_input, neurons,
             '''w : 1
                dApre/dt = -Apre / taupre : 1 (event-driven)
                dApost/dt = -Apost / taupost : 1 (event-driven)''',
             on_pre='''ge += w
                    Apre += dApre
                    w = clip(w + Apost, 0, gmax)''',
             on_post='''Apost += dApost
                     w = clip(w + Apre, 0, gmax)''')
S.connect()
S.w = 'rand() * gmax'
mon = StateMonitor(S, 'w', record=[0, 1])
s_mon = SpikeMonitor(poisson_input)
""",
}
#: The shortened simulated time of each model's run after the set-up.
DURATIONS = {"CUBA": "100*ms", "COBAHH": "100*ms", "STDP": "1*second"}

CHILD = """
import json, sys, time
start = time.perf_counter()
with_adapter = {with_adapter!r}
if with_adapter:
    import sobuild.brian_adapter  # noqa: F401
from brian2 import *
prefs.codegen.target = {target!r}
prefs.codegen.runtime.cython.cache_dir = {cython_cache!r}
seed(1)
imported = time.perf_counter()
{model}
run(0*ms)
set_up = time.perf_counter()
run({duration})
ran = time.perf_counter()
json.dump({{"import": imported - start, "setup": set_up - imported, "run": ran - set_up}},
          open({out!r}, "w"))
"""


def measure(model: str, target: str, codegen: str, work: Path) -> dict:
    """One fresh process: its import, set-up and run seconds and its whole wall time."""
    out = work / "result.json"
    out.unlink(missing_ok=True)
    script = CHILD.format(with_adapter=codegen != "plain", target=target,
                          cython_cache=str(work / "cython"), model=MODELS[model],
                          duration=DURATIONS[model], out=str(out))
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(work / "sobuild"),
           "SOBUILD_CODEGEN_CACHE": "0" if codegen in ("off", "plain") else "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=work,
                          capture_output=True, text=True)
    whole = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return {**json.loads(out.read_text()), "process": whole}


def clear_codegen(work: Path) -> None:
    """Empty the codegen entries (kernels and extensions stay)."""
    for path in (work / "sobuild").glob("data/*/*"):
        path.unlink()


def sobuild_target_works(work: Path) -> bool:
    script = ("import sobuild.brian_adapter\nfrom brian2 import *\n"
              "prefs.codegen.target = 'sobuild'\nG = NeuronGroup(2, 'dv/dt = -v/ms : 1')\n"
              "run(0.1*ms)\n")
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(work / "sobuild")}
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=work,
                          capture_output=True).returncode == 0


def median_of(runs: list[dict]) -> dict:
    if any("error" in r for r in runs):
        return next(r for r in runs if "error" in r)
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def bench_model(model: str, work: Path, repeat: int, with_sobuild: bool) -> dict[str, dict]:
    rows: dict[str, dict] = {}

    def series(label: str, target: str, codegen: str, cold: bool = False) -> None:
        runs = []
        for _ in range(repeat):
            if cold:
                clear_codegen(work)
            runs.append(measure(model, target, codegen, work))
        rows[label] = median_of(runs)
        print(f"  {model:7} {label:28} {_fmt(rows[label])}", flush=True)

    series("numpy, cache off", "numpy", "off")
    series("numpy, codegen cold", "numpy", "on", cold=True)
    series("numpy, codegen warm", "numpy", "on")
    measure(model, "cython", "plain", work)  # compile the extensions once
    series("cython warm (plain Brian2)", "cython", "plain")
    measure(model, "cython", "on", work)  # fill the codegen cache for cython
    series("cython warm + codegen warm", "cython", "on")
    if with_sobuild:
        measure(model, "sobuild", "off", work)  # compile the kernels once
        series("sobuild, codegen off", "sobuild", "off")
        series("sobuild, codegen cold", "sobuild", "on", cold=True)
        series("sobuild, codegen warm", "sobuild", "on")
    return rows


#: Each target's set-up without the codegen cache, the denominator of "x off".
REFERENCE = {"numpy": "numpy, cache off", "cython": "cython warm (plain Brian2)",
             "sobuild": "sobuild, codegen off"}


def _fmt(row: dict) -> str:
    if "error" in row:
        return f"failed: {row['error']}"
    return f"set-up {row['setup']:6.2f} s   process {row['process']:6.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="CUBA,COBAHH,STDP")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-codegen-") as tmp:
        work = Path(tmp)
        with_sobuild = sobuild_target_works(work)
        if not with_sobuild:
            print("the 'sobuild' target does not run here yet: numpy and cython only")
        table = {}
        for model in args.models.split(","):
            table[model] = bench_model(model, work, args.repeat, with_sobuild)
    print()
    print("set-up = network construction + run(0*ms); x off = set-up / the same target's "
          "set-up without the codegen cache; process = whole fresh process")
    print("| model | configuration | set-up s | x off | process s | x cython warm process |")
    print("|---|---|---:|---:|---:|---:|")
    for model, rows in table.items():
        cython = rows["cython warm (plain Brian2)"].get("process")
        for label, row in rows.items():
            if "error" in row:
                print(f"| {model} | {label} | failed: {row['error']} | | | |")
                continue
            off = rows.get(REFERENCE[label.split(",")[0].split(" ")[0]], {}).get("setup")
            ratio = f"{row['setup'] / off:.2f}" if off else ""
            versus = f"{row['process'] / cython:.2f}" if cython else ""
            print(f"| {model} | {label} | {row['setup']:.2f} | {ratio} | {row['process']:.2f} "
                  f"| {versus} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
