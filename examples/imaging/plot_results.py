#!/usr/bin/python3
# Plots a sweep's results as read from `qresults JOBID --csv`: the mean number of
# components against the threshold, one line per filter setting, averaged over the
# images. Writes a PNG (or SVG, by the file's extension) with matplotlib.
#
#   qresults 42 --csv > results.csv
#   plot_results.py results.csv components.png
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: plot_results.py RESULTS.csv OUT.png|OUT.svg\n")
        return 2
    series = defaultdict(lambda: defaultdict(list))  # setting -> threshold -> counts
    with open(argv[1], newline="") as f:
        for row in csv.DictReader(f):
            if row.get("state") != "completed" or not row.get("components"):
                continue
            setting = row["filter"]
            if row["filter"] == "median":
                setting += " size %s" % row["size"]
            elif row["filter"] == "gaussian":
                setting += " sigma %s" % row["sigma"]
            series[setting][float(row["threshold"])].append(float(row["components"]))
    if not series:
        sys.stderr.write("plot_results.py: no completed tasks with components in %s\n" % argv[1])
        return 1
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for setting in sorted(series):
        points = sorted(series[setting].items())
        ax.plot([t for t, _ in points], [sum(c) / len(c) for _, c in points], marker="o",
                label=setting)
    ax.set_xlabel("threshold")
    ax.set_ylabel("components (mean over images)")
    ax.set_title("Connected components vs threshold, per filter")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(argv[2])
    print(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
