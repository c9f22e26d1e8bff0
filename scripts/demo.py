"""The demo: the real gate (wrangler dev / workerd) against the sandbox, one healthy release
that promotes and one bad release that rolls back, with a live progress view in the
terminal and a timeline picture (artifacts/demo-timeline.svg) at the end.
Run through scripts/demo.sh, which sets up and builds first."""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from gate import HOOK_TOKEN, Gate  # noqa: E402
from sandbox.client import SandboxProcess  # noqa: E402
from world import World, gate_vars  # noqa: E402

BOLD, DIM, RED, GREEN, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def progress_line(minute: int, status: dict) -> str:
    """One line per simulated minute: phase, split, 5xx per version, e-value, the 5xx look's
    p-value against its alpha, decision."""
    step = status.get("step") or {}
    split = next((s["percent"] for s in status["live_split"] if s["version_id"] == status["version_id"]), 0)
    a = status.get("last_assessment") or {}
    w = a.get("window") or {}
    new, old = w.get("new") or {}, w.get("old") or {}
    rate = lambda v: pct(v["errors"] / v["requests"]) if v.get("requests") else "  -  "
    test = a.get("errors_test") or {}
    e = test.get("e_value")
    look = a.get("errors_look") or {}
    p = f"p {look['p_value']:.1e}/{look['alpha']:.1e}" if look.get("critical") is not None else "p    -   "
    decision = (status.get("last_decision") or {}).get("decision", "")
    where = f"step {step['number']}/{step['of']}" if step else ""
    colour = RED if "roll" in status["phase_name"] else GREEN if status["phase_name"] == "completed" else ""
    reset = RESET if colour else ""
    return (f"  min {minute:>2} │ {colour}{status['phase_name']:<12}{reset} {where:<9} │ new at {split:>5.1f}% │ "
            f"5xx new {rate(new):>6} old {rate(old):>6} │ e-value {'-' if e is None else f'{e:8.2f}'} │ "
            f"look {p:<17} │ {decision}")


def story(world: World, releases: list[tuple[str, object]], minutes: int, delay: float) -> dict[str, list[dict]]:
    """Both releases start together; each simulated minute moves the sandbox clock and
    fires cron once, and the gate ticks every active rollout (the registry fans out)."""
    timelines: dict[str, list[dict]] = {}
    for title, rel in releases:
        print(f"\n{BOLD}{title}{RESET}")
        status, body = world.hook(rel)
        print(f"  deploy hook → HTTP {status}: {body['rollout']['phase_name']}")
        timelines[rel.script] = []
    clock = releases[0][1]
    print()
    for minute in range(1, minutes + 1):
        now = clock.at(minute)
        world.sb.clock(now)
        world.gate.fire_cron(now + 1_000)
        done = True
        for _, rel in releases:
            rel.minute = minute
            status = world.status(rel)
            if not (timelines[rel.script] and timelines[rel.script][-1]["terminal"]):
                timelines[rel.script].append(status)
                print(f"{rel.script:<16}" + progress_line(minute, status), flush=True)
            done = done and status["terminal"]
        if done:
            break
        time.sleep(delay)
    for _, rel in releases:
        print(f"{rel.script}: splits written {world.splits(rel)} (0% = the pre-flight probe)")
    return timelines


def polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{coords}"/>'


def rate(v: dict) -> float | None:
    return v["errors"] / v["requests"] if v.get("requests") else None


def timeline_svg(stories: list[tuple[str, list[dict]]]) -> str:
    """Split % and per-version 5xx rate per minute, one panel per release, one time axis."""
    width, panel_h, pad = 760, 190, 48
    n = max(max((len(s) for _, s in stories), default=1), 1)
    rates = [r for _, ss in stories for s in ss
             for v in ((s.get("last_assessment") or {}).get("window") or {}).values()
             if (r := rate(v or {})) is not None]
    top_rate = max(rates, default=0.01) * 1.1 or 0.01
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{panel_h * len(stories) + 24}" '
             f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>']
    for i, (title, statuses) in enumerate(stories):
        top = 10 + i * panel_h
        x = lambda m: pad + (width - 2 * pad) * m / n
        y = lambda frac: top + 30 + (panel_h - 60) * (1 - frac)
        split, err_new, err_old, marks = [], [], [], []
        last_phase = None
        for m, s in enumerate(statuses, start=1):
            share = next((v["percent"] for v in s["live_split"] if v["version_id"] == s["version_id"]), 0) / 100
            split.append((x(m), y(share)))
            w = (s.get("last_assessment") or {}).get("window") or {}
            for key, out in (("new", err_new), ("old", err_old)):
                r = rate(w.get(key) or {})
                if r is not None:
                    out.append((x(m), y(min(1.0, r / top_rate))))
            if s["phase_name"] != last_phase:
                marks.append((x(m), s["phase_name"]))
                last_phase = s["phase_name"]
        parts.append(f'<text x="{pad}" y="{top + 16}" font-weight="bold">{html.escape(title)}</text>')
        parts.append(f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="#999"/>')
        parts.append(f'<text x="{pad - 4}" y="{y(1) + 4}" text-anchor="end" fill="#1f6feb">100%</text>'
                     f'<text x="{width - pad + 4}" y="{y(1) + 4}" fill="#cf222e">{100 * top_rate:.2f}%</text>'
                     f'<text x="{pad - 4}" y="{y(0) + 4}" text-anchor="end" fill="#555">0</text>')
        for mx, label in marks:
            anchor = "end" if mx > width - 2 * pad else "start"
            dx = -2 if anchor == "end" else 2
            parts.append(f'<line x1="{mx:.1f}" y1="{y(1)}" x2="{mx:.1f}" y2="{y(0)}" stroke="#ccc"/>'
                         f'<text x="{mx + dx:.1f}" y="{y(1) - 3}" text-anchor="{anchor}" fill="#555">'
                         f'{html.escape(label)}</text>')
        parts.append(polyline(split, "#1f6feb"))
        parts.append(polyline(err_old, "#6e7781", "4 3"))
        parts.append(polyline(err_new, "#cf222e"))
        parts.append(f'<text x="{width - pad}" y="{y(0) + 16}" text-anchor="end" fill="#555">'
                     f'simulated minutes (0–{n}) →</text>')
    legend_y = 10 + panel_h * len(stories) + 8
    parts.append(f'<text x="{pad}" y="{legend_y}" fill="#1f6feb">— new version share (left axis)</text>'
                 f'<text x="{pad + 230}" y="{legend_y}" fill="#cf222e">— new 5xx rate (right axis)</text>'
                 f'<text x="{pad + 450}" y="{legend_y}" fill="#6e7781">- - old 5xx rate</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8787")))
    parser.add_argument("--delay", type=float, default=0.3, help="seconds between simulated minutes")
    parser.add_argument("--serve", action="store_true", help="keep the gate running afterwards")
    args = parser.parse_args()

    with SandboxProcess() as sandbox:
        vars_ = gate_vars(sandbox.base, STATUS_PAGE_URL=f"http://127.0.0.1:{args.port}")
        with Gate(extra_vars=vars_, port=args.port) as gate:
            world = World(sandbox.client, gate)
            print(f"{BOLD}rollout-gate demo{RESET}: gate {gate.base} (workerd), sandbox {sandbox.base}")
            print(f"{DIM}Each line is one simulated minute: the sandbox clock and the cron event move together.{RESET}")

            good = world.release("mauntic-gateway", rps=50)
            bad = world.release("tenant-cache", rps=50, new={"error_rate": 0.005}, t0=good.t0, reset=False)
            timelines = story(world, [
                ("1. A healthy release of mauntic-gateway (50 rps, 0.1% 5xx on both versions)", good),
                ("2. A bad release of tenant-cache (new version 0.5% 5xx, five times the old)", bad),
            ], minutes=90, delay=args.delay)
            healthy, rolled = timelines[good.script], timelines[bad.script]

            slack = world.sb.slack_messages()
            print(f"\n{BOLD}Slack heard{RESET} ({len(slack)} messages):")
            for m in slack:
                print(f"  • {m['payload'].get('text', '')[:150]}")
            out = ROOT / "artifacts"
            out.mkdir(exist_ok=True)
            picture = out / "demo-timeline.svg"
            picture.write_text(timeline_svg([("mauntic-gateway: healthy → completed", healthy),
                                             ("tenant-cache: ×5 5xx → rolled back", rolled)]))
            print(f"\n{BOLD}Timeline picture{RESET}: {picture}")
            print(f"Status page: {gate.base}/ (user any, password = the hook token {HOOK_TOKEN!r})")
            ok = healthy and healthy[-1]["phase_name"] == "completed" and rolled and rolled[-1]["phase_name"] == "rolled back"
            if args.serve:
                print("Serving until Ctrl-C…")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
