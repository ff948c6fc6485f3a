#!/usr/bin/env python3
"""Medians of bench/storms.sh's rounds: reads OUT/*.json (loadgen's
results), prints Markdown tables and writes OUT/summary.json.

    python3 bench/storms_summary.py OUT ROUNDS OFFLINE "PEERS" ["NATS"]

NATS names what the nodes shared in the labels (default "NATS"; storms.sh
passes "a 3-server NATS cluster" with NATS_SERVERS=3).
"""
import json
import os
import statistics
import sys


def load(out, name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def dur_s(s):
    """'1s', '500ms' -> seconds."""
    if s.endswith("ms"):
        return float(s[:-2]) / 1000
    if s.endswith("s"):
        return float(s[:-1])
    return float(s)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ms(us):
    return None if us is None else us / 1000


def fmt(v, unit="", nd=1):
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.{nd}f}{unit}"
    return f"{int(v)}{unit}"


def shootout(out, servers, rounds):
    rows, summary = [], {}
    for s in servers:
        per = []
        for r in rounds:
            d = load(out, f"shootout-{s}-r{r}")
            sh = (d or {}).get("shootout") or {}
            steps = sh.get("steps") or []
            passing = [st for st in steps if st.get("pass")]
            failing = [st for st in steps if not st.get("pass")]
            per.append({
                "round": r,
                "max_passing": sh.get("max_passing") if d else None,
                "stop": sh.get("stop") if d else "missing",
                "p95_ms_at_max": ms(passing[-1]["p95_us"]) if passing else None,
                "failing_clients": failing[0]["clients"] if failing else None,
                "failing_p95_ms": ms(failing[0]["p95_us"]) if failing else None,
                "failing_delivered": f"{failing[0]['deliveries']}/{failing[0]['expected']}" if failing else None,
                "steps": [(st["clients"], st["p95_us"], st["pass"]) for st in steps],
            })
        summary[s] = {"median_max_passing": med([p["max_passing"] for p in per]), "rounds": per}
        rows.append((s, per))
    if not any(p["stop"] != "missing" for _, per in rows for p in per):
        return summary  # no shootout in this run (SCENARIOS left it out)
    print("## shootout: largest client count with p95 <= bound\n")
    print("| server | median | " + " | ".join(f"round {r}" for r in rounds) + " | herald ÷ server (median) |")
    print("|---|---:|" + "---|" * len(rounds) + "---:|")
    hm = summary.get("herald", {}).get("median_max_passing")
    for s, per in rows:
        cells = []
        for p in per:
            c = f"{fmt(p['max_passing'])} (stop: {p['stop']}"
            if p["p95_ms_at_max"] is not None:
                c += f", p95 {fmt(p['p95_ms_at_max'], ' ms')}"
            if p["failing_clients"] is not None:
                c += f"; {p['failing_clients']}: p95 {fmt(p['failing_p95_ms'], ' ms')}, {p['failing_delivered']}"
            cells.append(c + ")")
        m = summary[s]["median_max_passing"]
        ratio = f"{hm / m:.2f}" if hm and m else "—"
        print(f"| {s} | {fmt(m)} | " + " | ".join(cells) + f" | {ratio} |")
    print()
    return summary


def recovery_row(d, bound_s):
    rec = (d or {}).get("recovery") or {}
    if not d or not rec:
        return None
    rl, dt = rec.get("replay_latency") or {}, rec.get("downtime") or {}
    lat = d.get("latency") or {}
    fails = sum((d.get("publish_failures") or {}).values())
    row = {
        "clients": rec.get("clients"),
        "published": d.get("published"),
        "publish_failures": fails,
        "delivered_pct": rec.get("delivered_pct"),
        "delivered": rec.get("delivered"),
        "expected": rec.get("expected"),
        "duplicates": rec.get("duplicates"),
        "complete_clients": rec.get("complete_clients"),
        "cuts": rec.get("cuts"),
        "drops": rec.get("drops"),
        "reconnects": rec.get("reconnects"),
        "reconnect_failures": rec.get("reconnect_failures"),
        "recovered": rec.get("recovered"),
        "not_recovered": rec.get("not_recovered"),
        "affected_clients": rec.get("affected_clients"),
        "recovered_clients": rec.get("recovered_clients"),
        "recovered_pct": rec.get("recovered_pct"),
        "never_returned": rec.get("never_returned"),
        "replay_count": rl.get("count"),
        "replay_p50_ms": ms(rl.get("p50_us")),
        "replay_p99_ms": ms(rl.get("p99_us")),
        "replay_max_ms": ms(rl.get("max_us")),
        "downtime_p50_ms": ms(dt.get("p50_us")),
        "downtime_p99_ms": ms(dt.get("p99_us")),
        "downtime_max_ms": ms(dt.get("max_us")),
        "live_p99_ms": ms(lat.get("p99_us")),
        "open_by_node": rec.get("open_by_node"),
        "deploy_at_s": rec.get("deploy_at_s"),
        "deploy_error": rec.get("deploy_error"),
    }
    row["replay_p99_within_bound"] = row["replay_p99_ms"] is not None and row["replay_p99_ms"] <= bound_s * 1000
    return row


def recovery(out, kind, configs, rounds, bound_s, title, cols):
    print(f"## {title}\n")
    summary = {}
    for name, label in configs:
        per = [recovery_row(load(out, f"{name}-r{r}"), bound_s) for r in rounds]
        m = {}
        for k, _, _ in cols:
            m[k] = med([p[k] for p in per if p and isinstance(p.get(k), (int, float))])
        summary[name] = {"label": label, "median": m, "rounds": per}
    print("| figure | " + " | ".join(f"{label} (median)" for _, label in configs) + " |")
    print("|---|" + "---:|" * len(configs))
    for k, head, unit in cols:
        print(f"| {head} | " + " | ".join(fmt(summary[n]["median"].get(k), unit, 3 if "pct" in k else 1) for n, _ in configs) + " |")
    print()
    for name, label in configs:
        print(f"{label}, per round:\n")
        print("| round | " + " | ".join(h for _, h, _ in cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for r, p in zip(rounds, summary[name]["rounds"]):
            if p is None:
                print(f"| {r} | missing |")
                continue
            print(f"| {r} | " + " | ".join(fmt(p.get(k), u, 3 if "pct" in k else 1) for k, _, u in cols) + " |")
        print()
    return summary


def checks(res, bound_s):
    """The done-when bounds, per round and on the medians."""
    print("## against the bounds\n")
    print("| check | " + " | ".join(["median"] + [f"round {i + 1}" for i in range(len(res["jitter"]["jitter-alone"]["rounds"]))]) + " |")
    print("|---|" + "---|" * (1 + len(res["jitter"]["jitter-alone"]["rounds"])))

    def line(label, section, name, ok):
        d = res[section][name]
        cells = ["pass" if ok(d["median"]) else "FAIL"]
        for p in d["rounds"]:
            cells.append("missing" if p is None else ("pass" if ok(p) else "FAIL"))
        print(f"| {label} | " + " | ".join(cells) + " |")

    def num(x, k):
        v = x.get(k)
        return v if isinstance(v, (int, float)) else None

    for name in ("jitter-alone", "jitter-nats3"):
        lab = res["jitter"][name]["label"]
        line(f"jitter, {lab}: 100 % delivered, 0 duplicates", "jitter", name,
             lambda x: num(x, "delivered_pct") == 100 and num(x, "duplicates") == 0)
        line(f"jitter, {lab}: replay p99 <= {bound_s:g} s", "jitter", name,
             lambda x: num(x, "replay_p99_ms") is not None and x["replay_p99_ms"] <= bound_s * 1000)
        line(f"jitter, {lab}: downtime p99 (offline included) <= {bound_s:g} s", "jitter", name,
             lambda x: num(x, "downtime_p99_ms") is not None and x["downtime_p99_ms"] <= bound_s * 1000)
    for name in ("deploy-nats3", "restart-alone-nats", "restart-alone-mem"):
        lab = res["deploy"][name]["label"]
        line(f"deploy, {lab}: >= 99.9 % recovered", "deploy", name,
             lambda x: num(x, "recovered_pct") is not None and x["recovered_pct"] >= 99.9)
    print()


def main():
    out, nrounds, offline, peers = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
    nats = sys.argv[5] if len(sys.argv) > 5 else "NATS"
    rounds = list(range(1, nrounds + 1))
    bound_s = dur_s(offline) + 0.5
    res = {"p95_bound": "500ms", "replay_bound_s": bound_s}
    res["shootout"] = shootout(out, ["herald"] + peers, rounds)
    if not any(load(out, f"{n}-r{r}") for n in ("jitter-alone", "jitter-nats3", "deploy-nats3") for r in rounds):
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(res, f, indent=1)
        return  # a shootout-only run
    jcols = [
        ("published", "published", ""),
        ("delivered_pct", "delivered", " %"),
        ("duplicates", "duplicates", ""),
        ("complete_clients", "complete clients", ""),
        ("cuts", "cuts", ""),
        ("reconnect_failures", "failed attempts", ""),
        ("not_recovered", "recovered:false", ""),
        ("replay_p50_ms", "replay p50", " ms"),
        ("replay_p99_ms", "replay p99", " ms"),
        ("replay_max_ms", "replay max", " ms"),
        ("downtime_p99_ms", "downtime p99", " ms"),
        ("live_p99_ms", "live p99", " ms"),
    ]
    res["jitter"] = recovery(out, "jitter", [("jitter-alone", "herald alone"), ("jitter-nats3", f"3 nodes on {nats}")],
                             rounds, bound_s, f"jitter (replay bound D + 0.5 s = {bound_s:g} s)", jcols)
    dcols = [
        ("published", "published", ""),
        ("publish_failures", "publish failures", ""),
        ("affected_clients", "clients that lost their connection", ""),
        ("recovered_pct", "recovered", " %"),
        ("never_returned", "never returned", ""),
        ("not_recovered", "recovered:false", ""),
        ("delivered_pct", "delivered", " %"),
        ("duplicates", "duplicates", ""),
        ("downtime_p50_ms", "downtime p50", " ms"),
        ("downtime_p99_ms", "downtime p99", " ms"),
        ("downtime_max_ms", "downtime max", " ms"),
        ("replay_p99_ms", "replay p99", " ms"),
    ]
    res["deploy"] = recovery(out, "deploy", [("deploy-nats3", f"3 nodes on {nats}, node 3 SIGTERMed"),
                                             ("restart-alone-nats", f"herald alone on {nats}, restarted"),
                                             ("restart-alone-mem", "herald alone in memory, restarted")],
                             rounds, bound_s, "deploy", dcols)
    checks(res, bound_s)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
