"""`python -m airflow_obs.grafana_dashboards [--check]`: write dashboards/<uid>.json, or name the files that differ."""

from __future__ import annotations

import argparse
import sys

from airflow_obs.grafana_dashboards.write import DASHBOARD_DIR, differing, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_obs.grafana_dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file differs")
    args = parser.parse_args(argv)
    if args.check:
        stale = differing()
        if stale:
            print(
                f"dashboards differ from the code: {', '.join(stale)} (run `python -m airflow_obs.grafana_dashboards`)",
                file=sys.stderr,
            )
            return 1
        print(f"dashboards in {DASHBOARD_DIR} are up to date")
        return 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
