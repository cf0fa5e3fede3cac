"""Effect sizes of the inconsistency study on the stored real LLM text, at full size, without the mini world.

Notebook 01 computes the same rows (`dra.study.effect_table`) at every profile, but at the mini profile it also
samples from the mini world's base policy; this script gives the real-text rows alone, with the mini profile's
real-text settings (all prompts, MiniLM and TF-IDF, G = 4, 6, 8, with and without the length control), and
writes them with provenance to data/study_effects_real_text_mini.json (or $DRA_RESULTS_DIR).

    DRA_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 python scripts/study_effects_real_text.py
"""

import pandas as pd

from dra import profiles, study
from dra.embed import get_embedder
from dra.reports import save_result

PROFILE, SEED = "mini", 0
settings = profiles.get(PROFILE).study
timer = study.StageTimer()
embedders = {name: get_embedder(name) for name in settings.real_embedders}
rows = []
for name in ["qwen_math_cot_100", "game24"]:
    sg = study.real_text_groups(name, settings.max_group, max_prompts=settings.real_prompts)
    embeddings = {e: timer(f"embedding {name} ({e})", lambda e=e: study.embed_groups(sg.groups, embedders[e]))
                  for e in embedders}
    rows += timer(f"effect sizes {name}", lambda: study.effect_table(sg, embeddings, settings.group_sizes,
                                                                      controls=study.CONTROLS, seed=SEED))
table = pd.DataFrame(rows)
path = save_result("study_effects_real_text", {"settings": settings.as_dict(), "effects": rows, "timing_seconds": timer.seconds},
                   PROFILE, SEED)
columns = ["scale", "embedder", "G", "reward", "control", "pooled_n_defined", "pooled_estimate", "pooled_ci_low",
           "pooled_ci_high", "pooled_tau2", "share_spearman", "share_permutation", "share_attainable", "t_test_size",
           "uncontrolled_same_prompts_estimate"]
pd.set_option("display.width", 250)
print(table[columns].round(3).to_string(index=False))
print({k: round(v, 1) for k, v in timer.seconds.items()}, "->", path)
