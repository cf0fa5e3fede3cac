"""Print what `make reproduce` rebuilt in this run and how long each notebook took."""

import sys

from dra.config import cache_dir, figures_dir

profile = sys.argv[1]
log = cache_dir() / f"reproduce_{profile}.log"
rows = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
print(f"\nmake reproduce (profile {profile}):")
if not rows:
    print("  everything was up to date; nothing rebuilt")
for name, seconds in rows:
    print(f"  rebuilt {name:<34} {int(seconds):>6} s")
if rows:
    print(f"  total {sum(int(s) for _, s in rows):>37} s")
print(f"  executed notebooks: notebooks/executed/*_{profile}.ipynb; figures: {figures_dir()}")
