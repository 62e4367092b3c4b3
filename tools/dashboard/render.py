#!/usr/bin/python3
"""Renders manifests/grafana/rdmashare-dashboard.json as a PNG from a real run.

Not a Grafana screenshot (there is no Grafana here): it starts the real rdmashare-dp with
--metrics-addr on a simulated 8-rail node (rdmashare-fakenode), moves the node's RoCE counters
(traffic on rails 1-3, a congestion burst on rail 2, sequence errors on rail 3), scrapes
/metrics once a second, evaluates each panel's own PromQL expression over the scrapes and draws
the panels in the dashboard's grid. The evaluator understands exactly the forms the dashboard
uses and refuses anything else, so the dashboard and the picture cannot drift apart:
    sum by (L, ...) (rate(METRIC{MATCHERS}[$__rate_interval])) [* K]
    sum by (L, ...) (METRIC{MATCHERS})

  tools/dashboard/render.py [--build build] [--out docs/img/grafana-dashboard.png] [--steps 30]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "manifests/grafana/rdmashare-dashboard.json")

EXPR = re.compile(
    r"^sum by \(([a-z_, ]+)\) \((rate\()?([a-z_]+)\{([^}]*)\}(\[\$__rate_interval\]\))?\)"
    r"(?: \* (\d+))?$")
MATCHER = re.compile(r'\s*([a-z_]+)\s*(=~|=)\s*"([^"]*)"\s*')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_expr(expr):
    m = EXPR.match(expr)
    if not m:
        raise SystemExit(f"render.py: unsupported panel expression: {expr}")
    by = [l.strip() for l in m.group(1).split(",")]
    is_rate = m.group(2) is not None
    if is_rate != (m.group(5) is not None):
        raise SystemExit(f"render.py: unbalanced rate() in: {expr}")
    matchers = []
    for part in m.group(4).split(","):
        if not part.strip():
            continue
        mm = MATCHER.fullmatch(part)
        if not mm:
            raise SystemExit(f"render.py: unsupported matcher '{part}' in: {expr}")
        value = mm.group(3).replace("$node", ".*").replace("$resource", ".*")
        matchers.append((mm.group(1), mm.group(2), value))
    return {"by": by, "rate": is_rate, "metric": m.group(3), "matchers": matchers,
            "factor": float(m.group(6) or 1)}


def parse_scrape(text, instance):
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        labels["instance"] = instance
        series[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(4))
    return series


def matches(labels, matchers):
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
    return True


def evaluate(q, scrapes):
    """[(t, {group: value})] for the query over the scrapes (t, series)."""
    out = []
    for i, (t, series) in enumerate(scrapes):
        if q["rate"] and i == 0:
            continue
        groups = {}
        for (metric, labels), value in series.items():
            if metric != q["metric"]:
                continue
            ld = dict(labels)
            if not matches(ld, q["matchers"]):
                continue
            if q["rate"]:
                t0, prev = scrapes[i - 1]
                before = prev.get((metric, labels))
                if before is None or value < before:
                    continue
                value = (value - before) / (t - t0)
            key = tuple(ld.get(l, "") for l in q["by"])
            groups[key] = groups.get(key, 0.0) + value * q["factor"]
        out.append((t, groups))
    return out


def legend(fmt, by, key):
    text = fmt
    for name, value in zip(by, key):
        text = text.replace("{{" + name + "}}", value)
    return text


UNITS = {"bps": "b/s", "pps": "pkt/s", "reqps": "req/s"}


def human(v, unit):
    for f, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= f:
            return f"{v / f:.1f} {p}{UNITS.get(unit, '')}"
    return f"{v:.0f} {UNITS.get(unit, '')}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_counter(sys_root, ibdev, group, name, delta):
    path = os.path.join(sys_root, "class/infiniband", ibdev, "ports/1", group, name)
    with open(path) as f:
        value = int(f.read().strip() or 0)
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(f"{value + delta}\n")
    os.replace(tmp, path)


def run(build, steps, step_seconds):
    tmp = tempfile.mkdtemp(prefix="rs-dash.")
    node = os.path.join(tmp, "node")
    subprocess.run([os.path.join(build, "tools/fakenode/rdmashare-fakenode"), "--preset",
                    "walkthrough-8rail", "--root", node], check=True, stdout=subprocess.DEVNULL)
    entries = [{"resourcePrefix": "spidernet.io", "resourceName": f"shared_cx5_gpu{k}",
                "rdmaHcaMax": 100, "selectors": {"ifNames": [f"enp{10 + k}s0f0np0"]}}
               for k in range(1, 9)]
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as f:
        json.dump({"periodicUpdateInterval": 300, "configList": entries}, f)
    port = free_port()
    sys_root = os.path.join(node, "sys")
    daemon = subprocess.Popen(
        [os.path.join(build, "deviceplugin/rdmashare-dp"), "--config", config, "--sysfs-root",
         sys_root, "--dev-root", os.path.join(node, "dev"), "--kubelet-dir",
         os.path.join(tmp, "kubelet"), f"--metrics-addr=127.0.0.1:{port}", "--log-level=warn"],
        stderr=subprocess.DEVNULL)
    scrapes = []
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("render.py: rdmashare-dp did not serve /metrics")
                time.sleep(0.1)
        for i in range(steps):
            # Rails 1-3 carry traffic (rail 1 ramps up); a congestion burst on rail 2 in the
            # middle third; sequence errors and a few ACK timeouts on rail 3 late in the run.
            ramp = min(1.0, (i + 1) / (steps / 3))
            for ibdev, gbps in (("mlx5_0", 180 * ramp), ("mlx5_1", 120), ("mlx5_2", 60)):
                words = int(gbps * 1e9 / 8 / 4 * step_seconds)
                add_counter(sys_root, ibdev, "counters", "port_xmit_data", words)
                add_counter(sys_root, ibdev, "counters", "port_rcv_data", int(words * 0.9))
                pkts = int(gbps * 1e9 / 8 / 4096 * step_seconds)
                add_counter(sys_root, ibdev, "counters", "port_xmit_packets", pkts)
                add_counter(sys_root, ibdev, "counters", "port_rcv_packets", int(pkts * 0.9))
            if steps / 3 <= i < 2 * steps / 3:
                add_counter(sys_root, "mlx5_1", "hw_counters", "np_cnp_sent", 40000)
                add_counter(sys_root, "mlx5_1", "hw_counters", "np_ecn_marked_roce_packets", 52000)
                add_counter(sys_root, "mlx5_0", "hw_counters", "rp_cnp_handled", 38000)
            if i >= 2 * steps / 3:
                add_counter(sys_root, "mlx5_2", "hw_counters", "out_of_sequence", 300)
                add_counter(sys_root, "mlx5_2", "hw_counters", "packet_seq_err", 120)
                add_counter(sys_root, "mlx5_2", "hw_counters", "local_ack_timeout_err", 8)
            time.sleep(step_seconds)
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            scrapes.append((time.time(), parse_scrape(text, "worker1:9646")))
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return scrapes


def draw(dashboard, scrapes, out, step_seconds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t0 = scrapes[0][0]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    fig = plt.figure(figsize=(16, rows * 0.42 + 1.2), facecolor="#181b1f")
    fig.suptitle(f"{dashboard['title']}  (manifests/grafana/rdmashare-dashboard.json)",
                 color="white", fontsize=14, x=0.01, ha="left", y=0.995)
    fig.text(0.01, 0.975,
             "Rendered by tools/dashboard/render.py from the panels' own queries over a run of "
             f"the real rdmashare-dp on a simulated 8-rail node (scraped every {step_seconds} s), "
             "not a Grafana screenshot.", color="#9fa7b3", fontsize=9, ha="left")
    top = 0.955
    for p in dashboard["panels"]:
        g = p["gridPos"]
        left = 0.01 + g["x"] / 24 * 0.98
        width = g["w"] / 24 * 0.98 - 0.008
        height = g["h"] / rows * (top - 0.02) - 0.012
        bottom = top - (g["y"] + g["h"]) / rows * (top - 0.02)
        ax = fig.add_axes([left, bottom, width, height], facecolor="#111217")
        ax.set_title(p["title"], color="white", fontsize=10, loc="left")
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.tick_params(colors="#9fa7b3", labelsize=7)
        target = p["targets"][0]
        q = parse_expr(target["expr"])
        series = evaluate(q, scrapes)
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        if p["type"] == "stat":
            ax.set_xticks([])
            ax.set_yticks([])
            last = series[-1][1] if series else {}
            items = sorted(last.items())
            for j, (key, value) in enumerate(items):
                name = legend(target["legendFormat"], q["by"], key).replace("spidernet.io/", "")
                col, row = j % 4, j // 4
                color = "#73bf69" if value > 0 else "#f2495c"
                ax.text(0.02 + col * 0.25, 0.8 - row * 0.38, f"{value:g}", color=color,
                        fontsize=14, transform=ax.transAxes, weight="bold")
                ax.text(0.02 + col * 0.25, 0.62 - row * 0.38, name, color="#9fa7b3", fontsize=7,
                        transform=ax.transAxes)
            continue
        keys = sorted({k for _, groups in series for k in groups})
        for key in keys:
            xs = [(t - t0) / step_seconds * 15 / 60 for t, groups in series if key in groups]
            ys = [groups[key] for t, groups in series if key in groups]
            if not any(ys):
                continue
            ax.plot(xs, ys, linewidth=1.5, label=legend(target["legendFormat"], q["by"], key))
        ax.set_xlabel("minutes (each scrape drawn as a 15 s step)", color="#9fa7b3", fontsize=7)
        ax.yaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _, unit=unit: human(v, unit)))
        ax.grid(color="#2c3235", linewidth=0.5)
        if ax.lines:
            ax.legend(fontsize=7, facecolor="#181b1f", labelcolor="white", edgecolor="#2c3235",
                      loc="upper left")
        else:
            ax.text(0.5, 0.5, "no movement", color="#9fa7b3", ha="center", transform=ax.transAxes)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=72, facecolor=fig.get_facecolor())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/img/grafana-dashboard.png"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--check", action="store_true",
                    help="only parse every panel expression (no run, no matplotlib)")
    args = ap.parse_args()
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    for p in dashboard["panels"]:
        for t in p["targets"]:
            parse_expr(t["expr"])
    if args.check:
        print(f"render.py: {len(dashboard['panels'])} panels, every expression understood")
        return
    step = 1.1  # the daemon reads the counters at most once a second
    scrapes = run(args.build, args.steps, step)
    draw(dashboard, scrapes, args.out, step)
    print(f"render.py: wrote {args.out} from {len(scrapes)} scrapes")


if __name__ == "__main__":
    main()
