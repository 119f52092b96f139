"""``python -m bridging.reportcheck REPORT [--out DIR]``: exit 0 when the report passes, 1 with one line per
problem, 2 when the report or Chromium is missing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .browser import BrowserError
from .check import check_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridging.reportcheck", description=__doc__)
    parser.add_argument("report", help="the Snakemake HTML report (e.g. results/demo/report.html)")
    parser.add_argument("--out", help="folder for the screenshots and summary.json (default: <report>-check/)")
    parser.add_argument("--chromium", help="the Chromium executable (default: $CHROMIUM or chromium on the PATH)")
    args = parser.parse_args(argv)
    report = Path(args.report)
    out = Path(args.out) if args.out else report.with_name(f"{report.stem}-check")
    try:
        summary, problems = check_report(report, out, chromium=args.chromium)
    except (FileNotFoundError, BrowserError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n = len(summary["items"])
    print(f"{report}: {n} items in {len(summary['categories'])} sections; screenshots and summary.json in {out}/")
    for category, subs in sorted(summary["categories"].items()):
        print(f"  {category}: " + ", ".join(f"{s} ({k})" for s, k in subs.items()))
    if summary["figure_pane_width"]:
        print(f"  figures shown up to {summary['figure_pane_width']:.0f} px wide")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
